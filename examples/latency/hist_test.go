//go:build linux && (386 || amd64)

package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPrintLog2Hist(t *testing.T) {
	tests := []struct {
		name   string
		counts []uint64
		want   string
	}{
		{"empty", make([]uint64, 64), "(no samples)\n"},
		{
			name:   "trims empty slots",
			counts: []uint64{0, 0, 0, 2, 0, 4, 0, 0},
			want: "                   nsecs : count      distribution\n" +
				"         8 -> 15         : 2          |" + strings.Repeat("*", 20) + strings.Repeat(" ", 20) + "|\n" +
				"        16 -> 31         : 0          |" + strings.Repeat(" ", 40) + "|\n" +
				"        32 -> 63         : 4          |" + strings.Repeat("*", 40) + "|\n",
		},
		{
			name:   "slot zero holds 0 and 1",
			counts: []uint64{1},
			want: "                   nsecs : count      distribution\n" +
				"         0 -> 1          : 1          |" + strings.Repeat("*", 40) + "|\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := printLog2Hist(&b, tt.counts, "nsecs"); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, b.String()); diff != "" {
				t.Errorf("printLog2Hist mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
