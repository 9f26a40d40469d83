//go:build linux && amd64

package main

// Scenario 3: uprobe registration stall (HAZARDS-RESEARCH.md §5). A victim
// process (victim/victim.c) maps a library and forks and mmaps in a loop,
// timing every iteration; meanwhile N uprobes are registered on that library, one by
// one (unpaced, paced, or through safebpf's decision) or as uprobe_multi
// links. Registration takes dup_mmap_sem for write (fork waits) and the
// mmap_lock of every process mapping the file (mmap waits). The record
// holds the victim's latency (p50/p99/max) in the attach and detach windows
// against its baseline, and the total attach and detach times.
//
// The library is copied first, so only the victim (and its short-lived
// children) map the inode: on the host no other process is touched.

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/internal/vmtest/vmproto"
	"github.com/safebpf/safebpf/loader"
)

type s3Options struct {
	arm, lib, label string
	victim          string
	n, batch        int
	closeParallel   int
	interval        time.Duration
	settle          time.Duration
}

func s3(o s3Options) vmproto.LabRecord {
	r := vmproto.LabRecord{Scenario: "3", Arm: o.arm, Safebpf: o.arm == "safebpf", Numbers: map[string]float64{}}
	if o.label != "" {
		r.Arm = o.label
	}
	if o.lib == "" {
		return failed(r, "no -lib given")
	}
	lib, cleanup, err := copyLibrary(o.lib)
	if err != nil {
		return failed(r, "%v", err)
	}
	defer cleanup()
	syms, err := functionSymbols(lib, o.n)
	if err != nil {
		return failed(r, "%v", err)
	}
	r.Numbers["uprobes"] = float64(len(syms))
	if o.arm == "multi" {
		if err := features.HaveBPFLinkUprobeMulti(); err != nil {
			r.Outcome = "unsupported"
			r.Summary = "no uprobe_multi link on this kernel: " + err.Error()
			return r
		}
	}

	v, err := startVictim(o.victim, lib)
	if err != nil {
		return failed(r, "%v", err)
	}
	defer v.kill()
	tBase := now()
	time.Sleep(o.settle)

	m, err := counters()
	if err != nil {
		return failed(r, "%v", err)
	}
	defer m.Close()
	var closers []io.Closer
	tA0 := now()
	var attachErr error
	switch o.arm {
	case "baseline":
		time.Sleep(o.settle)
		r.Mechanism = "none"
	case "naive", "paced":
		attachErr = func() error {
			prog, err := counterProg("lab_s3", ebpf.Kprobe, 0, "", m, 0, 0)
			if err != nil {
				return err
			}
			closers = append(closers, prog)
			ex, err := link.OpenExecutable(lib)
			if err != nil {
				return err
			}
			for i, s := range syms {
				if o.arm == "paced" && i > 0 {
					time.Sleep(o.interval)
				}
				l, err := ex.Uprobe(s, prog, nil)
				if err != nil {
					return fmt.Errorf("uprobe %d (%s): %w", i, s, err)
				}
				closers = append(closers, l)
			}
			return nil
		}()
		r.Mechanism = fmt.Sprintf("%d uprobes one by one", len(syms))
		if o.arm == "paced" {
			r.Mechanism += fmt.Sprintf(", paced %s × 1", o.interval)
			r.Numbers["interval_ms"] = ms(o.interval)
		}
	case "safebpf":
		attachErr = func() error {
			prog, err := counterProg("lab_s3", ebpf.Kprobe, 0, "", m, 0, 0)
			if err != nil {
				return err
			}
			closers = append(closers, prog)
			l, err := loader.New(nil)
			if err != nil {
				return fmt.Errorf("safebpf loader: %w", err)
			}
			defer l.Close()
			ex, err := l.OpenExecutable(lib)
			if err != nil {
				return err
			}
			for i, s := range syms {
				lk, err := ex.Uprobe(s, prog, nil, &loader.Extra{NoSeccomp: true})
				if err != nil {
					r.Decision = decisionOf(err)
					return fmt.Errorf("uprobe %d (%s): %w", i, s, err)
				}
				if i == 0 {
					d := lk.Decision()
					r.Decision = loader.Explain(d)
					r.Mechanism = fmt.Sprintf("%d × %s", len(syms), d.Chosen)
					if p := d.Settings.Pacing; p != nil {
						r.Mechanism += fmt.Sprintf(", paced %s × %d", p.Interval, p.Concurrency)
						r.Numbers["interval_ms"] = ms(p.Interval)
					}
				}
				closers = append(closers, lk)
			}
			return nil
		}()
	case "multi":
		attachErr = func() error {
			prog, err := ebpf.NewProgram(counterSpec("lab_s3_multi", ebpf.Kprobe, ebpf.AttachTraceUprobeMulti, "", m, 0, 0))
			if err != nil {
				return fmt.Errorf("load uprobe_multi program: %w", err)
			}
			closers = append(closers, prog)
			ex, err := link.OpenExecutable(lib)
			if err != nil {
				return err
			}
			b := o.batch
			if b <= 0 || b > len(syms) {
				b = len(syms)
			}
			for i := 0; i < len(syms); i += b {
				if i > 0 && o.interval > 0 {
					time.Sleep(o.interval)
				}
				l, err := ex.UprobeMulti(syms[i:min(i+b, len(syms))], prog, nil)
				if err != nil {
					return fmt.Errorf("uprobe_multi link of %d symbols: %w", min(b, len(syms)-i), err)
				}
				closers = append(closers, l)
			}
			return nil
		}()
		if o.batch > 0 && o.batch < len(syms) {
			r.Mechanism = fmt.Sprintf("uprobe_multi links of %d, %s apart", o.batch, o.interval)
			r.Numbers["batch"], r.Numbers["interval_ms"] = float64(o.batch), ms(o.interval)
		} else {
			r.Mechanism = fmt.Sprintf("one uprobe_multi link of %d", len(syms))
		}
	default:
		return failed(r, "unknown arm %q", o.arm)
	}
	tA1 := now()
	if attachErr == nil && o.arm != "baseline" {
		time.Sleep(o.settle / 2)
	}
	tD0 := now()
	closeAll(closers, o.closeParallel)
	tD1 := now()
	if o.closeParallel > 1 {
		r.Numbers["close_parallel"] = float64(o.closeParallel)
	}
	time.Sleep(o.settle)
	iters, err := v.stop()
	if err != nil {
		return failed(r, "victim: %v", err)
	}
	if attachErr != nil {
		if errors.Is(attachErr, fallback.ErrRefused) {
			r.Outcome, r.Summary = "refused", "refused: "+attachErr.Error()
			return r
		}
		return failed(r, "%v", attachErr)
	}
	r.Numbers["attach_ms"] = float64(tA1-tA0) / 1e6
	r.Numbers["detach_ms"] = float64(tD1-tD0) / 1e6
	base := window(iters, tBase, tA0)
	att := window(iters, tA0, tA1)
	det := window(iters, tD0, tD1)
	put := func(prefix string, s stats) {
		r.Numbers[prefix+"_iters"] = float64(s.n)
		r.Numbers[prefix+"_p50_ms"] = s.p50
		r.Numbers[prefix+"_p99_ms"] = s.p99
		r.Numbers[prefix+"_max_ms"] = s.max
	}
	put("baseline", base)
	put("attach", att)
	put("detach", det)
	r.Outcome = "measured"
	if o.arm == "baseline" {
		r.Summary = fmt.Sprintf("victim fork+mmap p50/p99/max %s ms over %d iterations", base, base.n)
		return r
	}
	detach := fmt.Sprintf("detach %.0f ms", r.Numbers["detach_ms"])
	if o.closeParallel > 1 {
		detach += fmt.Sprintf(" (%d closers)", o.closeParallel)
	}
	r.Summary = fmt.Sprintf("%s: attach %.0f ms, %s; victim p50/p99/max %s ms while attaching, %s detaching (baseline %s)",
		r.Mechanism, r.Numbers["attach_ms"], detach, att, det, base)
	return r
}

