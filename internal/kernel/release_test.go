package kernel

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRelease(t *testing.T) {
	type want struct {
		Major, Minor, Patch int
		HasPatch            bool
		Suffix              string
		SublevelKnown       bool
		ABI                 int
		Flavour             string
		Debian              bool
		RHEL, RHELBuild     string
		Amazon              string
		RC                  bool
	}
	tests := []struct {
		in   string
		want want
	}{
		{"6.8.0-86-generic", want{6, 8, 0, true, "-86-generic", false, 86, "generic", false, "", "", "", false}},
		{"5.4.0-1103-aws", want{5, 4, 0, true, "-1103-aws", false, 1103, "aws", false, "", "", "", false}},
		{"5.15.0-1051-azure-fde", want{5, 15, 0, true, "-1051-azure-fde", false, 1051, "azure-fde", false, "", "", "", false}},
		{"6.1.0-13-amd64", want{6, 1, 0, true, "-13-amd64", false, 13, "amd64", true, "", "", "", false}},
		{"6.1.0-13-cloud-amd64", want{6, 1, 0, true, "-13-cloud-amd64", false, 13, "cloud-amd64", true, "", "", "", false}},
		{"6.12.38+deb13-cloud-amd64", want{6, 12, 38, true, "+deb13-cloud-amd64", true, 0, "", false, "", "", "", false}},
		{"4.18.0-477.10.1.el8_8.x86_64", want{4, 18, 0, true, "-477.10.1.el8_8.x86_64", false, 0, "", false, "el8", "477.10.1", "", false}},
		{"3.10.0-1160.el7.x86_64", want{3, 10, 0, true, "-1160.el7.x86_64", false, 0, "", false, "el7", "1160", "", false}},
		{"5.14.0-362.8.1.el9_3.x86_64", want{5, 14, 0, true, "-362.8.1.el9_3.x86_64", false, 0, "", false, "el9", "362.8.1", "", false}},
		{"5.15.0-200.131.27.el9uek.x86_64", want{5, 15, 0, true, "-200.131.27.el9uek.x86_64", false, 0, "", false, "el9", "200.131.27", "", false}},
		{"6.1.25-37.47.amzn2023.x86_64", want{6, 1, 25, true, "-37.47.amzn2023.x86_64", true, 0, "", false, "", "", "amzn2023", false}},
		{"5.10.205-195.807.amzn2.x86_64", want{5, 10, 205, true, "-195.807.amzn2.x86_64", true, 0, "", false, "", "", "amzn2", false}},
		{"4.14.336-257.562.amzn2.x86_64", want{4, 14, 336, true, "-257.562.amzn2.x86_64", true, 0, "", false, "", "", "amzn2", false}},
		{"6.5.6-300.fc39.x86_64", want{6, 5, 6, true, "-300.fc39.x86_64", true, 0, "", false, "", "", "", false}},
		{"6.1.58+", want{6, 1, 58, true, "+", true, 0, "", false, "", "", "", false}},
		{"5.15.90.1-microsoft-standard-WSL2", want{5, 15, 90, true, ".1-microsoft-standard-WSL2", true, 0, "", false, "", "", "", false}},
		{"6.6.8-arch1-1", want{6, 6, 8, true, "-arch1-1", true, 0, "", false, "", "", "", false}},
		{"6.1.35-1-lts", want{6, 1, 35, true, "-1-lts", true, 0, "", false, "", "", "", false}},
		{"5.10.107-android13-4-00001-g6c2b7e8c1d54-ab9406312", want{5, 10, 107, true, "-android13-4-00001-g6c2b7e8c1d54-ab9406312", true, 0, "", false, "", "", "", false}},
		{"6.10.0-rc3", want{6, 10, 0, true, "-rc3", true, 0, "", false, "", "", "", true}},
		{"6.14.0-rc2-00001-g0de63bb7d919", want{6, 14, 0, true, "-rc2-00001-g0de63bb7d919", true, 0, "", false, "", "", "", true}},
		{"5.14.21-150500.55.39-default", want{5, 14, 21, true, "-150500.55.39-default", true, 0, "", false, "", "", "", false}},
		{"6.4.0-150600.23.25-default", want{6, 4, 0, true, "-150600.23.25-default", false, 0, "", false, "", "", "", false}},
		{"6.9.0", want{6, 9, 0, true, "", true, 0, "", false, "", "", "", false}},
		{"6.9.0-custom", want{6, 9, 0, true, "-custom", true, 0, "", false, "", "", "", false}},
		{"6.18.44-fc-v669", want{6, 18, 44, true, "-fc-v669", true, 0, "", false, "", "", "", false}},
		{"6.9", want{6, 9, 0, false, "", false, 0, "", false, "", "", "", false}},
		{"6.9.arch1-1", want{6, 9, 0, false, ".arch1-1", false, 0, "", false, "", "", "", false}},
		{"  5.4.0-150-generic\n", want{5, 4, 0, true, "-150-generic", false, 150, "generic", false, "", "", "", false}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseRelease(tt.in)
			if err != nil {
				t.Fatalf("ParseRelease: %v", err)
			}
			abi, flavour, _ := r.ABIFlavour()
			tag, build, _ := r.RHEL()
			got := want{r.Major, r.Minor, r.Patch, r.HasPatch, r.Suffix, r.SublevelKnown(),
				abi, flavour, r.DebianFlavour(), tag, build, r.Amazon(), r.RC()}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseRelease(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseReleaseErrors(t *testing.T) {
	for _, in := range []string{"", " ", "linux", "6", "6.", ".6.1", "0.9.1", "v6.1.0", "6.x", "12345678.1", "6.12345678", "-6.1"} {
		t.Run(in, func(t *testing.T) {
			r, err := ParseRelease(in)
			if !errors.Is(err, ErrUnparseable) {
				t.Fatalf("ParseRelease(%q) = %+v, %v; want ErrUnparseable", in, r, err)
			}
		})
	}
}
