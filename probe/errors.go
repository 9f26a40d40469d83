package probe

import "github.com/cilium/ebpf"

// ErrNotSupported is cilium/ebpf's ErrNotSupported under this package's
// name, so errors.Is matches whichever package the caller imported.
var ErrNotSupported = ebpf.ErrNotSupported
