package probe

import (
	"fmt"

	"github.com/safebpf/safebpf/internal/kernel"
)

// The preemption models a kernel can be built with.
const (
	// PreemptNone is a kernel built without CONFIG_PREEMPTION
	// (CONFIG_PREEMPT_NONE or CONFIG_PREEMPT_VOLUNTARY; /proc/version
	// cannot tell which, and both behave the same for RCU).
	PreemptNone = "none"
	// PreemptFull is CONFIG_PREEMPT ("SMP PREEMPT"; also dynamic builds of
	// 5.12 to 5.17, which printed "PREEMPT").
	PreemptFull = "full"
	// PreemptDynamic is CONFIG_PREEMPT_DYNAMIC ("SMP PREEMPT_DYNAMIC", 5.18+):
	// preemptible build, boot-time choice of behaviour.
	PreemptDynamic = "dynamic"
	// PreemptRT is CONFIG_PREEMPT_RT.
	PreemptRT = "rt"
	// PreemptLazy is CONFIG_PREEMPT_LAZY (6.13+).
	PreemptLazy = "lazy"
)

// Preemption is the preemption model the kernel was built with. It decides
// whether the kernel has Tasks RCU: kernel/rcu/Kconfig builds TASKS_RCU
// only with CONFIG_PREEMPTION, and without it synchronize_rcu_tasks() is
// synchronize_rcu() (include/linux/rcupdate.h). What matters is the build,
// not the behaviour chosen at boot (preempt= on a dynamic kernel).
type Preemption struct {
	// Preemptible is true when the kernel was built with CONFIG_PREEMPTION
	// (full, dynamic, RT or lazy preemption), false when it was not, and
	// nil when neither /proc/version nor the config says.
	Preemptible *bool `json:"preemptible"`
	// Model is one of PreemptNone, PreemptFull, PreemptDynamic, PreemptRT,
	// PreemptLazy; empty when unknown.
	Model string `json:"model,omitempty"`
	// Witness says where the answer came from ("/proc/version says SMP
	// without PREEMPT"). Its text is not a stable interface.
	Witness string `json:"witness,omitempty"`
}

// Known reports whether the preemption model is known.
func (p Preemption) Known() bool { return p.Preemptible != nil }

// preemptionOf reads the preemption model from k's /proc/version line (the
// flags scripts/mkcompile_h writes, from the running kernel itself) and,
// when that line carries none, from k's config.
func preemptionOf(k *Kernel) Preemption {
	if k.ProcVersion != "" {
		if pv, err := kernel.ParseProcVersion(k.ProcVersion); err == nil {
			if yes, flag, known := pv.Preemptible(); known {
				if !yes {
					return Preemption{Preemptible: &yes, Model: PreemptNone,
						Witness: "/proc/version says " + flagsText(pv.Flags) + " without PREEMPT: built without CONFIG_PREEMPTION, so no Tasks RCU"}
				}
				model := map[string]string{"PREEMPT": PreemptFull, "PREEMPT_DYNAMIC": PreemptDynamic, "PREEMPT_RT": PreemptRT, "RT": PreemptRT, "PREEMPT_LAZY": PreemptLazy}[flag]
				return Preemption{Preemptible: &yes, Model: model,
					Witness: "/proc/version says " + flagsText(pv.Flags) + ": built with CONFIG_PREEMPTION"}
			}
		}
	}
	if k.Config == nil {
		return Preemption{}
	}
	for _, c := range []struct{ opt, model string }{
		{"CONFIG_PREEMPT_RT", PreemptRT},
		{"CONFIG_PREEMPT_DYNAMIC", PreemptDynamic},
		{"CONFIG_PREEMPT_LAZY", PreemptLazy},
		{"CONFIG_PREEMPT", PreemptFull},
		{"CONFIG_PREEMPTION", PreemptFull},
	} {
		if v := k.Config[c.opt]; v == "y" {
			yes := true
			return Preemption{Preemptible: &yes, Model: c.model, Witness: fmt.Sprintf("kernel config (%s): %s=y", k.ConfigSource, c.opt)}
		}
	}
	// The preemption choice always sets exactly one of its options; only a
	// config that shows the non-preemptible choice answers "no" (an
	// excerpt that shows none of them answers nothing).
	for _, opt := range []string{"CONFIG_PREEMPT_NONE", "CONFIG_PREEMPT_VOLUNTARY"} {
		if k.Config[opt] == "y" {
			no := false
			return Preemption{Preemptible: &no, Model: PreemptNone,
				Witness: fmt.Sprintf("kernel config (%s): %s=y without CONFIG_PREEMPTION: no Tasks RCU", k.ConfigSource, opt)}
		}
	}
	return Preemption{}
}

func flagsText(flags []string) string {
	if len(flags) == 0 {
		return "no build flags"
	}
	s := flags[0]
	for _, f := range flags[1:] {
		s += " " + f
	}
	return s
}
