//go:build race

package telemetry

// raceEnabled widens timing bounds: the race detector slows the attach
// path 5-20x.
const raceEnabled = true
