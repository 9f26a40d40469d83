//go:build linux

package tracefs

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/safebpf/safebpf/internal/testutil"
)

// forKinds runs fn as a subtest per event kind the running kernel can
// create: kretprobes with maxactive where kprobe_events exists (the 6.1
// guest), uprobes on the C library where uprobe_events exists (this host).
func forKinds(t *testing.T, f *FS, fn func(t *testing.T, kind, target string)) {
	for _, kind := range []string{"kretprobe", "uprobe"} {
		t.Run(kind, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(f.Path(), eventsFileOf(kind))); err != nil {
				t.Skipf("kernel lacks %s: %v", eventsFileOf(kind), err)
			}
			target := ""
			if kind == "uprobe" {
				path, off := testutil.LibcSymbol(t, "__libc_start_main")
				target = fmt.Sprintf("%s:%d", path, off)
			}
			fn(t, kind, target)
		})
	}
}

// eventsFileOf is the events file of an agent kind.
func eventsFileOf(kind string) string {
	if kind == "kretprobe" {
		return KprobeEventsFile
	}
	return UprobeEventsFile
}

// listed reports which of the group/name events the kernel lists.
func listed(t *testing.T, f *FS, file string, evs []string) (in, out []string) {
	t.Helper()
	probes, err := f.Probes(file)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, p := range probes {
		have[p.Group+"/"+p.Event] = true
	}
	for _, e := range evs {
		if have[e] {
			in = append(in, e)
		} else {
			out = append(out, e)
		}
	}
	return in, out
}

// removeAtEnd removes the test's events when it ends, whatever happened.
func removeAtEnd(t *testing.T, f *FS, file string, evs *[]string) {
	t.Cleanup(func() {
		for _, e := range *evs {
			_ = f.write(file, "-:"+e)
		}
	})
}

// logCleanup logs what an agent's cleanup removed and kept, once per reason.
func logCleanup(t *testing.T, who string, lines []string) {
	t.Helper()
	seen := map[string]int{}
	var order []string
	for _, l := range lines {
		if strings.HasPrefix(l, "REMOVED ") || strings.HasPrefix(l, "KEPT ") || strings.HasPrefix(l, "CLEANUPERR ") {
			verb, rest, _ := strings.Cut(l, " ")
			_, why, _ := strings.Cut(rest, " ")
			key := verb + ": " + why
			if seen[key] == 0 {
				order = append(order, key)
			}
			seen[key]++
		}
	}
	for _, k := range order {
		t.Logf("%s: %d× %s", who, seen[k], k)
	}
}

// legacyEvent creates an event named as before PID-namespace-aware names
// ("safebpf_<pid>_<n>"), as an older agent left it.
func legacyEvent(t *testing.T, f *FS, kind, target string, pid int) string {
	t.Helper()
	group := fmt.Sprintf("safebpf_%d_%d", pid, 900000+pid%1000)
	name := fmt.Sprintf("legacy_%d", pid)
	var line string
	if kind == "kretprobe" {
		line = fmt.Sprintf("r8:%s/%s vfs_read", group, name)
	} else {
		path, off, _ := strings.Cut(target, ":")
		o, _ := strconv.ParseUint(off, 10, 64)
		line = fmt.Sprintf("p:%s/%s %s:0x%x", group, name, path, o)
	}
	if err := f.write(eventsFileOf(kind), line); err != nil {
		t.Fatalf("create legacy event: %v", err)
	}
	return group + "/" + name
}

