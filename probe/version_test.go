package probe

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseReleaseProbe(t *testing.T) {
	tests := []struct {
		in   string
		want Release
	}{
		{"5.4.0-1103-aws", Release{Raw: "5.4.0-1103-aws", Major: 5, Minor: 4, HasPatch: true, Suffix: "-1103-aws"}},
		{"6.1.25-37.47.amzn2023.x86_64", Release{Raw: "6.1.25-37.47.amzn2023.x86_64", Major: 6, Minor: 1, Patch: 25, HasPatch: true, Suffix: "-37.47.amzn2023.x86_64", SublevelKnown: true}},
		{"4.18.0-477.10.1.el8_8.x86_64", Release{Raw: "4.18.0-477.10.1.el8_8.x86_64", Major: 4, Minor: 18, HasPatch: true, Suffix: "-477.10.1.el8_8.x86_64"}},
	}
	for _, tt := range tests {
		got, err := ParseRelease(tt.in)
		if err != nil {
			t.Fatalf("ParseRelease(%q): %v", tt.in, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseRelease(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
	for _, in := range []string{"", "garbage", "0.1", "v5.4"} {
		_, err := ParseRelease(in)
		if !errors.Is(err, ErrUnparseableRelease) {
			t.Errorf("ParseRelease(%q) = %v, want ErrUnparseableRelease", in, err)
		}
		if err != nil && !strings.Contains(err.Error(), `"`+in+`"`) {
			t.Errorf("ParseRelease(%q) error %q does not name the input", in, err)
		}
	}
}

func TestResolveVersionEdges(t *testing.T) {
	tests := []struct {
		name       string
		src        VersionSources
		want       string
		wantSource VersionSource
		noteHas    string
	}{
		{"vdso clamped does not give a sublevel", VersionSources{Release: "4.14.0-1-generic", VDSO: "4.14.255"}, "4.14", SourceReleasePartial, "clamped"},
		{"vdso of another line ignored", VersionSources{Release: "5.15.0-91-generic", VDSO: "6.1.10"}, "5.15", SourceReleasePartial, "does not confirm"},
		{"vdso zero sublevel ignored", VersionSources{Release: "5.15.0-91-generic", VDSO: "5.15.0"}, "5.15", SourceReleasePartial, ""},
		{"rhel ignores vdso", VersionSources{Release: "4.18.0-477.10.1.el8_8.x86_64", VDSO: "4.18.0"}, "4.18", SourceReleasePartial, "Enterprise Linux"},
		{"unparseable release with vdso", VersionSources{Release: "garbage", VDSO: "6.1.76"}, "6.1.76", SourceVDSO, "unparseable"},
		{"nothing usable", VersionSources{Release: "garbage"}, "<nil>", SourceNone, "no usable version"},
		{"bad vdso text ignored", VersionSources{Release: "6.1.0-13-amd64", VDSO: "six"}, "6.1", SourceReleasePartial, ""},
		{"signature beats debian and release", VersionSources{
			Release:          "5.15.0-91-generic",
			ProcVersion:      "Linux version 5.15.0-91-generic (b) (c) #1 SMP Debian 5.15.1-1 (2020-01-01)",
			VersionSignature: "Ubuntu 5.15.0-91.101-generic 5.15.131",
		}, "5.15.131", SourceVersionSignature, ""},
		{"signature of another line is noted", VersionSources{Release: "6.1.0-13-amd64", VersionSignature: "Ubuntu 5.15.0-91.101-generic 5.15.131"}, "5.15.131", SourceVersionSignature, "names line 6.1"},
		{"unparseable signature falls through", VersionSources{Release: "6.6.8-arch1-1", VersionSignature: "nonsense"}, "6.6.8", SourceRelease, ""},
		{"release wins over vdso", VersionSources{Release: "4.14.336-257.562.amzn2.x86_64", VDSO: "4.14.255"}, "4.14.336", SourceRelease, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, src, note := ResolveVersion(tt.src)
			got := "<nil>"
			if v != nil {
				got = v.String()
			}
			if got != tt.want || src != tt.wantSource {
				t.Errorf("ResolveVersion = %s from %s (%s), want %s from %s", got, src, note, tt.want, tt.wantSource)
			}
			if !strings.Contains(note, tt.noteHas) {
				t.Errorf("note %q lacks %q", note, tt.noteHas)
			}
		})
	}
}

func TestVersionText(t *testing.T) {
	tests := []struct {
		in      string
		want    Version
		wantErr bool
	}{
		{"6.1.76", Version{6, 1, 76, true}, false},
		{"5.4", Version{5, 4, 0, false}, false},
		{"5", Version{}, true},
		{"5.4.3.2", Version{}, true},
		{"5.x", Version{}, true},
		{"5.-4", Version{}, true},
	}
	for _, tt := range tests {
		var v Version
		err := v.UnmarshalText([]byte(tt.in))
		if (err != nil) != tt.wantErr || v != tt.want {
			t.Errorf("UnmarshalText(%q) = %+v, %v; want %+v, error %v", tt.in, v, err, tt.want, tt.wantErr)
		}
		if err == nil && v.String() != tt.in {
			t.Errorf("String() = %q, want %q", v.String(), tt.in)
		}
	}
}
