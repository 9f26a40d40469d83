// Command target calls the noinline functions main.hit and main.hitAlt
// once per byte of its first argument; loader tests attach uprobes to them
// and count the calls. With Go's register ABI the argument is in RAX at
// entry and the return value in RAX at return.
package main

import (
	"fmt"
	"os"
)

var sink int

//go:noinline
func hit(i int) int { return i*2 + 1 }

//go:noinline
func hitAlt(i int) int { return i*3 + 1 }

func main() {
	n := 0
	if len(os.Args) > 1 {
		n = len(os.Args[1])
	}
	for i := 0; i < n; i++ {
		sink += hit(i)
		sink += hitAlt(i)
	}
	fmt.Println(sink)
}
