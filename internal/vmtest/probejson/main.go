// Command probejson prints {"kernel": probe.Detect(...)} as JSON. The kernel
// matrix runs it in a guest only when cmd/safebpf does not build, so the
// kernel fixtures (the "kernel" member of `safebpf probe --json`) can still
// be captured.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

func main() {
	k, err := probe.Detect(context.Background(), &probe.Options{Facts: hazards.Builtin().Facts()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "probejson: detect kernel:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(struct {
		Kernel *probe.Kernel `json:"kernel"`
	}{k}); err != nil {
		fmt.Fprintln(os.Stderr, "probejson:", err)
		os.Exit(1)
	}
}
