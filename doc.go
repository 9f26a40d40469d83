// Package safebpf is the module overview; the code lives in its packages.
package safebpf