// copyLibrary copies path to a private file, so that only the victim maps
// the inode the uprobes go on.
func copyLibrary(path string) (string, func(), error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return "", nil, fmt.Errorf("read library: %w", err)
	}
	dir, err := os.MkdirTemp("", "lab-s3-")
	if err != nil {
		return "", nil, err
	}
	dst := filepath.Join(dir, filepath.Base(path))
	if err := os.WriteFile(dst, src, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return dst, func() { os.RemoveAll(dir) }, nil
}

// functionSymbols returns n function symbols of the library's dynamic symbol
// table with distinct addresses and unambiguous names, in name order.
func functionSymbols(path string, n int) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		return nil, fmt.Errorf("read dynamic symbols of %s: %w", path, err)
	}
	names := map[string]int{}
	addrs := map[uint64]bool{}
	var cand []elf.Symbol
	for _, s := range syms {
		names[s.Name]++
		if elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Section == elf.SHN_UNDEF || s.Size == 0 || s.Value == 0 {
			continue
		}
		cand = append(cand, s)
	}
	var out []string
	sort.Slice(cand, func(i, j int) bool { return cand[i].Name < cand[j].Name })
	for _, s := range cand {
		if names[s.Name] != 1 || addrs[s.Value] {
			continue
		}
		addrs[s.Value] = true
		out = append(out, s.Name)
	}
	if len(out) < n {
		return nil, fmt.Errorf("%s has only %d usable function symbols, want %d", path, len(out), n)
	}
	// Spread the probes over the library rather than taking the first n.
	step := float64(len(out)) / float64(n)
	var pick []string
	for i := range n {
		pick = append(pick, out[int(float64(i)*step)])
	}
	return slices.Compact(pick), nil
}

