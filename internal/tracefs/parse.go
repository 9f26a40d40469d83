package tracefs

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Probe is one line of kprobe_events or uprobe_events as the kernel prints
// it, for example "r16:safebpf_12_0/do_exit_12_0 do_exit" or
// "p:g/e /bin/bash:0x0000000000012345".
type Probe struct {
	// Return is true for kretprobes and uretprobes ('r' lines).
	Return bool
	// MaxActive is the kretprobe maxactive printed after 'r'; 0 when absent.
	MaxActive int
	// Group and Event name the trace event.
	Group, Event string
	// Target is the rest of the line: the symbol (with offset) or
	// PATH:OFFSET, followed by any fetch arguments.
	Target string
}

// ParseProbes parses the contents of kprobe_events or uprobe_events. Blank
// lines and '#' comments are skipped; a malformed line is an error naming
// its line number.
func ParseProbes(r io.Reader) ([]Probe, error) {
	var out []Probe
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		p, err := parseProbe(text)
		if err != nil {
			return nil, fmt.Errorf("parse probe line %d %q: %w", line, text, err)
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read probe events: %w", err)
	}
	return out, nil
}

func parseProbe(text string) (Probe, error) {
	var p Probe
	head, target, _ := strings.Cut(text, " ")
	p.Target = strings.TrimSpace(target)
	kind, name, found := strings.Cut(head, ":")
	if !found || kind == "" {
		return Probe{}, fmt.Errorf("missing type and name: %w", errInvalidInput)
	}
	switch kind[0] {
	case 'p':
		if len(kind) != 1 {
			return Probe{}, fmt.Errorf("type %q: %w", kind, errInvalidInput)
		}
	case 'r':
		p.Return = true
		if len(kind) > 1 {
			n, err := strconv.Atoi(kind[1:])
			if err != nil || n < 0 {
				return Probe{}, fmt.Errorf("maxactive %q: %w", kind[1:], errInvalidInput)
			}
			p.MaxActive = n
		}
	default:
		return Probe{}, fmt.Errorf("type %q: %w", kind, errInvalidInput)
	}
	group, event, found := strings.Cut(name, "/")
	if !found || group == "" || event == "" {
		return Probe{}, fmt.Errorf("name %q is not GROUP/EVENT: %w", name, errInvalidInput)
	}
	p.Group, p.Event = group, event
	return p, nil
}

// ProfileEntry is one line of kprobe_profile: the event name (the kernel
// prints no group) with its hit and miss counters. Missed counts kprobe
// hits skipped (for example on recursion) and, for kretprobes, instances
// dropped because maxactive was exhausted. Older kernels, without the 2021
// patch (Naveen N. Rao) that adds the kretprobe part to kprobe_profile,
// print only the kprobe part, so maxactive exhaustion reads as 0 there;
// treat a zero on such kernels as unknown.
type ProfileEntry struct {
	Event  string
	Hits   uint64
	Missed uint64
}

// ParseProfile parses the contents of kprobe_profile
// ("  EVENT  HITS  MISSED" per line). A malformed line is an error naming
// its line number.
func ParseProfile(r io.Reader) ([]ProfileEntry, error) {
	var out []ProfileEntry
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 3 {
			return nil, fmt.Errorf("parse profile line %d: want 3 fields, got %d: %w", line, len(fields), errInvalidInput)
		}
		hits, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parse profile line %d hits: %w", line, err)
		}
		missed, err := strconv.ParseUint(fields[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parse profile line %d missed: %w", line, err)
		}
		out = append(out, ProfileEntry{Event: fields[0], Hits: hits, Missed: missed})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read kprobe profile: %w", err)
	}
	return out, nil
}
