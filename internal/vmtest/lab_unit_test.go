package vmtest

import (
	"os"
	"strings"
	"testing"

	"github.com/safebpf/safebpf/internal/vmtest/vmproto"
)

// labConsole parses a real console of the lab kernel: scenario 5 locked
// CPU 1 up, the RCU stall detector reported it from CPU 0, and the program
// printed its record four times (twice through the kernel log, without
// evidence).
func labConsole(t *testing.T, drop func(string) bool) *Console {
	t.Helper()
	b, err := os.ReadFile("testdata/console/lab-6.1-lockup.log")
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if drop == nil || !drop(l) {
			keep = append(keep, l)
		}
	}
	c, err := ParseConsole(strings.NewReader(strings.Join(keep, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func labRun(c *Console) LabRun {
	return LabRun{
		Boot: LabBoot{Name: "lab-6.1", Kernel: Kernel{Name: "lab-6.1", Kind: "lab"}, Steps: []vmproto.Step{
			{Name: "s5-witness"}, {Name: "s5-safebpf"}, {Name: "s5-repro"},
		}},
		Result: &Result{Boots: []*Boot{{Console: c, Ended: true}}},
	}
}

// TestLabRecordsKeepEvidence: of the copies of one record, the one with the
// evidence wins over the kernel-log copies printed after it, and a boot
// ended on purpose after a lockup is no problem.
func TestLabRecordsKeepEvidence(t *testing.T) {
	recs, problems := labRecords(labRun(labConsole(t, nil)))
	if len(problems) != 0 {
		t.Errorf("problems = %q, want none", problems)
	}
	var repro *vmproto.LabRecord
	for i := range recs {
		if recs[i].Arm == "repro" {
			repro = &recs[i]
		}
	}
	if len(recs) != 3 || repro == nil {
		t.Fatalf("records = %+v, want witness, safebpf and repro", recs)
	}
	if repro.Outcome != "lockup" || len(repro.Evidence) == 0 || !strings.Contains(strings.Join(repro.Evidence, "\n"), "find_vmap_area") {
		t.Errorf("repro record = %+v, want the lockup with its evidence", repro)
	}
}

// TestLockupFromConsole: without the program's record, the row comes from
// the detectors' console output, timed from the attempt's start.
func TestLockupFromConsole(t *testing.T) {
	c := labConsole(t, func(l string) bool { return strings.Contains(l, `"arm":"repro"`) })
	recs, problems := labRecords(labRun(c))
	if len(problems) != 0 {
		t.Errorf("problems = %q, want none (the console shows the lockup)", problems)
	}
	var got vmproto.LabRecord
	for _, r := range recs {
		if r.Arm == "repro" {
			got = r
		}
	}
	if got.Outcome != "lockup" || !strings.Contains(got.Summary, "rcu_preempt detected stalls") ||
		!strings.Contains(got.Summary, "find_vmap_area under bpf_probe_read_user") {
		t.Errorf("record from the console = %+v", got)
	}
	// Started at uptime 9.23 s, the first stall report at 19.50 s.
	if d := got.Numbers["detected_after_s"]; d < 10 || d > 10.5 {
		t.Errorf("detected_after_s = %v, want about 10.3", d)
	}
	if _, ok := lockupFromConsole(&Console{Lines: []string{"[ 1.0] all quiet"}}); ok {
		t.Error("lockup found on a quiet console")
	}
}

// TestLabRowsExpectations holds the lab's verdicts against the kernels'
// evidence: a hang without tasks_rcu_exit_srcu, no hang with it, a metric
// that disagrees with the BPF counters and a wrong witness are problems;
// a decision that does not avoid a reproduced hazard is a finding.
func TestLabRowsExpectations(t *testing.T) {
	rec := func(sc, arm, outcome string, ev []string, nums map[string]float64) vmproto.LabRecord {
		return vmproto.LabRecord{Scenario: sc, Arm: arm, Outcome: outcome, Evidence: ev, Numbers: nums, Safebpf: strings.HasPrefix(arm, "safebpf"),
			Mechanism: "kretprobe"}
	}
	present := []string{"kallsyms tasks_rcu_exit_srcu: present"}
	absent := []string{"kallsyms tasks_rcu_exit_srcu: absent"}
	cases := []struct {
		name              string
		kind              string
		recs              []vmproto.LabRecord
		problems, finding string
	}{
		{name: "fentry hangs where the symbol is", recs: []vmproto.LabRecord{
			rec("1", "naive-fentry", "hang", present, nil), rec("1", "safebpf-fentry", "exited", present, nil)}},
		{name: "no hang although the symbol is there", recs: []vmproto.LabRecord{
			rec("1", "naive-fentry", "exited", present, nil), rec("1", "safebpf-fentry", "exited", present, nil)},
			problems: "did not hang"},
		{name: "hang without the symbol", recs: []vmproto.LabRecord{
			rec("1", "naive-fentry", "hang", absent, nil), rec("1", "safebpf-fentry", "exited", absent, nil)},
			problems: "evidence rule is wrong"},
		{name: "safebpf's decision hangs", recs: []vmproto.LabRecord{
			rec("1", "naive-fentry", "hang", present, nil), rec("1", "safebpf-fentry", "hang", present, nil)},
			finding: "hung"},
		{name: "kretprobe: decision misses too", recs: []vmproto.LabRecord{
			rec("2", "naive", "missed", nil, map[string]float64{"missed": 128, "entries": 256}),
			rec("2", "safebpf", "missed", nil, map[string]float64{"missed": 128, "entries": 256, "metric_missed": 128}),
			rec("2", "safebpf-maxactive", "missed", nil, map[string]float64{"missed": 240, "metric_missed": 240})},
			finding: "missed 128 of 256"},
		{name: "kretprobe without a variant: the catalog's cap misses too", recs: []vmproto.LabRecord{
			rec("2", "naive", "missed", nil, map[string]float64{"missed": 246, "entries": 256}),
			rec("2", "safebpf", "none-missed", nil, map[string]float64{"missed": 0, "entries": 256, "metric_missed": 0}),
			rec("2", "safebpf-kretprobe", "missed", nil, map[string]float64{"missed": 12, "entries": 256, "metric_missed": 12}),
			rec("2", "safebpf-maxactive", "missed", nil, map[string]float64{"missed": 240, "metric_missed": 240})},
			finding: "without an fexit variant"},
		{name: "kretprobe without a variant: capped, none missed", recs: []vmproto.LabRecord{
			rec("2", "naive", "missed", nil, map[string]float64{"missed": 246, "entries": 256}),
			rec("2", "safebpf", "none-missed", nil, map[string]float64{"missed": 0, "entries": 256, "metric_missed": 0}),
			rec("2", "safebpf-kretprobe", "none-missed", nil, map[string]float64{"missed": 0, "entries": 256, "metric_missed": 0}),
			rec("2", "safebpf-maxactive", "missed", nil, map[string]float64{"missed": 240, "metric_missed": 240})}},
		{name: "metric disagrees with the counters", recs: []vmproto.LabRecord{
			rec("2", "naive", "missed", nil, map[string]float64{"missed": 128}),
			rec("2", "safebpf", "none-missed", nil, map[string]float64{"missed": 0, "metric_missed": 0}),
			rec("2", "safebpf-maxactive", "missed", nil, map[string]float64{"missed": 240, "metric_missed": 0})},
			problems: "safebpf.probe.missed says 0, the BPF counters 240"},
		{name: "witness says fixed on the lab kernel", kind: "lab", recs: []vmproto.LabRecord{
			rec("5", "witness", "fixed", nil, nil), rec("5", "safebpf", "refused", nil, nil), rec("5", "repro", "lockup", nil, nil)},
			problems: "want affected"},
		{name: "profiler attached on an affected kernel", kind: "lab", recs: []vmproto.LabRecord{
			rec("5", "witness", "affected", nil, nil), rec("5", "safebpf", "attached", nil, nil), rec("5", "repro", "lockup", nil, nil)},
			finding: "attached the profiler"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rows := LabRows([]*LabResult{{Kernel: "k", Kind: tc.kind, Records: tc.recs}})
			var problems, findings []string
			for _, r := range rows {
				problems = append(problems, r.Problems...)
				findings = append(findings, r.Findings...)
			}
			check := func(what string, got []string, want string) {
				j := strings.Join(got, "\n")
				if (want == "") != (j == "") || !strings.Contains(j, want) {
					t.Errorf("%s = %q, want %q", what, got, want)
				}
			}
			check("problems", problems, tc.problems)
			check("findings", findings, tc.finding)
		})
	}
}
