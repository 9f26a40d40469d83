package kernel

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseProcVersion(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want ProcVersion
	}{
		{
			name: "debian 12",
			in:   "Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)\n",
			want: ProcVersion{
				Release:    "6.1.0-18-amd64",
				Builder:    "debian-kernel@lists.debian.org",
				Compiler:   "gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40",
				Build:      "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)",
				FlagsKnown: true, Flags: []string{"SMP", "PREEMPT_DYNAMIC"},
				DebianPackage:  "6.1.76-1",
				DebianUpstream: &Upstream{6, 1, 76},
			},
		},
		{
			name: "debian backports",
			in:   "Linux version 6.12.12+bpo-amd64 (debian-kernel@lists.debian.org) (x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.12.12-1~bpo12+1 (2025-02-23)",
			want: ProcVersion{
				Release:    "6.12.12+bpo-amd64",
				Builder:    "debian-kernel@lists.debian.org",
				Compiler:   "x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40",
				Build:      "#1 SMP PREEMPT_DYNAMIC Debian 6.12.12-1~bpo12+1 (2025-02-23)",
				FlagsKnown: true, Flags: []string{"SMP", "PREEMPT_DYNAMIC"},
				DebianPackage:  "6.12.12-1~bpo12+1",
				DebianUpstream: &Upstream{6, 12, 12},
			},
		},
		{
			name: "ubuntu old gcc format",
			in:   "Linux version 4.15.0-213-generic (buildd@lcy02-amd64-079) (gcc version 7.5.0 (Ubuntu 7.5.0-3ubuntu1~18.04)) #224-Ubuntu SMP Mon Jun 19 13:30:12 UTC 2023",
			want: ProcVersion{
				Release:    "4.15.0-213-generic",
				Builder:    "buildd@lcy02-amd64-079",
				Compiler:   "gcc version 7.5.0 (Ubuntu 7.5.0-3ubuntu1~18.04)",
				Build:      "#224-Ubuntu SMP Mon Jun 19 13:30:12 UTC 2023",
				FlagsKnown: true, Flags: []string{"SMP"},
				Ubuntu: true,
			},
		},
		{
			name: "vanilla built on debian: compiler's Debian version is not the kernel's",
			in:   "Linux version 6.9.0 (root@buildbox) (gcc (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Mon May 13 10:00:00 UTC 2024",
			want: ProcVersion{
				Release:    "6.9.0",
				Builder:    "root@buildbox",
				Compiler:   "gcc (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40",
				Build:      "#1 SMP PREEMPT_DYNAMIC Mon May 13 10:00:00 UTC 2024",
				FlagsKnown: true, Flags: []string{"SMP", "PREEMPT_DYNAMIC"},
			},
		},
		{
			name: "centos 7 trailing space in compiler group",
			in:   "Linux version 3.10.0-1160.el7.x86_64 (mockbuild@kbuilder.bsys.centos.org) (gcc version 4.8.5 20150623 (Red Hat 4.8.5-44) (GCC) ) #1 SMP Mon Oct 19 16:18:59 UTC 2020",
			want: ProcVersion{
				Release:    "3.10.0-1160.el7.x86_64",
				Builder:    "mockbuild@kbuilder.bsys.centos.org",
				Compiler:   "gcc version 4.8.5 20150623 (Red Hat 4.8.5-44) (GCC) ",
				Build:      "#1 SMP Mon Oct 19 16:18:59 UTC 2020",
				FlagsKnown: true, Flags: []string{"SMP"},
			},
		},
		{
			name: "this host (firecracker)",
			in:   "Linux version 6.18.44-fc-v669 (builder@sandboxing) (gcc (GCC) 15.3.0, GNU ld (GNU Binutils) 2.46) #1 SMP PREEMPT_DYNAMIC @0",
			want: ProcVersion{
				Release:    "6.18.44-fc-v669",
				Builder:    "builder@sandboxing",
				Compiler:   "gcc (GCC) 15.3.0, GNU ld (GNU Binutils) 2.46",
				Build:      "#1 SMP PREEMPT_DYNAMIC @0",
				FlagsKnown: true, Flags: []string{"SMP", "PREEMPT_DYNAMIC"},
			},
		},
		{
			name: "release only",
			in:   "Linux version 5.10.0",
			want: ProcVersion{Release: "5.10.0"},
		},
		{
			name: "unbalanced parenthesis",
			in:   "Linux version 5.10.0 (builder (gcc #1 SMP",
			want: ProcVersion{Release: "5.10.0", Build: "#1 SMP", FlagsKnown: true, Flags: []string{"SMP"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProcVersion(tt.in)
			if err != nil {
				t.Fatalf("ParseProcVersion: %v", err)
			}
			got.Raw = ""
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestProcVersionPreemptible reads the preemption model from /proc/version
// lines as the machines of each class print them (scripts/mkcompile_h
// writes "SMP", then "PREEMPT", "PREEMPT_RT" or, from 5.18,
// "PREEMPT_DYNAMIC"); a kernel built without CONFIG_PREEMPTION prints
// plain "SMP".
func TestProcVersionPreemptible(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  bool
		flag  string
		known bool
	}{
		{"ubuntu 6.8 aws: not preemptible", "Linux version 6.8.0-1029-aws (buildd@lcy02-amd64-108) (x86_64-linux-gnu-gcc-13 (Ubuntu 13.3.0-6ubuntu2~24.04) 13.3.0, GNU ld (GNU Binutils for Ubuntu) 2.42) #31-Ubuntu SMP Wed Apr 23 18:42:41 UTC 2025", false, "", true},
		{"ubuntu 6.8 generic: dynamic", "Linux version 6.8.0-41-generic (buildd@lcy02-amd64-100) (x86_64-linux-gnu-gcc-13 (Ubuntu 13.2.0-23ubuntu4) 13.2.0, GNU ld (GNU Binutils for Ubuntu) 2.42) #41-Ubuntu SMP PREEMPT_DYNAMIC Fri Aug  2 20:41:06 UTC 2024", true, "PREEMPT_DYNAMIC", true},
		{"ubuntu 22.04 hwe 5.19: dynamic", "Linux version 5.19.0-41-generic (buildd@lcy02-amd64-045) (x86_64-linux-gnu-gcc (Ubuntu 11.3.0-1ubuntu1~22.04) 11.3.0, GNU ld (GNU Binutils for Ubuntu) 2.38) #42~22.04.1-Ubuntu SMP PREEMPT_DYNAMIC Tue Apr 18 17:40:00 UTC 2", true, "PREEMPT_DYNAMIC", true},
		{"debian 11: not preemptible", "Linux version 5.10.0-28-amd64 (debian-kernel@lists.debian.org) (gcc-10 (Debian 10.2.1-6) 10.2.1 20210110, GNU ld (GNU Binutils for Debian) 2.35.2) #1 SMP Debian 5.10.209-2 (2024-01-31)", false, "", true},
		{"talos: not preemptible", "Linux version 6.6.54-talos (@buildkitsandbox) (gcc (GCC) 13.3.0, GNU ld (GNU Binutils) 2.43.1) #1 SMP Mon Oct  7 18:53:44 UTC 2024", false, "", true},
		{"android: full preemption", "Linux version 5.10.107-android13-4-00001-g6c2b7e8c1d54-ab9406312 (build-user@build-host) (Android (8508608, based on r450784e) clang version 14.0.7) #1 SMP PREEMPT Fri Dec 23 08:42:18 UTC 2022", true, "PREEMPT", true},
		{"rt", "Linux version 6.1.0-18-rt-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_RT Debian 6.1.76-1 (2024-02-01)", true, "PREEMPT_RT", true},
		{"uniprocessor without preemption", "Linux version 4.19.0 (root@box) (gcc version 8.3.0) #3 Tue Jan 1 00:00:00 UTC 2019", false, "", true},
		{"no build part", "Linux version 5.10.0", false, "", false},
		{"build part without a number", "Linux version 5.10.0 (root@box) (gcc) custom SMP PREEMPT", false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pv, err := ParseProcVersion(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			got, flag, known := pv.Preemptible()
			if got != tt.want || flag != tt.flag || known != tt.known {
				t.Errorf("Preemptible() = %v, %q, %v; want %v, %q, %v (flags %q)", got, flag, known, tt.want, tt.flag, tt.known, pv.Flags)
			}
		})
	}
}

func TestParseProcVersionErrors(t *testing.T) {
	for _, in := range []string{"", "Linux", "Linux version ", "FreeBSD 14.0-RELEASE"} {
		if pv, err := ParseProcVersion(in); !errors.Is(err, ErrUnparseable) {
			t.Errorf("ParseProcVersion(%q) = %+v, %v; want ErrUnparseable", in, pv, err)
		}
	}
}

func TestParseVersionSignature(t *testing.T) {
	tests := []struct {
		in   string
		want VersionSignature
	}{
		{"Ubuntu 5.4.0-150.167-generic 5.4.233\n", VersionSignature{Distro: "Ubuntu", Package: "5.4.0-150.167", Flavour: "generic", Upstream: Upstream{5, 4, 233}, UpstreamRaw: "5.4.233"}},
		{"Ubuntu 5.4.0-1103.111-aws 5.4.231", VersionSignature{Distro: "Ubuntu", Package: "5.4.0-1103.111", Flavour: "aws", Upstream: Upstream{5, 4, 231}, UpstreamRaw: "5.4.231"}},
		{"Ubuntu 6.2.0-39.40~22.04.1-generic 6.2.16", VersionSignature{Distro: "Ubuntu", Package: "6.2.0-39.40~22.04.1", Flavour: "generic", Upstream: Upstream{6, 2, 16}, UpstreamRaw: "6.2.16"}},
		{"Ubuntu 5.15.0-1051.59-azure-fde 5.15.126", VersionSignature{Distro: "Ubuntu", Package: "5.15.0-1051.59", Flavour: "azure-fde", Upstream: Upstream{5, 15, 126}, UpstreamRaw: "5.15.126"}},
		{"Ubuntu 6.14.0-15.15-generic 6.14.0", VersionSignature{Distro: "Ubuntu", Package: "6.14.0-15.15", Flavour: "generic", Upstream: Upstream{6, 14, 0}, UpstreamRaw: "6.14.0"}},
		{"Ubuntu 4.4.0-21.37-generic 4.4.6", VersionSignature{Distro: "Ubuntu", Package: "4.4.0-21.37", Flavour: "generic", Upstream: Upstream{4, 4, 6}, UpstreamRaw: "4.4.6"}},
		{"Ubuntu 6.8.0-1008.8-raspi 6.8.4", VersionSignature{Distro: "Ubuntu", Package: "6.8.0-1008.8", Flavour: "raspi", Upstream: Upstream{6, 8, 4}, UpstreamRaw: "6.8.4"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseVersionSignature(tt.in)
			if err != nil {
				t.Fatalf("ParseVersionSignature: %v", err)
			}
			got.Raw = ""
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
	for _, in := range []string{"", "Ubuntu", "Ubuntu 5.4.0-150.167-generic", "Ubuntu 5.4.0-150.167-generic five", "Ubuntu 5.4.0 0.1.2"} {
		if got, err := ParseVersionSignature(in); !errors.Is(err, ErrUnparseable) {
			t.Errorf("ParseVersionSignature(%q) = %+v, %v; want ErrUnparseable", in, got, err)
		}
	}
}
