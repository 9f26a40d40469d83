package fallback_test

import (
	"errors"
	"fmt"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// An fentry program with a kprobe alternative, on Ubuntu 24.04's
// 6.8.0-53 kernel (before the RCU-tasks backport): the planner downgrades
// to the kprobe variant.
func ExamplePlan() {
	k, err := probe.Describe(probe.Description{
		Release:          "6.8.0-53-generic",
		VersionSignature: "Ubuntu 6.8.0-53.55-generic 6.8.12",
		OSRelease:        "ID=ubuntu\nVERSION_ID=\"24.04\"\n",
		CPUs:             8,
	})
	if err != nil {
		panic(err)
	}
	d, err := fallback.Plan(k, nil, fallback.Request{
		Mechanism:    probe.Fentry,
		Target:       "do_unlinkat",
		Alternatives: []probe.Mechanism{probe.Kprobe},
	}, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(d.Requested, "→", d.Chosen, "("+d.Action+")")
	for _, s := range d.Steps {
		fmt.Println(s.From, "→", s.To, "because of", s.Hazard)
	}
	// Output:
	// fentry → kprobe (downgrade)
	// fentry → kprobe because of fentry-zap-pid-ns-deadlock
}

// A profiler's perf_event program on a Debian 12 kernel before the
// user-read fix (6.1.30): one that only takes user stacks keeps the hardware
// event (that path was fixed in 6.0); one that reads user memory with
// bpf_probe_read_user is refused on either perf event, since the software
// cpu-clock event runs in hard IRQ and deadlocks the same way. The refusal
// names the kernels that carry the fix.
func ExamplePlan_perfEvent() {
	k, _ := probe.Describe(probe.Description{
		Release:     "6.1.0-9-amd64",
		ProcVersion: "Linux version 6.1.0-9-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.30-1 (2023-05-24)",
	})
	d, _ := fallback.Plan(k, nil, fallback.Request{
		Mechanism:       probe.PerfEventHardware,
		PerfEvent:       &fallback.PerfEvent{Hardware: true, Frequency: 99},
		ReadsUserStacks: true,
	}, nil)
	fmt.Println("user stacks:", d.Chosen, d.Action)

	_, err := fallback.Plan(k, nil, fallback.Request{
		Mechanism:       probe.PerfEventSoftware,
		PerfEvent:       &fallback.PerfEvent{Frequency: 99},
		ReadsUserMemory: true,
	}, nil)
	var re *fallback.RefusedError
	if errors.As(err, &re) {
		fmt.Println("probe reads:", re.ErrorType(), "fixed in", re.Blockers[0].FixedIn)
	}
	// Output:
	// user stacks: perf-event-hardware allow
	// probe reads: refused.nmi-user-read-deadlock fixed in [6.1.36 6.3.10 6.4]
}

// On a 5.5 x86 kernel the INT3 text-patching race blocks fentry and its
// kprobe alternative alike: the request is refused with a typed error that
// says how to force it.
func ExampleRefusedError() {
	k, _ := probe.Describe(probe.Description{Release: "5.5.19"})
	_, err := fallback.Plan(k, nil, fallback.Request{
		Mechanism:    probe.Fentry,
		Target:       "do_unlinkat",
		Alternatives: []probe.Mechanism{probe.Kprobe},
	}, &hazards.Policy{Force: []hazards.ID{"fentry-zap-pid-ns-deadlock"}})
	var re *fallback.RefusedError
	if errors.As(err, &re) {
		fmt.Println(errors.Is(err, fallback.ErrRefused), re.ErrorType())
		fmt.Println(re.Hazards())
		fmt.Println(re.ForceHint)
	}
	// Output:
	// true refused.x86-text-poke-race
	// [x86-text-poke-race]
	// to attach anyway, set -safebpf-force=x86-text-poke-race or SAFEBPF_FORCE=x86-text-poke-race
}

// In warn mode the program attaches as requested, and the Decision keeps
// what enforce mode would have done.
func ExamplePlan_warnMode() {
	k, _ := probe.Describe(probe.Description{Release: "6.8.0-53-generic", VersionSignature: "Ubuntu 6.8.0-53.55-generic 6.8.12"})
	d, _ := fallback.Plan(k, nil, fallback.Request{
		Mechanism:    probe.Fentry,
		Alternatives: []probe.Mechanism{probe.Kprobe},
	}, &hazards.Policy{Mode: hazards.Warn})
	fmt.Println(d.Chosen, d.Action, "| enforce would:", d.WouldAction, "to", d.WouldChoose)
	// Output:
	// fentry warn | enforce would: downgrade to kprobe
}

// A Decision in words: the one rendering the loader's errors, the
// safebpf command, the example agents and the log records share.
func ExampleDecision_String() {
	d := fallback.Decision{
		Target: "tcp_sendmsg", Requested: probe.Kretprobe, Chosen: probe.Kretprobe, Action: fallback.Cap,
		Mode:     hazards.Enforce,
		Settings: fallback.Settings{MaxActive: 512},
		Steps: []fallback.Step{{From: probe.Kretprobe, To: probe.Kretprobe, Action: fallback.Cap,
			Hazard: "kretprobe-contention", Reason: "kretprobe-contention: affected on 96 CPUs; maxactive set to 512"}},
	}
	fmt.Println(d.Headline())
	for _, line := range d.Details() {
		fmt.Println("  " + line)
	}
	fmt.Println(d)
	// Output:
	// tcp_sendmsg: kretprobe (cap)
	//   kretprobe kept (cap): kretprobe-contention: affected on 96 CPUs; maxactive set to 512
	//   settings: kretprobe maxactive 512
	// tcp_sendmsg: kretprobe (cap): kretprobe kept (cap): kretprobe-contention: affected on 96 CPUs; maxactive set to 512; settings: kretprobe maxactive 512
}
