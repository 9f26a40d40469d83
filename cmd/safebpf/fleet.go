package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/boundedio"
	"github.com/safebpf/safebpf/probe"
)

// fleetEntry is one kernel of a fleet file.
type fleetEntry struct {
	name string
	at   string // "FILE:LINE"
	k    *probe.Kernel
}

// describedKernel is a kernel described by its files' contents, one line
// of a fleet file (probe/testdata/identities.json has this shape): a
// probe.Description with a name.
type describedKernel struct {
	Name string `json:"name"`
	probe.Description
}

// maxFleetSize bounds a fleet file: a million probe reports of about
// 100 KiB would not fit, a fleet's described kernels do.
const maxFleetSize = 256 << 20

// readFleet reads every kernel of a fleet file: a stream of JSON values,
// each an object (a probe report, a kernel, or a described kernel) or an
// array of them.
func readFleet(path string, facts []probe.Fact) ([]fleetEntry, error) {
	f, err := boundedio.OpenLimit(path, maxFleetSize, "fleet file")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReader(boundedio.LimitReader(f, maxFleetSize, "fleet file", path))
	counter := &lineCounter{r: br}
	dec := json.NewDecoder(counter)
	var out []fleetEntry
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, boundedio.ErrTooLarge) {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("read fleet file %s:%d: %w", path, counter.lineAt(dec.InputOffset()), err)
		}
		line := counter.lineAt(dec.InputOffset() - int64(len(raw)))
		values := []json.RawMessage{raw}
		if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
			values = nil
			if err := json.Unmarshal(raw, &values); err != nil {
				return nil, fmt.Errorf("read fleet file %s:%d: %w", path, line, err)
			}
		}
		for i, v := range values {
			at := fmt.Sprintf("%s:%d", path, line)
			if len(values) > 1 {
				at += fmt.Sprintf("[%d]", i)
			}
			e, err := fleetKernel(v, facts)
			if err != nil {
				return nil, fmt.Errorf("read fleet file %s: %w", at, err)
			}
			e.at = at
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("read fleet file %s: no kernel in it", path)
	}
	return out, nil
}

// fleetKernel decodes one fleet value; a described kernel's kallsyms is
// searched for the symbol facts among facts.
func fleetKernel(v json.RawMessage, facts []probe.Fact) (fleetEntry, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(v, &keys); err != nil {
		return fleetEntry{}, fmt.Errorf("want a JSON object: %w", err)
	}
	var name string
	if n, ok := keys["name"]; ok {
		_ = json.Unmarshal(n, &name)
	}
	_, report := keys["kernel"]
	_, probed := keys["mechanisms"]
	_, source := keys["version_source"]
	if report || probed || source {
		k, err := probe.ReadKernelJSON(bytes.NewReader(v))
		if err != nil {
			return fleetEntry{}, err
		}
		return fleetEntry{name: name, k: k}, nil
	}
	var d describedKernel
	if err := json.Unmarshal(v, &d); err != nil {
		return fleetEntry{}, err
	}
	// Describe checks the arch and the CPU count.
	d.Facts = facts
	k, err := probe.Describe(d.Description)
	if err != nil {
		return fleetEntry{}, err
	}
	return fleetEntry{name: d.Name, k: k}, nil
}

// lineCounter counts the bytes and newlines read through it, so that a
// decoder's offset can be turned into a line number.
type lineCounter struct {
	r     io.Reader
	n     int64
	lines []int64 // offsets of the newlines read
}

func (c *lineCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	for i, b := range p[:n] {
		if b == '\n' {
			c.lines = append(c.lines, c.n+int64(i))
		}
	}
	c.n += int64(n)
	return n, err
}

// lineAt returns the 1-based line of the byte at offset.
func (c *lineCounter) lineAt(off int64) int {
	i, _ := slices.BinarySearch(c.lines, off)
	return i + 1
}

// fleetKernelJSON is one kernel of `check --fleet --json`.
type fleetKernelJSON struct {
	Name          string              `json:"name"`
	At            string              `json:"at"`
	Release       string              `json:"release"`
	Version       *probe.Version      `json:"version"`
	VersionSource probe.VersionSource `json:"version_source"`
	Distro        probe.Distro        `json:"distro"`
	Arch          string              `json:"arch"`
	CPUs          int                 `json:"cpus"`
	Summary       summary             `json:"summary"`
	Findings      []findingJSON       `json:"findings"`
	Decisions     []decisionJSON      `json:"decisions"`
}

// fleetReport is the JSON form of `check --fleet`.
type fleetReport struct {
	SchemaVersion int               `json:"schema_version"`
	Summary       fleetSummary      `json:"summary"`
	Assumption    assumption        `json:"assumption"`
	Policy        policyJSON        `json:"policy"`
	Kernels       []fleetKernelJSON `json:"kernels"`
}

// fleetSummary counts the kernels by outcome.
type fleetSummary struct {
	Text string `json:"text"`
	// Kernels is the number of kernels; WithHazards those where a hazard
	// applies, Moved those where a mechanism changes, Refused those where
	// a decision refuses for a hazard, Unavailable where one refuses only
	// because a mechanism is missing.
	Kernels     int `json:"kernels"`
	WithHazards int `json:"with_hazards"`
	Moved       int `json:"moved"`
	Refused     int `json:"refused"`
	Unavailable int `json:"unavailable"`
	// Hazards counts, per hazard, the kernels it applies to.
	Hazards map[hazards.ID]int `json:"hazards"`
}

