//go:build linux

package probe

import (
	"bufio"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/safebpf/safebpf/internal/testutil"
)

// TestSymbolLookupAgreesWithKallsyms holds the kernel's own lookup
// (bpf_kallsyms_lookup_name) against /proc/kallsyms on the running kernel:
// every few hundredth name listed is found, the same names with a suffix
// are not, and data symbols are reported listed exactly when init_task is.
func TestSymbolLookupAgreesWithKallsyms(t *testing.T) {
	testutil.RequirePrivileged(t)
	s, err := newSymbolLookup()
	if errors.Is(err, ebpf.ErrNotSupported) || err != nil && strings.Contains(err.Error(), "invalid func") {
		t.Skipf("no bpf_kallsyms_lookup_name here (5.16+): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	listed := map[string]bool{}
	var sample []string
	sc := bufio.NewScanner(f)
	for i := 0; sc.Scan(); i++ {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		listed[fields[2]] = true
		// The helper reports an address of 0 as missing (the per-CPU
		// variable at offset 0, fixed_percpu_data on 6.1 and 6.12).
		if i%397 == 0 && len(fields[2]) < ksymNameLen && strings.Trim(fields[0], "0") != "" {
			sample = append(sample, fields[2])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(sample) < 100 {
		t.Fatalf("only %d names sampled from /proc/kallsyms", len(sample))
	}
	for _, n := range sample {
		found, _, err := s.has(n)
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			t.Errorf("%s is in /proc/kallsyms but the lookup does not find it", n)
		}
		missing := n + "_safebpf_no_such"
		if found, _, err := s.has(missing); err != nil || found {
			t.Errorf("%s: found=%v err=%v, want not found", missing, found, err)
		}
	}
	k, err := lookupKallsyms(nil)
	if err != nil {
		t.Fatal(err)
	}
	if k.DataSymbols != listed[dataSymbolMarker] {
		t.Errorf("data symbols listed: lookup says %v, /proc/kallsyms lists %s: %v", k.DataSymbols, dataSymbolMarker, listed[dataSymbolMarker])
	}
	t.Logf("%d names agree; data symbols listed: %v", len(sample), k.DataSymbols)
}
