package loader

import (
	"testing"

	"github.com/safebpf/safebpf/internal/elfscan"
	"github.com/safebpf/safebpf/probe"
)

// TestNewRequestTraits: what the programs do comes from their scans (any
// program doing it counts), and a program nobody could look at counts as
// reading user memory, taking user stacks and making tail calls (issue 9).
func TestNewRequestTraits(t *testing.T) {
	stacks := &elfscan.Result{ReadsUserStacks: true}
	tail := &elfscan.Result{TailCalls: true}
	reads := &elfscan.Result{ReadsUserMemory: true}
	for _, tc := range []struct {
		name                 string
		scans                []*elfscan.Result
		reads, stacks, tails bool
	}{
		{"nothing", []*elfscan.Result{{}}, false, false, false},
		{"user stacks only", []*elfscan.Result{stacks}, false, true, false},
		{"tail calls in a variant", []*elfscan.Result{reads, tail}, true, false, true},
		{"unknown program", []*elfscan.Result{stacks, nil}, true, true, true},
		{"no scan at all", nil, true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := newRequest(probe.PerfEventSoftware, "", tc.scans, requestOptions{})
			if req.ReadsUserMemory != tc.reads || req.ReadsUserStacks != tc.stacks || req.TailCalls != tc.tails {
				t.Errorf("reads %v stacks %v tail calls %v, want %v %v %v",
					req.ReadsUserMemory, req.ReadsUserStacks, req.TailCalls, tc.reads, tc.stacks, tc.tails)
			}
		})
	}
}
