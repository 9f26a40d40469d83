//go:build linux && amd64

package main

// Scenario 2: kretprobe instance exhaustion (HAZARDS-RESEARCH.md §4).
// Threads of this process block in pipe_read() (a blocking read of an empty
// pipe) while a kretprobe is attached to it, more of them than the kernel's
// default maxactive; each in-flight call holds one kretprobe instance, and
// a call that finds the pool empty loses its return probe (nmissed).
//
// Ground truth is two BPF counters filtered on this process: a kprobe
// counting entries and the return program counting returns; missed =
// entries − returns once every reader has returned. Beside it: the
// kernel's own count (link info, 6.7+, or tracefs kprobe_profile for
// safebpf's tracefs events) and safebpf's safebpf.probe.missed metric,
// read through an OpenTelemetry ManualReader.

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"golang.org/x/sys/unix"

	"github.com/safebpf/safebpf/internal/kernel"
	"github.com/safebpf/safebpf/internal/tracefs"
	"github.com/safebpf/safebpf/internal/vmtest/vmproto"
	"github.com/safebpf/safebpf/loader"
	"github.com/safebpf/safebpf/probe"
)

const s2Symbol = "pipe_read"

func s2(arm string, sleepers, maxActive int) vmproto.LabRecord {
	r := vmproto.LabRecord{Scenario: "2", Arm: arm, Safebpf: arm != "naive", Numbers: map[string]float64{"sleepers": float64(sleepers)}}
	pid := os.Getpid()
	if n := possibleCPUs(); n > 0 {
		r.Numbers["possible_cpus"] = float64(n)
	}
	m, err := counters()
	if err != nil {
		return failed(r, "%v", err)
	}
	defer m.Close()
	entry, err := counterProg("lab_s2_entry", ebpf.Kprobe, 0, "", m, 0, pid)
	if err != nil {
		return failed(r, "%v", err)
	}
	defer entry.Close()
	ret, err := counterProg("lab_s2_ret", ebpf.Kprobe, 0, "", m, 1, pid)
	if err != nil {
		return failed(r, "%v", err)
	}
	defer ret.Close()
	el, err := link.Kprobe(s2Symbol, entry, nil)
	if err != nil {
		return failed(r, "attach the entry counter to %s: %v", s2Symbol, err)
	}
	defer el.Close()

	var (
		rl     link.Link
		reader *sdkmetric.ManualReader
	)
	before := profile()
	switch arm {
	case "naive":
		rl, err = link.Kretprobe(s2Symbol, ret, nil)
		if err != nil {
			return failed(r, "kretprobe %s: %v", s2Symbol, err)
		}
		r.Mechanism = "kretprobe (perf_kprobe PMU: kernel default maxactive)"
	case "safebpf", "safebpf-maxactive", "safebpf-kretprobe":
		reader = sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		defer mp.Shutdown(context.Background())
		l, err := loader.New(&loader.Options{MeterProvider: mp})
		if err != nil {
			return failed(r, "safebpf loader: %v", err)
		}
		defer l.Close()
		opts, extra := &link.KprobeOptions{}, &loader.Extra{}
		if arm == "safebpf" {
			// The fexit variant an agent would ship beside its kretprobe.
			if fx, err := counterProg("lab_s2_fexit", ebpf.Tracing, ebpf.AttachTraceFExit, s2Symbol, m, 1, pid); err == nil {
				defer fx.Close()
				extra.Variants = map[probe.Mechanism]*ebpf.Program{probe.Fexit: fx}
			} else {
				r.Evidence = append(r.Evidence, "no fexit variant: "+err.Error())
			}
		} else if arm == "safebpf-maxactive" {
			opts.RetprobeMaxActive = maxActive
		}
		// safebpf-kretprobe: no variant and no maxactive, as a kretprobe
		// user writes it: the catalog's decision alone.
		sl, err := l.Kretprobe(s2Symbol, ret, opts, extra)
		if err != nil {
			r.Decision = decisionOf(err)
			return failed(r, "safebpf kretprobe %s: %v", s2Symbol, err)
		}
		d := sl.Decision()
		r.Decision = loader.Explain(d)
		r.Mechanism = string(d.Chosen)
		if d.Settings.MaxActive > 0 {
			r.Mechanism += fmt.Sprintf(" maxactive=%d (tracefs)", d.Settings.MaxActive)
			r.Numbers["maxactive"] = float64(d.Settings.MaxActive)
		} else if d.Chosen == "kretprobe" {
			r.Mechanism += " (kernel default maxactive)"
		}
		rl = sl
	default:
		return failed(r, "unknown arm %q", arm)
	}
	defer rl.Close()

	// Calls of the function made before the return probe was attached (the
	// loader's own planning reads pipes: its self-test helper's output)
	// have an entry and never a return: count from here.
	e0, r0 := count(m, 0), count(m, 1)
	entered, returned, err := blockInPipeRead(m, e0, sleepers)
	r.Numbers["entered_while_attached"] = float64(entered)
	r.Numbers["reads_returned"] = float64(returned)
	if err != nil {
		return failed(r, "%v", err)
	}
	time.Sleep(200 * time.Millisecond)
	entries, returns := count(m, 0)-e0, count(m, 1)-r0
	r.Numbers["entries_before_attach"] = float64(e0)
	missed := int64(entries) - int64(returns)
	r.Numbers["entries"], r.Numbers["returns"], r.Numbers["missed"] = float64(entries), float64(returns), float64(missed)

	kernel := "n/a"
	if info, err := rl.Info(); err == nil {
		if pe := info.PerfEvent(); pe != nil {
			if k := pe.Kprobe(); k != nil {
				r.Numbers["link_info_missed"] = float64(k.Missed)
				kernel = fmt.Sprintf("link info %d", k.Missed)
			}
		}
	}
	if n, ok := kprobeProfileMissed(before); ok {
		r.Numbers["kprobe_profile_missed"] = float64(n)
		kernel = fmt.Sprintf("kprobe_profile %d", n)
	}
	metric := ""
	if reader != nil {
		n, seen, err := collectMissed(reader, s2Symbol)
		switch {
		case err != nil:
			metric = "; safebpf.probe.missed unreadable: " + err.Error()
		case !seen:
			metric = "; safebpf.probe.missed: no series"
		default:
			r.Numbers["metric_missed"] = float64(n)
			metric = fmt.Sprintf("; safebpf.probe.missed %d", n)
		}
	}
	r.Outcome = "none-missed"
	if missed > 0 {
		r.Outcome = "missed"
	}
	r.Summary = fmt.Sprintf("%s: %d of %d returns missed with %d readers blocked (kernel: %s%s)",
		r.Mechanism, missed, entries, sleepers, kernel, metric)
	return r
}