// now is CLOCK_MONOTONIC in nanoseconds, comparable across processes.
func now() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

type iteration struct{ start, dur int64 }

type victim struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// startVictim starts the victim program (./victim/victim.c) and waits for
// it to map lib.
func startVictim(prog, lib string) (*victim, error) {
	if prog == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		prog = filepath.Join(filepath.Dir(self), "victim")
	}
	cmd := exec.Command(prog, lib)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start victim: %w", err)
	}
	v := &victim{cmd: cmd, stdin: in, out: bufio.NewReader(outp)}
	line, err := v.out.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		v.kill()
		return nil, fmt.Errorf("victim did not start: %q %v", line, err)
	}
	return v, nil
}

func (v *victim) kill() {
	if v.cmd.ProcessState == nil {
		_ = v.cmd.Process.Kill()
		_ = v.cmd.Wait()
	}
}

// stop ends the victim's loop and reads its iterations.
func (v *victim) stop() ([]iteration, error) {
	v.stdin.Close()
	var its []iteration
	for {
		line, err := v.out.ReadString('\n')
		if f := strings.Fields(line); len(f) == 2 {
			a, _ := strconv.ParseInt(f[0], 10, 64)
			b, _ := strconv.ParseInt(f[1], 10, 64)
			its = append(its, iteration{a, b})
		}
		if err != nil {
			break
		}
	}
	err := v.cmd.Wait()
	return its, err
}

type stats struct {
	n             int
	p50, p99, max float64 // milliseconds
}

func (s stats) String() string {
	if s.n == 0 {
		return "-/-/-"
	}
	return fmt.Sprintf("%s/%s/%s", fmtMs(s.p50), fmtMs(s.p99), fmtMs(s.max))
}

func fmtMs(v float64) string {
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// window returns the latency statistics of the iterations that overlap
// [from, to): an iteration stalled across the window's start counts.
func window(its []iteration, from, to int64) stats {
	var d []float64
	for _, it := range its {
		if it.start < to && it.start+it.dur > from {
			d = append(d, float64(it.dur)/1e6)
		}
	}
	if len(d) == 0 {
		return stats{}
	}
	sort.Float64s(d)
	pct := func(p float64) float64 { return d[min(len(d)-1, int(p*float64(len(d))))] }
	return stats{n: len(d), p50: pct(0.50), p99: pct(0.99), max: d[len(d)-1]}
}

// closeAll closes cs in reverse order, one by one, or with n closers at a
// time when n > 1.
func closeAll(cs []io.Closer, n int) {
	if n <= 1 {
		for i := len(cs) - 1; i >= 0; i-- {
			cs[i].Close()
		}
		return
	}
	work := make(chan io.Closer)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				c.Close()
			}
		}()
	}
	for i := len(cs) - 1; i >= 0; i-- {
		work <- cs[i]
	}
	close(work)
	wg.Wait()
}