func (a *app) fleet(o *checkOpts, rp *resolvedPolicy, mechs []probe.Mechanism, p *printer, asJSON bool) error {
	entries, err := readFleet(o.fleetFile, rp.cat.Facts())
	if err != nil {
		return usageErr("--fleet: %w", err)
	}
	r := fleetReport{SchemaVersion: schemaVersion, Assumption: o.as, Policy: rp.json(), Kernels: []fleetKernelJSON{}}
	fs := fleetSummary{Hazards: map[hazards.ID]int{}}
	refused := false
	var all [][]planned
	for _, e := range entries {
		ps, err := planMechanisms(e.k, rp, mechs, o.as, o.req)
		if err != nil {
			return usageErr("--fleet %s: %w", e.at, err)
		}
		all = append(all, ps)
		refused = refused || anyRefused(ps)
		sum := summarize(ps, "")
		name := e.name
		if name == "" {
			name = e.k.Release
		}
		r.Kernels = append(r.Kernels, fleetKernelJSON{
			Name: name, At: e.at, Release: e.k.Release, Version: e.k.Version, VersionSource: e.k.VersionSource,
			Distro: e.k.Distro, Arch: e.k.Arch, CPUs: e.k.CPUs,
			Summary: sum, Findings: findingsJSON(ps), Decisions: decisionsJSON(ps),
		})
		fs.Kernels++
		if len(sum.Hazards) > 0 {
			fs.WithHazards++
		}
		for _, id := range sum.Hazards {
			fs.Hazards[id]++
		}
		if len(sum.Moves) > 0 {
			fs.Moved++
		}
		if sum.Refusals > 0 {
			fs.Refused++
		}
		if sum.Unavailable > 0 {
			fs.Unavailable++
		}
	}
	fs.Text = fmt.Sprintf("%s: %d with hazards that apply, %d where a mechanism moves, %d refusing for a hazard",
		plural(fs.Kernels, "kernel", "kernels", "no kernels"), fs.WithHazards, fs.Moved, fs.Refused)
	if fs.Unavailable > 0 {
		fs.Text += fmt.Sprintf(", %d missing a mechanism", fs.Unavailable)
	}
	r.Summary = fs
	var status error
	if refused {
		status = errRefusals
	}
	if asJSON {
		if err := writeJSON(a.stdout, r); err != nil {
			return err
		}
		return status
	}
	p.para("", fs.Text)
	p.para("", o.as.Text)
	p.blank()
	single := len(mechs) == 1
	header := []string{"KERNEL", "VERSION", "DISTRO", "HAZARDS", "MOVES", "REFUSALS"}
	t := &table{header: header, flex: []bool{true, false, true, false, false, false}}
	if single {
		header = []string{"KERNEL", "VERSION", "HAZARDS", "DECISION"}
		if p.wide {
			header = []string{"KERNEL", "VERSION", "DISTRO", "HAZARDS", "DECISION"}
		}
		t = &table{header: header, flex: []bool{true, false, false, true, true}[:len(header)], wrap: true}
	}
	for i, k := range r.Kernels {
		version := "unknown"
		if k.Version != nil {
			version = k.Version.String()
		}
		distro := k.Distro.ID
		if k.Distro.VersionID != "" {
			distro += " " + k.Distro.VersionID
		}
		if distro == "" {
			distro = "-"
		}
		if !p.wide {
			distro = truncate(distro, 14) // the kernel's name matters more
		}
		row := []cell{plain(k.Name), plain(version), plain(distro), plain(strconv.Itoa(len(k.Summary.Hazards)))}
		if single && !p.wide {
			row = append(row[:2], row[3])
		}
		if single {
			row = append(row, decisionCell(all[i][0].d, all[i][0].err))
		} else {
			row = append(row, plain(strconv.Itoa(len(k.Summary.Moves))), plain(fmt.Sprintf("%d+%d", k.Summary.Refusals, k.Summary.Unavailable)))
		}
		t.add(row...)
	}
	t.write(p, "")
	if !single {
		p.blank()
		p.para("", "REFUSALS counts refusals for a hazard + refusals because the mechanism is missing there.")
	}
	if len(fs.Hazards) > 0 {
		p.blank()
		p.line("Hazards across the fleet")
		ht := &table{header: []string{"HAZARD", "KERNELS"}}
		for _, id := range rp.cat.IDs() {
			if n := fs.Hazards[id]; n > 0 {
				ht.add(plain(string(id)), plain(fmt.Sprintf("%d of %d", n, fs.Kernels)))
			}
		}
		ht.write(p, "  ")
	}
	if p.wide {
		for i, k := range r.Kernels {
			p.blank()
			p.line("%s (%s, %s)", k.Name, k.Release, k.At)
			p.para("  ", k.Summary.Text)
			for _, pl := range all[i] {
				if pl.d.Action == fallback.Allow && len(pl.d.Steps) == 0 {
					continue
				}
				writeDecisionDetail(p, pl.d, pl.err)
			}
		}
	} else {
		p.blank()
		p.para("", "-o wide prints every kernel's decisions; --json all of it.")
	}
	if p.err != nil {
		return p.err
	}
	return status
}
