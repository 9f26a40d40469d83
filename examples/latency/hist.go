//go:build linux && (386 || amd64)

package main

import (
	"fmt"
	"io"
	"strings"
)

// printLog2Hist writes counts as a log2 histogram in the style of bcc's
// tools: slot i holds values v with floor(log2(v)) == i (slot 0 also holds
// 0). Empty leading and trailing slots are left out.
func printLog2Hist(w io.Writer, counts []uint64, unit string) error {
	first, last := -1, -1
	var max uint64
	for i, c := range counts {
		if c == 0 {
			continue
		}
		if first < 0 {
			first = i
		}
		last = i
		if c > max {
			max = c
		}
	}
	var b strings.Builder
	if first < 0 {
		b.WriteString("(no samples)\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	const width = 40
	fmt.Fprintf(&b, "%24s : %-10s distribution\n", unit, "count")
	for i := first; i <= last; i++ {
		lo, hi := uint64(0), uint64(1)
		if i > 0 {
			lo = uint64(1) << i
			hi = lo<<1 - 1
		}
		if i == 63 {
			hi = ^uint64(0)
		}
		stars := int(counts[i] * width / max)
		fmt.Fprintf(&b, "%10d -> %-10d : %-10d |%-*s|\n", lo, hi, counts[i], width, strings.Repeat("*", stars))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
