package probe

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/safebpf/safebpf/internal/kernel"
)

// hostProber asks the running kernel. It only loads programs and opens
// events, never attaches: probing must not patch kernel text.
type hostProber struct {
	host *kernel.Host
	// btf is shared by the trial loads of BTF-typed programs (fentry,
	// fexit, fmod_ret, tp_btf, lsm, iter): each finds its target in the
	// kernel's BTF, parsed once for all of them. It is safe for concurrent
	// use; nil means a cache per load.
	btf *btf.Cache
}

var _ FeatureProber = (*hostProber)(nil)

// Probe implements FeatureProber.
func (p *hostProber) Probe(ctx context.Context, m Mechanism, k *Kernel) Support {
	if err := ctx.Err(); err != nil {
		return Undecided(fmt.Sprintf("probe %s: %v", m, err))
	}
	if !kernel.Privileged() {
		return Undecided(fmt.Sprintf("cannot probe %s: not privileged (needs root or CAP_BPF+CAP_PERFMON)", m))
	}
	switch m {
	case Kprobe, Kretprobe:
		return p.kprobe(k)
	case KprobeMulti, KretprobeMulti:
		if s := progType(ebpf.Kprobe); !s.Yes() {
			return s
		}
		return feature("kprobe_multi link", haveKprobeMulti())
	case Uprobe, Uretprobe:
		return p.uprobe(k)
	case UprobeMulti, UretprobeMulti:
		if s := progType(ebpf.Kprobe); !s.Yes() {
			return s
		}
		return feature("uprobe_multi link", haveUprobeMulti())
	case Tracepoint:
		return p.tracepoint(k)
	case RawTracepoint:
		return progType(ebpf.RawTracepoint)
	case Fentry:
		return loadTracing(Fentry, ebpf.Tracing, ebpf.AttachTraceFEntry, trampolineTargets, k, p.btf)
	case Fexit:
		return loadTracing(Fexit, ebpf.Tracing, ebpf.AttachTraceFExit, trampolineTargets, k, p.btf)
	case FmodRet:
		// Only functions marked ALLOW_ERROR_INJECTION accept fmod_ret;
		// bpf_modify_return_test exists for exactly this (5.7+).
		return loadTracing(FmodRet, ebpf.Tracing, ebpf.AttachModifyReturn, []string{"bpf_modify_return_test"}, k, p.btf)
	case TpBTF:
		return loadTracing(TpBTF, ebpf.Tracing, ebpf.AttachTraceRawTp, []string{"sched_switch", "sys_enter"}, k, p.btf)
	case Iter:
		return loadTracing(Iter, ebpf.Tracing, ebpf.AttachTraceIter, []string{"task", "bpf_map"}, k, p.btf)
	case LSM:
		return p.lsm(k)
	case PerfEventHardware:
		if s := progType(ebpf.PerfEvent); !s.Yes() {
			return s
		}
		return perfEvent("PERF_TYPE_HARDWARE", "PERF_COUNT_HW_CPU_CYCLES", kernel.PerfTypeHardware, kernel.PerfCountHWCPUCycles)
	case PerfEventSoftware:
		if s := progType(ebpf.PerfEvent); !s.Yes() {
			return s
		}
		return perfEvent("PERF_TYPE_SOFTWARE", "PERF_COUNT_SW_CPU_CLOCK", kernel.PerfTypeSoftware, kernel.PerfCountSWCPUClock)
	}
	return Undecided(fmt.Sprintf("no probe for mechanism %q", m))
}

// feature maps a cilium/ebpf feature probe's three outcomes.
func feature(what string, err error) Support {
	switch {
	case err == nil:
		return Supported(what + " supported")
	case errors.Is(err, ebpf.ErrNotSupported):
		return Unsupported(fmt.Sprintf("%s: %v", what, err))
	}
	return Undecided(fmt.Sprintf("%s: probe inconclusive: %v", what, err))
}

func progType(pt ebpf.ProgramType) Support {
	return feature(fmt.Sprintf("program type %s", pt), haveProgramType(pt))
}

// tracefsFile reports whether a file exists in tracefs, wherever mounted.
func (p *hostProber) tracefsFile(k *Kernel, name string) (string, bool) {
	dirs := []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}
	if k.Tracefs != "" {
		dirs = append([]string{k.Tracefs}, dirs...)
	}
	for _, d := range dirs {
		f := path.Join(d, name)
		if p.host.Exists(f) {
			return f, true
		}
	}
	return "", false
}

func (p *hostProber) dynamicProbe(k *Kernel, kind, option string) Support {
	if s := progType(ebpf.Kprobe); !s.Yes() {
		return s
	}
	pmu := "/sys/bus/event_source/devices/" + kind + "/type"
	if p.host.Exists(pmu) {
		return Supported(kind + " PMU present (" + pmu + ")")
	}
	if f, ok := p.tracefsFile(k, kind+"_events"); ok {
		return Supported("no " + kind + " PMU, but " + f + " exists")
	}
	if v, known := k.ConfigValue(option); known && v == "" {
		return Unsupported(fmt.Sprintf("%s is not set: no %s PMU and no %s_events in tracefs", option, kind, kind))
	}
	if k.Tracefs == "" {
		return Undecided(fmt.Sprintf("no %s PMU (%s) and tracefs is not mounted to check %s_events", kind, pmu, kind))
	}
	return Unsupported(fmt.Sprintf("no %s PMU (%s) and no %s_events in tracefs", kind, pmu, kind))
}

