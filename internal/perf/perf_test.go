package perf

import (
	"errors"
	"testing"
)

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
