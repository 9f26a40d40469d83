package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/boundedio"
	"github.com/safebpf/safebpf/loader"
)

// bugreportOpts are the flags of `safebpf bugreport`.
type bugreportOpts struct {
	file      string
	decisions string
	json      bool
	probe     probeOpts
}

// Bounds of the decisions read from an agent's log.
const (
	maxDecisionRecords = 500     // the newest are kept
	maxLogLine         = 1 << 20 // longer lines are skipped
)

// maxLogSize bounds how much of an agent's log is read: its last 1 GiB (a
// variable: tests lower it).
var maxLogSize int64 = 1 << 30

func (a *app) bugreportCommand() *cobra.Command {
	o := &bugreportOpts{}
	c := &cobra.Command{
		Use:   "bugreport [-o FILE] [--decisions LOG]",
		Short: "write a support bundle: probe, policy, catalog, recent decisions",
		Long: `Writes one JSON document to attach to a bug report: this program's and the
hazard catalog's versions, the SAFEBPF_* environment, the policy in effect
and where it came from (--policy or SAFEBPF_POLICY; an invalid one is
recorded, not fatal), this machine's 'safebpf probe --json', and the
recent decisions of an agent.

An agent's decisions come from its log: safebpf logs every decision
through the agent's *slog.Logger ("safebpf decision" records). Give the
log with --decisions FILE, or --decisions - to read it from stdin, e.g.
  kubectl logs POD | safebpf bugreport --decisions -
JSON-handler records are kept as objects, text-handler lines as strings;
the newest 500 are kept. Run it where the agent runs (in its container,
with the same SAFEBPF_* variables) so that the probe sees what it sees.

The bundle holds no secrets, but it holds file paths, the kernel config
and the SAFEBPF_* values; it is written with mode 0600.`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error { return a.bugreport(c, o) },
	}
	c.Flags().StringVarP(&o.file, "output", "o", "", `file to write ("-" for stdout; default safebpf-bugreport-TIME.json)`)
	c.Flags().StringVar(&o.decisions, "decisions", "", `an agent's log to take recent decisions from ("-" for stdin)`)
	c.Flags().BoolVar(&o.json, "json", false, `print what was written as JSON (with "schema_version")`)
	addPolicy(c, &o.probe.pol, true)
	addHostRoot(c, &o.probe.hostRoot)
	_ = c.MarkFlagFilename("decisions")
	return c
}

// bugReport is the support bundle.
type bugReport struct {
	SchemaVersion int               `json:"schema_version"`
	Kind          string            `json:"kind"`
	Created       string            `json:"created"`
	Version       versionJSON       `json:"version"`
	Environment   map[string]string `json:"environment"`
	Policy        bugPolicy         `json:"policy"`
	Probe         *probeReport      `json:"probe"`
	ProbeError    string            `json:"probe_error,omitempty"`
	Decisions     bugDecisions      `json:"decisions"`
}