// blockInPipeRead starts n threads that each block in read(2) on their own
// empty pipe, waits until the entry counter (key 0 of m, from base) saw all
// of them,
// then writes a byte to every pipe and waits for the reads to return.
func blockInPipeRead(m *ebpf.Map, base uint64, n int) (entered, returned uint64, err error) {
	type pipe struct{ r, w int }
	pipes := make([]pipe, n)
	for i := range pipes {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			return 0, 0, fmt.Errorf("pipe %d: %w", i, err)
		}
		pipes[i] = pipe{p[0], p[1]}
	}
	defer func() {
		for _, p := range pipes {
			unix.Close(p.r)
			unix.Close(p.w)
		}
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var done uint64
	for _, p := range pipes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // the thread stays blocked in the kernel
			var b [1]byte
			if _, err := unix.Read(p.r, b[:]); err == nil {
				mu.Lock()
				done++
				mu.Unlock()
			}
		}()
	}
	deadline := time.Now().Add(90 * time.Second)
	for count(m, 0)-base < uint64(n) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	entered = count(m, 0) - base
	time.Sleep(300 * time.Millisecond) // let the last readers reach schedule()
	for _, p := range pipes {
		unix.Write(p.w, []byte{1})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(90 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		return entered, done, fmt.Errorf("only %d of %d blocked reads returned within 90s", done, n)
	}
	if entered < uint64(n) {
		return entered, done, fmt.Errorf("only %d of %d readers entered %s within 90s", entered, n, s2Symbol)
	}
	return entered, done, nil
}

// profile reads tracefs kprobe_profile (nil when unreadable).
func profile() map[string]tracefs.ProfileEntry {
	fs, err := tracefs.Find()
	if err != nil {
		return nil
	}
	prof, err := fs.Profile()
	if err != nil {
		return nil
	}
	return prof
}

// kprobeProfileMissed sums the nmissed column of kprobe_profile over the
// events on s2Symbol that were not there before (the events safebpf
// created for this arm; the naive kretprobe's perf_kprobe PMU event is not
// listed in kprobe_profile).
func kprobeProfileMissed(before map[string]tracefs.ProfileEntry) (uint64, bool) {
	var sum uint64
	found := false
	for name, e := range profile() {
		if _, old := before[name]; old {
			continue
		}
		ev := name
		if _, rest, ok := strings.Cut(name, "/"); ok {
			ev = rest
		}
		if strings.HasPrefix(ev, tracefs.Sanitize(s2Symbol)) {
			sum += e.Missed
			found = true
		}
	}
	return sum, found
}

// collectMissed collects the reader and sums safebpf.probe.missed over the
// series whose target is target.
func collectMissed(reader *sdkmetric.ManualReader, target string) (uint64, bool, error) {
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		return 0, false, err
	}
	var sum uint64
	seen := false
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			if mt.Name != "safebpf.probe.missed" {
				continue
			}
			var dps []metricdata.DataPoint[int64]
			switch d := mt.Data.(type) {
			case metricdata.Sum[int64]:
				dps = d.DataPoints
			case metricdata.Gauge[int64]:
				dps = d.DataPoints
			}
			for _, dp := range dps {
				if v, ok := dp.Attributes.Value("safebpf.target"); ok && v.AsString() != target {
					continue
				}
				seen = true
				sum += uint64(dp.Value)
			}
		}
	}
	return sum, seen, nil
}

// possibleCPUs counts /sys/devices/system/cpu/possible ("0-63" → 64).
func possibleCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if err != nil {
		return 0
	}
	n, err := kernel.ParseCPUList(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return n
}
