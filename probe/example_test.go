package probe_test

import (
	"context"
	"fmt"

	"github.com/safebpf/safebpf/probe"
)

// Describe a kernel from its strings alone, as `safebpf check` does.
func ExampleDescribe() {
	k, err := probe.Describe(probe.Description{
		Release:          "5.4.0-1103-aws",
		VersionSignature: "Ubuntu 5.4.0-1103.111-aws 5.4.231",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(k.Version, k.VersionSource, k.Distro.UbuntuABI)
	fmt.Println(probe.Fentry, k.Support(probe.Fentry).Yes(), k.Support(probe.Fentry).Reason)
	// Output:
	// 5.4.231 version_signature 1103
	// fentry false offline: by version: fentry needs 5.5.0+, kernel is 5.4.231
}

// Without Ubuntu's version_signature, an Ubuntu release names only the line.
func ExampleResolveVersion() {
	v, src, _ := probe.ResolveVersion(probe.VersionSources{Release: "5.4.0-1103-aws"})
	fmt.Println(v, src, v.PatchKnown)
	// Output: 5.4 release_partial false
}

// Detect the running kernel. It needs root (or CAP_BPF+CAP_PERFMON) to say
// "available"; otherwise mechanisms are undecided.
func ExampleDetect() {
	k, err := probe.Detect(context.Background(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range probe.Mechanisms() {
		s := k.Support(m)
		fmt.Printf("%-20s known=%v yes=%v %s\n", m, s.Known(), s.Yes(), s.Reason)
	}
}
