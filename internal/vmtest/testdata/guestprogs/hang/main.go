// Command hang never exits, so the harness's boot timeout is tested against
// a real guest. (An empty select would not do: the Go runtime ends a program
// whose goroutines are all blocked forever.)
package main

import (
	"fmt"
	"time"
)

func main() {
	fmt.Println("hang: sleeping forever")
	for {
		time.Sleep(time.Hour)
	}
}
