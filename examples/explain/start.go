package explain

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/safebpf/safebpf/loader"
)

// Start does what every example agent does before its own work: removes
// the memlock limit (kernels before 5.11 account BPF memory against it),
// builds a loader from the -safebpf-force and -safebpf-policy flags (with
// verbose, every decision is also logged to stderr through slog), loads and
// attaches spec with opts, and prints the decisions to out in plain words.
// A refusal is explained on out and returned as an error. The caller closes
// the collection, then the loader.
func Start(out io.Writer, flags *loader.Flags, verbose bool, spec *ebpf.CollectionSpec, opts *loader.CollectionOptions) (*loader.Loader, *loader.Collection, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, nil, fmt.Errorf("remove memlock limit: %w", err)
	}
	var o loader.Options
	if err := flags.Apply(&o); err != nil {
		return nil, nil, err
	}
	if verbose {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	l, err := loader.New(&o)
	if err != nil {
		return nil, nil, fmt.Errorf("create loader: %w", err)
	}
	coll, err := l.LoadAndAttach(spec, opts)
	if err != nil {
		err = Failure(out, Kernel(l.Kernel()), err)
		l.Close()
		return nil, nil, err
	}
	if err := Fprint(out, Kernel(l.Kernel()), coll.Decisions); err != nil {
		coll.Close()
		l.Close()
		return nil, nil, err
	}
	return l, coll, nil
}
