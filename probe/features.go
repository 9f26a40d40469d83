package probe

import "github.com/cilium/ebpf/features"

// The cilium/ebpf feature probes used by the host prober. Each returns nil
// (supported), an error wrapping ebpf.ErrNotSupported (not supported) or
// another error (inconclusive).
var (
	haveProgramType = features.HaveProgramType
	haveKprobeMulti = features.HaveBPFLinkKprobeMulti
	haveUprobeMulti = features.HaveBPFLinkUprobeMulti
)