func (p *hostProber) kprobe(k *Kernel) Support { return p.dynamicProbe(k, "kprobe", "CONFIG_KPROBES") }
func (p *hostProber) uprobe(k *Kernel) Support { return p.dynamicProbe(k, "uprobe", "CONFIG_UPROBES") }

func (p *hostProber) tracepoint(k *Kernel) Support {
	s := progType(ebpf.TracePoint)
	if !s.Yes() {
		return s
	}
	if f, ok := p.tracefsFile(k, "events"); ok {
		return Supported(s.Reason + "; tracefs events at " + f)
	}
	// Attaching a tracepoint reads its ID from tracefs (or debugfs): without
	// either mounted, every attach fails, so the mechanism is not available
	// until the operator mounts one.
	return Unsupported(s.Reason + ", but neither tracefs nor debugfs is mounted: " +
		"mount -t tracefs tracefs /sys/kernel/tracing to attach tracepoints")
}

// trampolineTargets are stable kernel functions to load a trivial fentry
// or fexit program against. bpf_fentry_test1 exists for exactly this
// purpose (net/bpf/test_run.c).
var trampolineTargets = []string{"bpf_fentry_test1", "do_unlinkat", "vfs_read"}

// lsm reports whether BPF LSM programs load and would run: the kernel must
// also list "bpf" among its active LSMs, or an attached program never runs.
func (p *hostProber) lsm(k *Kernel) Support {
	s := loadTracing(LSM, ebpf.LSM, ebpf.AttachLSMMac, []string{"file_open", "bpf"}, k, p.btf)
	if !s.Yes() {
		return s
	}
	b, err := p.host.ReadFile("sys/kernel/security/lsm")
	if err != nil {
		return Undecided(s.Reason + ", but the active LSM list is unreadable (" + err.Error() + "): mount securityfs to tell whether bpf is active")
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), ",") {
		if l == "bpf" {
			return Supported(s.Reason + "; bpf is an active LSM")
		}
	}
	return Unsupported(fmt.Sprintf("%s, but bpf is not an active LSM (%s): add it to the lsm= boot parameter", s.Reason, strings.TrimSpace(string(b))))
}

// loadTracing loads (never attaches) a trivial BTF-typed program of type pt
// and attach type at against the first target found in the kernel's BTF,
// parsed through cache (nil: a cache of its own).
func loadTracing(m Mechanism, pt ebpf.ProgramType, at ebpf.AttachType, targets []string, k *Kernel, cache *btf.Cache) Support {
	name := string(m)
	// No HaveProgramType(Tracing) first: cilium/ebpf calls the EPERM this
	// kernel gives for tracing programs inconclusive, while a privileged
	// process refused a trampoline load cannot use fentry at all.
	if !k.BTF {
		return Unsupported(name + ": no kernel BTF (/sys/kernel/btf/vmlinux)")
	}
	var lastErr error
	for _, target := range targets {
		spec := &ebpf.ProgramSpec{
			Name:       "safebpf_probe",
			Type:       pt,
			AttachType: at,
			AttachTo:   target,
			License:    "GPL",
			Instructions: asm.Instructions{
				asm.Mov.Imm(asm.R0, 0),
				asm.Return(),
			},
		}
		// Through a collection: only a collection takes the BTF cache.
		coll, err := ebpf.NewCollectionWithOptions(&ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{"p": spec}},
			ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{LogDisabled: true}, Cache: cache})
		if err == nil {
			coll.Close()
			return Supported(fmt.Sprintf("%s program against %s loaded", name, target))
		}
		lastErr = err
		if errors.Is(err, btf.ErrNotFound) {
			continue
		}
		return classifyLoad(fmt.Sprintf("load %s program against %s", name, target), err)
	}
	return Undecided(fmt.Sprintf("load %s program: no target function found in BTF: %v", name, lastErr))
}

func classifyLoad(what string, err error) Support {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EPERM, syscall.EACCES, syscall.EINVAL, syscall.EOPNOTSUPP, syscall.ENOENT:
			return Unsupported(fmt.Sprintf("%s: %s (%v)", what, errnoName(errno), err))
		}
	}
	if errors.Is(err, ebpf.ErrNotSupported) {
		return Unsupported(fmt.Sprintf("%s: %v", what, err))
	}
	return Undecided(fmt.Sprintf("%s: probe inconclusive: %v", what, err))
}

func errnoName(e syscall.Errno) string {
	if n := kernel.ErrnoName(e); n != "" {
		return n
	}
	return e.Error()
}

func perfEvent(typName, configName string, typ uint32, config uint64) Support {
	what := fmt.Sprintf("perf_event_open(%s, %s)", typName, configName)
	err := kernel.OpenPerfEvent(typ, config, 0)
	if err == nil {
		return Supported(what + " on cpu 0 succeeded")
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOENT, syscall.EOPNOTSUPP, syscall.ENODEV, syscall.EINVAL:
			return Unsupported(fmt.Sprintf("%s: %s", what, errnoName(errno)))
		}
		return Undecided(fmt.Sprintf("%s: %s", what, errnoName(errno)))
	}
	return Undecided(fmt.Sprintf("%s: %v", what, strings.TrimSpace(err.Error())))
}
