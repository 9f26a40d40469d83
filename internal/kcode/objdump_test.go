package kcode

import (
	"bufio"
	"debug/elf"
	"fmt"
	"golang.org/x/arch/x86/x86asm"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/safebpf/safebpf/internal/kcode/kcodetest"
)

func requireObjdump(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("objdump"); err != nil {
		tb.Skip("needs GNU objdump (binutils) as an independent disassembler")
	}
}

// objdumpCalls disassembles raw x86-64 code loaded at base with GNU
// objdump and returns its direct calls as "pc->target".
func objdumpCalls(tb testing.TB, code []byte, base uint64) []string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "text.bin")
	if err := os.WriteFile(path, code, 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("objdump", "-D", "-z", "-b", "binary", "-m", "i386:x86-64", fmt.Sprintf("--adjust-vma=%#x", base), path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	// "ffffffff81000011:\te8 1a 00 00 00       \tcall   0xffffffff81000030"
	re := regexp.MustCompile(`^\s*([0-9a-f]+):\t(?:[0-9a-f]{2} )+\s*\tcall\s+0x([0-9a-f]+)$`)
	var calls []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			pc, _ := strconv.ParseUint(m[1], 16, 64)
			t, _ := strconv.ParseUint(m[2], 16, 64)
			calls = append(calls, fmt.Sprintf("%#x->%#x", pc, t))
		}
	}
	if err := cmd.Wait(); err != nil {
		tb.Fatalf("objdump: %v", err)
	}
	return calls
}

func ourCalls(tb testing.TB, code []byte, base uint64) []string {
	tb.Helper()
	bs, err := branchesX86(code, base)
	if err != nil {
		tb.Fatalf("decode: %v", err)
	}
	var calls []string
	for _, b := range bs {
		if b.call {
			calls = append(calls, fmt.Sprintf("%#x->%#x", b.pc, b.target))
		}
	}
	return calls
}

// TestDecoderMatchesObjdump holds the synthetic kernels' encodings and the
// decoder against an independent disassembler: GNU objdump must find the
// same direct calls at the same addresses in every synthetic kernel.
func TestDecoderMatchesObjdump(t *testing.T) {
	requireObjdump(t)
	for _, k := range []kcodetest.Kernel{
		{NofaultFix: true, VmallocLookup: true, NMIObjectCheck: true},
		{NofaultFix: true, Pfx: true, Thunks: true, Cold: true, VmallocLookup: true, TailCall: true},
		{InlineHeapCheck: true, VmallocLookup: true},
	} {
		b := k.Image().Build()
		want := objdumpCalls(t, b.Text, b.Base)
		if len(want) < 3 {
			t.Fatalf("objdump found only %v", want)
		}
		if diff := cmp.Diff(want, ourCalls(t, b.Text, b.Base)); diff != "" {
			t.Errorf("%+v: calls (-objdump +ours):\n%s", k, diff)
		}
	}
}

// TestDecoderMatchesObjdumpOnVmlinux decodes the whole .text of a real
// kernel (SAFEBPF_VMLINUX: an uncompressed vmlinux, e.g. extracted from a
// Debian linux-image package's vmlinuz) at every instruction boundary GNU
// objdump finds, and compares lengths and direct call targets. It is how
// the decoder's gaps (x86asm knows neither endbr64 nor stac/clac) were
// found; the log lists what x86asm still cannot decode.
func TestDecoderMatchesObjdumpOnVmlinux(t *testing.T) {
	path := os.Getenv("SAFEBPF_VMLINUX")
	if path == "" {
		t.Skip("set SAFEBPF_VMLINUX to an uncompressed vmlinux to compare against objdump on real kernel text")
	}
	requireObjdump(t)
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sec := f.Section(".text")
	if sec == nil {
		t.Fatal("no .text")
	}
	text, err := sec.Data()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("objdump", "-d", "-z", "--no-show-raw-insn", "-j", ".text", path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// "ffffffff81000011:\tcall   0xffffffff811d6d00" (no symbols: stripped)
	type insn struct {
		addr uint64
		text string
	}
	var prev *insn
	var total, undecodable, lenMismatch, calls, callMismatch int
	unknown := map[string]int{}
	check := func(cur insn, next uint64) {
		total++
		off := int(cur.addr - sec.Addr)
		n, inst, err := decodeX86(text[off:])
		want := int(next - cur.addr)
		switch {
		case err != nil:
			undecodable++
			fields := strings.Fields(cur.text)
			key := "?"
			if len(fields) > 0 {
				key = fields[0]
			}
			unknown[fmt.Sprintf("%s (% x)", key, text[off:off+min(want, 4)])]++
			return
		case n != want && !strings.HasPrefix(cur.text, "(bad)"):
			lenMismatch++
			if lenMismatch <= 10 {
				t.Errorf("%#x: length %d, objdump %d (%s)", cur.addr, n, want, cur.text)
			}
		}
		if strings.HasPrefix(cur.text, "call") && strings.Contains(cur.text, "0x") && !strings.Contains(cur.text, "*") {
			calls++
			target, _ := strconv.ParseUint(strings.TrimPrefix(strings.Fields(cur.text)[1], "0x"), 16, 64)
			rel, ok := inst.Args[0].(x86asm.Rel)
			if inst == nil || inst.Op != x86asm.CALL || !ok || cur.addr+uint64(n)+uint64(int64(rel)) != target {
				callMismatch++
				if callMismatch <= 10 {
					t.Errorf("%#x: objdump %q, ours %v", cur.addr, cur.text, inst)
				}
			}
		}
	}
	re := regexp.MustCompile(`^([0-9a-f]{16}):\t(.*)$`)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		addr, _ := strconv.ParseUint(m[1], 16, 64)
		if prev != nil {
			check(*prev, addr)
		}
		prev = &insn{addr, strings.TrimSpace(m[2])}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("objdump: %v", err)
	}
	var keys []string
	for k, n := range unknown {
		keys = append(keys, fmt.Sprintf("%6d %s", n, k))
	}
	sort.Sort(sort.Reverse(sort.StringSlice(keys)))
	if len(keys) > 40 {
		keys = keys[:40]
	}
	t.Logf("%s: %d instructions, %d direct calls (%d differ), %d undecodable, %d of another length; undecodable by kind:\n%s",
		path, total, calls, callMismatch, undecodable, lenMismatch, strings.Join(keys, "\n"))
}