// TestCleanupAcrossPIDNamespaces runs real agents beside each other: a host
// agent, and containerised agents that are PID 1 of their own PID
// namespace, SIGKILLed and restarted (issue 12, finding 2). No agent may
// remove a live agent's events; a restarted agent must be able to create
// as many events as it likes whatever its predecessor leaked; and events
// whose owner is provably dead are removed by whoever can prove it.
func TestCleanupAcrossPIDNamespaces(t *testing.T) {
	f := mountTracefs(t)
	forKinds(t, f, func(t *testing.T, kind, target string) {
		{
			file := eventsFileOf(kind)
			var all []string
			removeAtEnd(t, f, file, &all)
			opts := func(events int, cleanup, container bool) agentOpts {
				return agentOpts{kind: kind, target: target, events: events, cleanup: cleanup, newPIDNS: container}
			}
			created := func(a *agentProc, want int) []string {
				t.Helper()
				evs, errs := events(a.until("READY"))
				all = append(all, evs...)
				if len(errs) > 0 || len(evs) != want {
					t.Fatalf("agent created %d of %d events; errors: %v", len(evs), want, errs)
				}
				return evs
			}

			host := startAgent(t, opts(2, false, false))
			hostEvs := created(host, 2)
			legacyDead := legacyEvent(t, f, kind, target, deadPID(t))
			legacyOne := legacyEvent(t, f, kind, target, 1)
			all = append(all, legacyDead, legacyOne)

			// A containerised agent (PID 1 of its namespace) cleans up at
			// start: the live host agent's events and the legacy ones,
			// whose namespace it cannot know, are not its to judge.
			c1 := startAgent(t, opts(17, true, true))
			c1Lines := c1.until("READY")
			logCleanup(t, "first container", c1Lines)
			c1Evs, c1Errs := events(c1Lines)
			all = append(all, c1Evs...)
			if len(c1Errs) > 0 || len(c1Evs) != 17 {
				t.Fatalf("container created %d of 17 events; errors: %v", len(c1Evs), c1Errs)
			}
			if _, gone := listed(t, f, file, append(slices.Clone(hostEvs), legacyDead, legacyOne)); len(gone) > 0 {
				t.Fatalf("a containerised agent removed events it cannot prove dead: %v", gone)
			}
			c1.kill() // SIGKILL: its 17 events leak, and its namespace dies

			// The restarted container (a new PID namespace, PID 1 again)
			// creates 17 events: names must not collide with the leak.
			c2 := startAgent(t, opts(17, true, true))
			c2Lines := c2.until("READY")
			logCleanup(t, "restarted container", c2Lines)
			c2Evs, c2Errs := events(c2Lines)
			all = append(all, c2Evs...)
			if len(c2Errs) > 0 || len(c2Evs) != 17 {
				t.Fatalf("restarted container created %d of 17 events; errors: %v", len(c2Evs), c2Errs)
			}
			if _, gone := listed(t, f, file, append(slices.Clone(hostEvs), legacyDead, legacyOne)); len(gone) > 0 {
				t.Fatalf("the restarted container removed events it cannot prove dead: %v", gone)
			}
			// Its predecessor holds no liveness lock any more: the
			// restarted container removes what it leaked, although the
			// dead namespace is not visible from the new one.
			if left, _ := listed(t, f, file, c1Evs); len(left) > 0 {
				t.Errorf("the restarted container left %d of its killed predecessor's %d events: %v", len(left), len(c1Evs), left)
			}

			// A host agent (the initial PID namespace sees every process)
			// starts while the first host agent and the container live.
			h2 := startAgent(t, opts(0, true, false))
			logCleanup(t, "host agent beside the container", h2.until("READY"))
			if _, gone := listed(t, f, file, append(slices.Clone(hostEvs), c2Evs...)); len(gone) > 0 {
				t.Fatalf("a host agent removed live agents' events: %v", gone)
			}
			if in, _ := listed(t, f, file, []string{legacyDead}); len(in) > 0 {
				t.Errorf("a host agent left the legacy event of dead pid: %v", in)
			}
			if _, gone := listed(t, f, file, []string{legacyOne}); len(gone) > 0 {
				t.Errorf("a host agent removed the legacy event of pid 1, which some process has: %v", gone)
			}

			// Everyone dies; the next host agent removes what they leaked.
			c2.kill()
			host.kill()
			h2.kill()
			h3 := startAgent(t, opts(0, true, false))
			logCleanup(t, "host agent after all died", h3.until("READY"))
			if in, _ := listed(t, f, file, append(slices.Clone(hostEvs), c2Evs...)); len(in) > 0 {
				t.Errorf("events of dead agents left after a host agent's cleanup: %v", in)
			}
		}
	})
}

// TestCleanupRestartInPIDNamespace restarts an agent inside one PID
// namespace whose PID 1 stays: the restarted agent must remove what its
// killed predecessors leaked, both when their pid is gone and when the
// same pid now belongs to it (ns_last_pid forces the reuse).
func TestCleanupRestartInPIDNamespace(t *testing.T) {
	f := mountTracefs(t)
	forKinds(t, f, func(t *testing.T, kind, target string) {
		{
			file := eventsFileOf(kind)
			var all []string
			removeAtEnd(t, f, file, &all)
			host := startAgent(t, agentOpts{kind: kind, target: target, events: 2})
			hostEvs, _ := events(host.until("READY"))
			all = append(all, hostEvs...)

			init := startAgent(t, agentOpts{role: "init", kind: kind, target: target, events: 3, newPIDNS: true})
			spawn := func(cmd string) (evs []string, pid int) {
				t.Helper()
				init.send(cmd)
				lines := init.until("READY")
				evs, errs := events(lines)
				all = append(all, evs...)
				if len(errs) > 0 || len(evs) != 3 {
					t.Fatalf("%s: created %d of 3 events; errors: %v", cmd, len(evs), errs)
				}
				pid, _ = strconv.Atoi(strings.TrimPrefix(lines[len(lines)-1], "READY "))
				return evs, pid
			}
			d1, pid1 := spawn("spawn")
			init.send("kill")
			init.until("KILLED")
			d2, pid2 := spawn("spawn")
			init.send("kill")
			init.until("KILLED")
			if pid2 == pid1 {
				t.Fatalf("second agent got pid %d again; the test needs a new pid", pid2)
			}
			// The next agent gets pid1 back: same pid, later start.
			init.send("lastpid " + strconv.Itoa(pid1-1))
			init.until("OK")
			time.Sleep(30 * time.Millisecond) // start times count in 10ms ticks
			d3, pid3 := spawn("spawn cleanup")
			if pid3 != pid1 {
				t.Fatalf("restarted agent got pid %d, want %d (ns_last_pid)", pid3, pid1)
			}
			if in, _ := listed(t, f, file, append(slices.Clone(d1), d2...)); len(in) > 0 {
				t.Errorf("restarted agent (pid %d) left events of its dead predecessors (pids %d and %d): %v", pid3, pid1, pid2, in)
			}
			if _, gone := listed(t, f, file, append(slices.Clone(d3), hostEvs...)); len(gone) > 0 {
				t.Errorf("live events removed: %v", gone)
			}
		}
	})
}
