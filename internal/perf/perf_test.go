package perf

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCPUList(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{in: "0", want: []int{0}},
		{in: "0-1\n", want: []int{0, 1}},
		{in: "0-3,5,7-8", want: []int{0, 1, 2, 3, 5, 7, 8}},
		{in: "2,4", want: []int{2, 4}},
		{in: "", wantErr: true},
		{in: "a", wantErr: true},
		{in: "3-1", wantErr: true},
		{in: "0-", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "1,0", wantErr: true},
		{in: "0-2,2", wantErr: true},
	} {
		got, err := ParseCPUList(tc.in)
		if tc.wantErr {
			if !errors.Is(err, errInvalidInput) {
				t.Errorf("ParseCPUList(%q) = %v, %v; want errInvalidInput", tc.in, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseCPUList(%q): %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseCPUList(%q) mismatch (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestEventValidate(t *testing.T) {
	if err := (Event{}).validate(); !errors.Is(err, errInvalidInput) {
		t.Errorf("validate of an event without frequency or period = %v; want errInvalidInput", err)
	}
	for _, ev := range []Event{{Frequency: 99}, {Period: 1000000}, {Hardware: true, Frequency: 1}} {
		if err := ev.validate(); err != nil {
			t.Errorf("validate(%+v) = %v; want nil", ev, err)
		}
	}
	if got := (Event{Hardware: true}).Name(); got != "cpu-cycles" {
		t.Errorf("hardware Name = %q", got)
	}
	if got := (Event{}).Name(); got != "cpu-clock" {
		t.Errorf("software Name = %q", got)
	}
}

func TestCloseNil(t *testing.T) {
	var (
		fd *FD
		s  *Set
		a  *Attachment
		m  *Multi
	)
	for _, c := range []interface{ Close() error }{fd, s, a, m} {
		if err := c.Close(); err != nil {
			t.Errorf("%T(nil).Close() = %v; want nil", c, err)
		}
	}
}
