// Command crash makes the guest kernel crash through the magic SysRq key
// ("c": a deliberate NULL dereference, which Oopses and panics), so the
// harness's crash detection and retry are tested against a real kernel.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Println("crash: triggering sysrq-c")
	if err := os.WriteFile("/proc/sysrq-trigger", []byte("c"), 0); err != nil {
		fmt.Println("crash:", err)
		os.Exit(1)
	}
	fmt.Println("crash: still alive")
	os.Exit(1)
}
