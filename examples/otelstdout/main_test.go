//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/safebpf/safebpf/internal/testutil"
)

// stdoutSpan is the part of stdouttrace's JSON the test reads.
type stdoutSpan struct {
	Name   string
	Events []struct {
		Name       string
		Attributes []struct {
			Key   string
			Value struct{ Value any }
		}
	}
}

// TestRun builds the example, runs it, and checks that stdout carries one
// safebpf.attach span with a safebpf.decision event per attach, and the
// decision metrics. It runs a built binary rather than run() in-process
// because go test strips the symbol table the uprobe needs to find
// main.tick.
func TestRun(t *testing.T) {
	testutil.RequirePrivileged(t)
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("needs the go command to build the example: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "otelstdout")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "-calls", "3")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("stderr:\n%s", stderr.String())
	if err != nil {
		t.Fatalf("otelstdout: %v", err)
	}

	// stdouttrace writes one JSON document per span; stdoutmetric one per
	// export. Decode the stream and keep the spans.
	dec := json.NewDecoder(&stdout)
	decisions := map[string]string{} // requested -> chosen
	var sawMetrics bool
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatalf("decode stdout: %v", err)
		}
		if bytes.Contains(raw, []byte(`"ScopeMetrics"`)) {
			sawMetrics = sawMetrics || bytes.Contains(raw, []byte(`"safebpf.decisions"`))
			continue
		}
		var s stdoutSpan
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("decode span: %v", err)
		}
		if s.Name != "safebpf.attach" {
			continue
		}
		for _, e := range s.Events {
			if e.Name != "safebpf.decision" {
				continue
			}
			attrs := map[string]any{}
			for _, a := range e.Attributes {
				attrs[a.Key] = a.Value.Value
			}
			req, _ := attrs["safebpf.mechanism.requested"].(string)
			chosen, _ := attrs["safebpf.mechanism.chosen"].(string)
			decisions[req] = chosen
		}
	}
	if got := decisions["uprobe"]; got != "uprobe" {
		t.Errorf("uprobe decision chose %q, want uprobe (decisions: %v)", got, decisions)
	}
	if got := decisions["perf-event-hardware"]; got != "perf-event-hardware" && got != "perf-event-software" {
		t.Errorf("perf event decision chose %q (decisions: %v)", got, decisions)
	}
	if !sawMetrics {
		t.Errorf("stdout has no safebpf.decisions metric")
	}
	if !strings.Contains(stderr.String(), "main.tick hit 3 times") {
		t.Errorf("stderr does not report 3 uprobe hits")
	}
}
