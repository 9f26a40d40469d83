// Command target calls the noinline function main.hit once per byte of its
// first argument; loader tests attach uprobes to it and count the calls.
package main

import (
	"fmt"
	"os"
)

var sink int

//go:noinline
func hit(i int) int { return i*2 + 1 }

func main() {
	n := 0
	if len(os.Args) > 1 {
		n = len(os.Args[1])
	}
	for i := 0; i < n; i++ {
		sink += hit(i)
	}
	fmt.Println(sink)
}