// bugPolicy is the policy in effect, with its content.
type bugPolicy struct {
	policyJSON
	Content *hazards.Policy `json:"content,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// bugDecisions are an agent's recent decision records.
type bugDecisions struct {
	// Source is the log read, "-" for stdin, empty when none was given.
	Source string `json:"source,omitempty"`
	// Records are the newest decision records, oldest first: objects from
	// a JSON handler, strings from a text handler.
	Records []json.RawMessage `json:"records"`
	// Lines counts the log lines read; Older the records dropped to keep
	// the newest; Skipped the lines too long to read.
	Lines   int    `json:"lines_read"`
	Older   int    `json:"older_dropped"`
	Skipped int    `json:"lines_skipped"`
	Note    string `json:"note,omitempty"`
}

// bugreportResult is the JSON form of what `safebpf bugreport` wrote.
type bugreportResult struct {
	SchemaVersion int    `json:"schema_version"`
	File          string `json:"file"`
	Bytes         int    `json:"bytes"`
	Probed        bool   `json:"probed"`
	PolicySource  string `json:"policy_source,omitempty"`
	Decisions     int    `json:"decisions"`
}

func (a *app) bugreport(c *cobra.Command, o *bugreportOpts) error {
	now := a.now()
	r := bugReport{
		SchemaVersion: schemaVersion,
		Kind:          "safebpf-bugreport",
		Created:       now.UTC().Format(time.RFC3339),
		Version:       buildVersion(),
		Environment:   map[string]string{},
	}
	for _, kv := range os.Environ() {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "SAFEBPF_") {
			r.Environment[k] = v
		}
	}
	// A bug report is most needed when something is wrong: an invalid
	// policy or a failed probe is recorded, not fatal.
	hr, err := resolveHostRoot(o.probe.hostRoot)
	if err != nil {
		return err
	}
	_, policy, _ := (&loader.Flags{Force: o.probe.pol.force, Policy: o.probe.pol.policy}).Settings()
	r.Policy.Source, r.Policy.Path = sourceName(policy, "--policy"), policy.Value
	rp, err := a.resolvePolicy(c, &o.probe.pol)
	if err != nil {
		r.Policy.Error = err.Error()
		rp = &resolvedPolicy{base: hazards.Builtin(), cat: hazards.Builtin(), eff: hazards.Policy{APIVersion: "safebpf/v1"}, policySource: policy}
	} else {
		r.Policy.policyJSON = rp.json()
		r.Policy.Content = rp.file
	}
	as := assumption{ReadsUserMemory: true, UserStacks: true, TailCalls: true, Alternatives: true, Seccomp: true}
	if k, err := a.detect(context.Background(), hr.Value, rp.cat.Facts()); err != nil {
		r.ProbeError = "detect kernel: " + err.Error()
	} else if r.Probe, err = probeReportFor(k, rp, &as, hr.Value); err != nil {
		r.ProbeError = err.Error()
	}
	if o.decisions != "" {
		d, err := readDecisions(o.decisions, a.stdinReader())
		if err != nil {
			return usageErr("--decisions: %w", err)
		}
		r.Decisions = d
	} else {
		r.Decisions = bugDecisions{Records: []json.RawMessage{}, Note: "no agent log given (--decisions FILE): the bundle has no decisions"}
	}

	var buf bytes.Buffer
	if err := writeJSON(&buf, r); err != nil {
		return err
	}
	name := o.file
	if name == "" {
		name = "safebpf-bugreport-" + now.UTC().Format("20060102-150405") + ".json"
	}
	if name == "-" {
		_, err := a.stdout.Write(buf.Bytes())
		return err
	}
	if err := os.WriteFile(name, buf.Bytes(), 0o600); err != nil {
		return usageErr("write bundle: %w", err)
	}
	res := bugreportResult{SchemaVersion: schemaVersion, File: name, Bytes: buf.Len(), Probed: r.Probe != nil,
		PolicySource: r.Policy.Source, Decisions: len(r.Decisions.Records)}
	if o.json {
		return writeJSON(a.stdout, res)
	}
	p := &printer{w: a.stdout}
	probed := "the probe failed: " + r.ProbeError
	if r.Probe != nil {
		probed = "probe of " + r.Probe.Kernel.Release
	}
	pol := "no policy"
	if r.Policy.Source != "" {
		pol = "policy from " + r.Policy.Source
		if r.Policy.Error != "" {
			pol += " (invalid, recorded)"
		}
	}
	dec := "no agent log"
	if r.Decisions.Source != "" {
		dec = plural(len(r.Decisions.Records), "safebpf record", "safebpf records", "no safebpf records") + " from " + r.Decisions.Source
	}
	p.para("", fmt.Sprintf("Wrote %s (%d KiB): %s; %s; catalog %s; %s.", name, (buf.Len()+1023)/1024, probed, pol, r.Version.Catalog.describe(), dec))
	p.para("", "Attach it to the issue. It holds no secrets, but file paths, the kernel config and the SAFEBPF_* values.")
	return p.err
}

// stdinReader is standard input, or what a test gave.
func (a *app) stdinReader() io.Reader {
	if a.stdin != nil {
		return a.stdin
	}
	return os.Stdin
}

// readDecisions reads an agent's log and keeps its newest safebpf
// records.
func readDecisions(path string, stdin io.Reader) (bugDecisions, error) {
	d := bugDecisions{Source: path, Records: []json.RawMessage{}}
	var r io.Reader = stdin
	partial := false
	if path != "-" {
		f, err := boundedio.Open(path, "decision log")
		if err != nil {
			return d, err
		}
		defer f.Close()
		// A long-lived agent's log can be big: its newest records are
		// at the end, so read the end.
		if fi, err := f.Stat(); err == nil && fi.Size() > maxLogSize {
			if _, err := f.Seek(fi.Size()-maxLogSize, io.SeekStart); err != nil {
				return d, fmt.Errorf("read %s: %w", path, err)
			}
			partial = true
			d.Note = fmt.Sprintf("read the last %s of the log", boundedio.FormatSize(maxLogSize))
		}
		r = f
	}
	br := bufio.NewReaderSize(io.LimitReader(r, maxLogSize), 64<<10)
	if partial {
		if _, err := readLine(br); err != nil && !errors.Is(err, errLongLine) && !errors.Is(err, io.EOF) {
			return d, fmt.Errorf("read %s: %w", path, err)
		}
	}
	var keep [][]byte
	for {
		line, err := readLine(br)
		if errors.Is(err, errLongLine) {
			d.Skipped++
			continue
		}
		if len(line) > 0 {
			d.Lines++
			if rec := decisionRecord(line); rec != nil {
				keep = append(keep, rec)
				if len(keep) > maxDecisionRecords {
					keep = slices.Delete(keep, 0, 1)
					d.Older++
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return d, fmt.Errorf("read %s: %w", path, err)
		}
	}
	for _, rec := range keep {
		d.Records = append(d.Records, rec)
	}
	if len(keep) == 0 {
		d.Note = strings.TrimPrefix(d.Note+"; no safebpf record in the log: is the agent's Logger (loader.Options.Logger) writing to it?", "; ")
	}
	return d, nil
}

var errLongLine = errors.New("line too long")

// readLine reads one line without its newline; a line longer than
// maxLogLine is consumed and reported as errLongLine.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) <= maxLogLine {
			line = append(line, chunk...)
		} else {
			line = nil
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, err
			}
			return nil, errLongLine
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimRight(line, "\r\n"), err
	}
}

// decisionRecord returns the line as a bundle record when it is one of
// safebpf's: a JSON record whose "msg" starts with "safebpf" (kept as
// the object), or a text-handler line with msg="safebpf… (kept as a
// string).
func decisionRecord(line []byte) json.RawMessage {
	if t := bytes.TrimSpace(line); len(t) > 0 && t[0] == '{' {
		var rec map[string]json.RawMessage
		if err := json.Unmarshal(t, &rec); err != nil {
			return nil
		}
		var msg string
		if err := json.Unmarshal(rec["msg"], &msg); err != nil || !strings.HasPrefix(msg, "safebpf") {
			return nil
		}
		var b bytes.Buffer
		if err := json.Compact(&b, t); err != nil {
			return nil
		}
		return b.Bytes()
	}
	if bytes.Contains(line, []byte(`msg="safebpf`)) || bytes.Contains(line, []byte(`msg=safebpf`)) {
		b, _ := json.Marshal(string(line))
		return b
	}
	return nil
}
