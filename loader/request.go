package loader

import (
	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/internal/elfscan"
	"github.com/safebpf/safebpf/probe"
)

// requestOptions are the parts of a planner request that come from the
// caller rather than from the programs.
type requestOptions struct {
	// alternatives are the mechanisms of the variants the request may
	// move to.
	alternatives []probe.Mechanism
	// keep forbids moving the request (fallback.Request.Pinned).
	keep bool
	// seccomp: the traced processes may run under seccomp (unknown: true).
	seccomp bool
	// targets is the real number of functions or symbols requested
	// together (a glob's matches); 0 counts as 1.
	targets   int
	maxActive int
	perf      *fallback.PerfEvent
	// attachTo is what the programs attach to, as the kernel names it
	// (fallback.Request.AttachTo; attachPoint.attachTo); nil when unknown.
	attachTo []string
}

// newRequest builds the planner's request to attach, with mechanism m on
// target, the programs whose scans are given (the program and the
// variants the request may move to). It is the one place the loader fills
// a fallback.Request: what the programs do is taken from their scans, and
// a nil scan (a program nobody could look at) counts as reading user
// memory, taking user stacks and making tail calls.
func newRequest(m probe.Mechanism, target string, scans []*elfscan.Result, o requestOptions) fallback.Request {
	req := fallback.Request{
		Mechanism:    m,
		Target:       target,
		Alternatives: o.alternatives,
		Pinned:       o.keep,
		Seccomp:      o.seccomp,
		Targets:      max(o.targets, 1),
		MaxActive:    o.maxActive,
		PerfEvent:    o.perf,
		AttachTo:     o.attachTo,
	}
	unknown := len(scans) == 0
	req.ReadsUserMemory, req.ReadsUserStacks, req.TailCalls = unknown, unknown, unknown
	for _, s := range scans {
		req.ReadsUserMemory = req.ReadsUserMemory || s == nil || s.ReadsUserMemory
		req.ReadsUserStacks = req.ReadsUserStacks || s == nil || s.ReadsUserStacks
		req.TailCalls = req.TailCalls || s == nil || s.TailCalls
	}
	return req
}
