package probe

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fullKernel has every field of Kernel set, down to the pointers inside
// map values.
func fullKernel() *Kernel {
	yes, no := true, false
	return &Kernel{
		Release: "6.1.0-18-cloud-amd64", ProcVersion: "Linux version 6.1.0-18 (Debian 6.1.76-1)", VersionSignature: "sig",
		VDSOVersion: "6.1.76", Version: &Version{6, 1, 76, true}, VersionSource: SourceDebian, VersionNote: "note",
		Distro: Distro{ID: "debian", VersionID: "12", UbuntuABI: 1, RHEL: "el9", RHELBuild: "1", Amazon: "amzn2", DebianPackage: "6.1.76-1"},
		Arch:   "amd64", CPUs: 8, Preemption: Preemption{&yes, PreemptFull, "w"},
		Config: map[string]string{"CONFIG_BPF": "y"}, ConfigSource: "/boot/config",
		Kallsyms: Kallsyms{Readable: true, DataSymbols: true, Symbols: map[string]bool{"bp_desc": true}},
		BTF:      true, Tracefs: "/sys/kernel/tracing", Debugfs: "/sys/kernel/debug",
		Mechanisms:   map[Mechanism]Support{Kprobe: {&yes, "ok"}, Fentry: {&no, "no"}, Iter: {nil, "undecided"}},
		Observations: map[string]Observation{"selftest:x": {&yes, "w"}, "btf:a.b": {nil, "why"}},
		Notes:        []string{"n"},
	}
}

// TestCloneIsDeep: Clone equals the JSON round trip (what Kernel is), and
// shares no pointer, map or slice with the original. fullKernel must set
// every field, so that a field added to Kernel fails here until Clone and
// this test know it.
func TestCloneIsDeep(t *testing.T) {
	k := fullKernel()
	checkAllSet(t, reflect.ValueOf(*k), "Kernel")
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	var viaJSON Kernel
	if err := json.Unmarshal(b, &viaJSON); err != nil {
		t.Fatal(err)
	}
	c := k.Clone()
	if diff := cmp.Diff(&viaJSON, c); diff != "" {
		t.Errorf("Clone differs from the JSON round trip (-json +clone):\n%s", diff)
	}
	checkNotShared(t, reflect.ValueOf(k).Elem(), reflect.ValueOf(c).Elem(), "Kernel")
	if (*Kernel)(nil).Clone() != nil {
		t.Error("nil.Clone() != nil")
	}
}

func checkAllSet(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	if v.Kind() == reflect.Struct {
		for i := 0; i < v.NumField(); i++ {
			checkAllSet(t, v.Field(i), path+"."+v.Type().Field(i).Name)
		}
		return
	}
	if v.IsZero() {
		t.Errorf("fullKernel leaves %s unset", path)
	}
}

// checkNotShared fails when a and b, equal values, share memory.
func checkNotShared(t *testing.T, a, b reflect.Value, path string) {
	t.Helper()
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() {
			return
		}
		if a.Pointer() == b.Pointer() {
			t.Errorf("%s: the clone shares the pointer", path)
		}
		checkNotShared(t, a.Elem(), b.Elem(), path)
	case reflect.Map:
		if a.IsNil() {
			return
		}
		if a.Pointer() == b.Pointer() {
			t.Errorf("%s: the clone shares the map", path)
		}
		for _, key := range a.MapKeys() {
			checkNotShared(t, a.MapIndex(key), b.MapIndex(key), path+"["+key.String()+"]")
		}
	case reflect.Slice:
		if a.Len() > 0 && a.Pointer() == b.Pointer() {
			t.Errorf("%s: the clone shares the slice", path)
		}
		for i := 0; i < a.Len(); i++ {
			checkNotShared(t, a.Index(i), b.Index(i), path)
		}
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			checkNotShared(t, a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name)
		}
	case reflect.String, reflect.Bool, reflect.Int:
	default:
		t.Errorf("%s: kind %s: teach checkNotShared and Clone about it", path, a.Kind())
	}
}
