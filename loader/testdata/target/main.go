// Command target calls the noinline functions main.hit and main.hitAlt
// once per byte of its first argument; loader tests attach uprobes to them
// and count the calls. With Go's register ABI the argument is in RAX at
// entry and the return value in RAX at return. Run as "target bulk" it
// calls each of main.bulk00 ... main.bulk15 once instead (the batch
// tests).
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

//go:noinline
func bulk00() int { return 100 }

//go:noinline
func bulk01() int { return 101 }

//go:noinline
func bulk02() int { return 102 }

//go:noinline
func bulk03() int { return 103 }

//go:noinline
func bulk04() int { return 104 }

//go:noinline
func bulk05() int { return 105 }

//go:noinline
func bulk06() int { return 106 }

//go:noinline
func bulk07() int { return 107 }

//go:noinline
func bulk08() int { return 108 }

//go:noinline
func bulk09() int { return 109 }

//go:noinline
func bulk10() int { return 110 }

//go:noinline
func bulk11() int { return 111 }

//go:noinline
func bulk12() int { return 112 }

//go:noinline
func bulk13() int { return 113 }

//go:noinline
func bulk14() int { return 114 }

//go:noinline
func bulk15() int { return 115 }

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bulk" {
		for _, f := range []func() int{bulk00, bulk01, bulk02, bulk03, bulk04, bulk05, bulk06, bulk07,
			bulk08, bulk09, bulk10, bulk11, bulk12, bulk13, bulk14, bulk15} {
			sink += f()
		}
		fmt.Println(sink)
		return
	}
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
