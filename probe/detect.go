package probe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"

	"github.com/safebpf/safebpf/internal/kernel"
)

// FeatureProber decides whether a mechanism is available on the running
// kernel. Implementations return Undecided when the probe could not tell.
// The default prober loads and attaches trivial programs (see doc.go).
type FeatureProber interface {
	Probe(ctx context.Context, m Mechanism, k *Kernel) Support
}

// Options configures Detect. A nil *Options reads the real host, looks for
// no facts, and caches the result for the life of the process.
type Options struct {
	// Root is the filesystem /proc, /sys, /etc and /boot are read from, to
	// replay another machine (mechanisms are then decided offline, see
	// Prober). Nil means the real root ("/"). Root and HostRoot exclude
	// each other.
	Root fs.FS
	// HostRoot is the directory the host's root file system is mounted at
	// when this process runs in a container (for example "/host", with the
	// host's "/" mounted there read-only): /etc/os-release, /boot and the
	// kernel-wide files of /proc and /sys are read below it, and /proc and
	// /sys files it lacks from this process's own (the same kernel). The
	// running kernel is still asked directly (uname, the vDSO and the
	// feature probes), since a container shares the host's kernel, and
	// this process's own mount table is read from its own /proc. Empty
	// means "/": files are read where this process sees them. It must be
	// an absolute path to a directory; loader and the safebpf command take
	// it from SAFEBPF_HOST_ROOT (see docs/containers.md).
	HostRoot string
	// Uname returns the release (uname -r) and version (uname -v) strings.
	// Nil means the uname system call.
	Uname func() (release, version string, err error)
	// VDSOVersion returns LINUX_VERSION_CODE from the vDSO. Nil means read
	// this process's vDSO; a function returning an error means "no vDSO".
	VDSOVersion func() (uint32, error)
	// Arch is the GOARCH name. Empty means runtime.GOARCH.
	Arch string
	// Prober decides mechanism availability. Nil means the real probes
	// (which need root or CAP_BPF+CAP_PERFMON to say "available") when Root
	// is nil, HostRoot or not, and OfflineProber when Root is set, so that
	// replaying another machine's files never mixes in this kernel's
	// answers.
	Prober FeatureProber
	// Mechanisms lists the mechanisms whose availability Detect probes.
	// Nil means every mechanism (Mechanisms()); an empty, non-nil slice
	// means none, and Kernel.Support then says "not probed" for each. The
	// probes of BTF-typed programs (fentry, fexit, fmod_ret, tp_btf, iter,
	// lsm) need the kernel's BTF parsed, most of a detection's time: an
	// agent asks for them when a request needs them. An unknown mechanism
	// makes Detect fail.
	Mechanisms []Mechanism
	// Facts are the facts Detect establishes about the kernel beyond its
	// identity, recorded for Kernel.Observe: symbol facts from one scan of
	// /proc/kallsyms (Kernel.Kallsyms), every other kind from its live
	// witness (Kernel.Observations; machine code needs /proc/kcore, BTF
	// needs /sys/kernel/btf/vmlinux, self-tests need root). A fact not
	// listed is "not looked for", which hazard evaluation treats as
	// unknown. Empty means none. Callers that evaluate a hazard catalog
	// pass its facts ((*hazards.Catalog).Facts). Duplicates are ignored; a
	// fact of an unknown kind or without a name makes Detect fail.
	Facts []Fact
}

// Description is a kernel described by hand, for offline evaluation
// (`safebpf check`). Every field is optional but Release.
type Description struct {
	Release          string `json:"release"`
	ProcVersion      string `json:"proc_version,omitempty"`
	VersionSignature string `json:"version_signature,omitempty"`
	// VDSO is LINUX_VERSION_CODE as the vDSO carries it ("5.4.241"), as
	// Kernel.VDSOVersion.
	VDSO      string `json:"vdso_version,omitempty"`
	OSRelease string `json:"os_release,omitempty"` // contents of an os-release file
	Arch      string `json:"arch,omitempty"`       // GOARCH or uname name; empty means amd64
	CPUs      int    `json:"cpus,omitempty"`
	Kallsyms  string `json:"kallsyms,omitempty"` // contents (or an excerpt) of /proc/kallsyms
	Config    string `json:"config,omitempty"`   // contents of a kernel config file
	// Facts are the facts to look for, as in Options.Facts: symbol facts
	// are answered from Kallsyms (when given); every other kind stays "not
	// looked for" (Kernel.Observe says so), because a description has no
	// live kernel to read machine code, BTF or self-tests from.
	Facts []Fact `json:"-"`
}

// ErrUnparseableRelease is returned when a release string carries no X.Y version.
var ErrUnparseableRelease = errors.New("unparseable kernel release")

func (o *Options) host() (*kernel.Host, error) {
	switch {
	case o == nil:
		return &kernel.Host{}, nil
	case o.HostRoot == "":
		return &kernel.Host{FS: o.Root, Uname: o.Uname}, nil
	case o.Root != nil:
		return nil, fmt.Errorf("detect kernel: both Root and HostRoot %q set: Root replays a machine, HostRoot reads the host from a container", o.HostRoot)
	}
	fsys, err := kernel.HostRootFS(o.HostRoot)
	if err != nil {
		return nil, fmt.Errorf("detect kernel: %w (mount the host's / there read-only, see docs/containers.md, or unset SAFEBPF_HOST_ROOT)", err)
	}
	return &kernel.Host{FS: fsys, Uname: o.Uname}, nil
}

func (o *Options) vdso() (uint32, error) {
	if o == nil || o.VDSOVersion == nil {
		return features.LinuxVersionCode()
	}
	return o.VDSOVersion()
}

func (o *Options) arch() string {
	if o == nil || o.Arch == "" {
		return runtime.GOARCH
	}
	return o.Arch
}

func (o *Options) prober(h *kernel.Host) FeatureProber {
	switch {
	case o != nil && o.Prober != nil:
		return o.Prober
	case o != nil && o.Root != nil:
		return OfflineProber{}
	case o != nil && o.HostRoot != "":
		// The probes check this process's own view (tracefs mounts,
		// PMUs): it is the one that attaches.
		return &hostProber{host: &kernel.Host{Uname: o.Uname}, btf: btf.NewCache()}
	}
	return &hostProber{host: h, btf: btf.NewCache()}
}

func (o *Options) facts() []Fact {
	if o == nil {
		return nil
	}
	return o.Facts
}

// mechanisms returns the mechanisms to probe, validated: every one when
// o.Mechanisms is nil, else o.Mechanisms without duplicates.
func (o *Options) mechanisms() ([]Mechanism, error) {
	if o == nil || o.Mechanisms == nil {
		return allMechanisms, nil
	}
	var out []Mechanism
	for _, m := range o.Mechanisms {
		if !m.Valid() {
			return nil, fmt.Errorf("probe mechanism %q: unknown mechanism", m)
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, nil
}

// readsHost reports whether o describes the running host itself, read
// where this process sees it or below a host root (no replayed files, no
// injected uname, vDSO, arch or prober), whose detection Detect caches.
func (o *Options) readsHost() bool {
	return o == nil || o.Root == nil && o.Uname == nil && o.VDSOVersion == nil && o.Arch == "" && o.Prober == nil
}

// hostState is what detections learnt about one machine: the kernel's
// identity (everything but mechanisms, symbols and observations), every
// mechanism probed and symbol looked for so far, and the conclusive
// witness observations. An inconclusive witness runs again next time.
type hostState struct {
	base     *Kernel
	mechs    map[Mechanism]Support
	kallsyms Kallsyms // Readable and DataSymbols once a lookup succeeded
	symbols  map[string]bool
	observed map[string]Observation
}

func newHostState() *hostState {
	return &hostState{mechs: map[Mechanism]Support{}, symbols: map[string]bool{}, observed: map[string]Observation{}}
}

// hostCache holds, per host root ("" for "/"), what Detect learnt about
// the running host. Only a successful identification is cached.
var hostCache struct {
	sync.Mutex
	hosts map[string]*hostState
}

// btfTyped are the mechanisms whose probe is a trial load of a BTF-typed
// program: each needs the kernel's BTF parsed (the longest part of a
// detection), so they are probed together, on one parse.
var btfTyped = []Mechanism{Fentry, Fexit, FmodRet, TpBTF, Iter, LSM}

// Detect describes the running kernel: its identity (every version source
// and the one trusted, see doc.go), distro, arch, possible CPUs,
// preemption model, config, BTF, tracefs/debugfs mounts, the availability
// of the mechanisms in opts.Mechanisms (every one when nil), and the facts
// in opts.Facts. When opts reads the real host (nil, or only HostRoot,
// Mechanisms and Facts set) what it learns is cached for the life of the
// process, per host root, per mechanism and per fact: a later call probes
// only mechanisms not probed yet and looks only for facts not looked for
// yet, so an agent can detect the kernel cheaply at start-up and ask for
// the mechanisms and facts a request needs when it arrives. Each call
// returns its own copy holding exactly the mechanisms and facts it asked
// for. Files that cannot be read leave their fields empty and add a line
// to Kernel.Notes. Detect fails only when no release string can be read
// at all, a fact or mechanism is malformed, ctx is done, or opts.HostRoot
// is unusable.
func Detect(ctx context.Context, opts *Options) (*Kernel, error) {
	facts, err := uniqueFacts(opts.facts())
	if err != nil {
		return nil, fmt.Errorf("detect kernel: %w", err)
	}
	mechs, err := opts.mechanisms()
	if err != nil {
		return nil, fmt.Errorf("detect kernel: %w", err)
	}
	if !opts.readsHost() {
		return newHostState().detect(ctx, opts, mechs, facts, false)
	}
	root := ""
	if opts != nil {
		root = opts.HostRoot
	}
	hostCache.Lock()
	defer hostCache.Unlock()
	st := hostCache.hosts[root]
	if st == nil {
		st = newHostState()
	}
	k, err := st.detect(ctx, opts, mechs, facts, true)
	if err == nil && hostCache.hosts[root] == nil {
		if hostCache.hosts == nil {
			hostCache.hosts = map[string]*hostState{}
		}
		hostCache.hosts[root] = st
	}
	return k, err
}

// detect answers one Detect call from st, adding to st what it had to
// find out. cached says st outlives the call: then BTF-typed mechanisms
// are probed together, so that the kernel's BTF is parsed once.
func (st *hostState) detect(ctx context.Context, opts *Options, mechs []Mechanism, facts []Fact, cached bool) (*Kernel, error) {
	h, err := opts.host()
	if err != nil {
		return nil, err
	}
	live := opts == nil || opts.Root == nil
	var k *Kernel
	if st.base == nil {
		base, err := readIdentity(ctx, opts, h)
		if err != nil {
			return nil, err
		}
		st.base = base
		k = base
		if cached {
			k = base.Clone()
		}
	} else {
		k = st.base.Clone()
	}
	note := func(format string, args ...any) { k.Notes = append(k.Notes, fmt.Sprintf(format, args...)) }

	// What is not known yet.
	var toProbe []Mechanism
	for _, m := range mechs {
		if _, ok := st.mechs[m]; !ok {
			toProbe = append(toProbe, m)
		}
	}
	var symbols []string
	var witnesses []Fact
	for _, f := range facts {
		switch _, seen := st.symbols[f.Name]; {
		case f.Kind == FactSymbol && !seen:
			symbols = append(symbols, f.Name)
		case f.Kind != FactSymbol:
			if _, ok := st.observed[f.Key()]; !ok {
				witnesses = append(witnesses, f)
			}
		}
	}
	isBTFTyped := func(m Mechanism) bool { return slices.Contains(btfTyped, m) }
	if cached && slices.ContainsFunc(toProbe, isBTFTyped) {
		for _, m := range btfTyped {
			if _, ok := st.mechs[m]; !ok && !slices.Contains(toProbe, m) {
				toProbe = append(toProbe, m)
			}
		}
	}
	prober := opts.prober(h)
	btfWork := slices.ContainsFunc(toProbe, isBTFTyped) ||
		slices.ContainsFunc(witnesses, func(f Fact) bool { return f.Kind == FactBTF })

	// Parsing the kernel's BTF is the longest piece of user-space work of
	// a detection (~22 ms here, cilium/ebpf's decoder): start it now, so it
	// runs while the symbols are looked up. The trial loads of BTF-typed
	// programs and the BTF witness share it.
	var prewarm sync.WaitGroup
	defer prewarm.Wait()
	hp, _ := prober.(*hostProber)
	if hp != nil && hp.btf != nil && live && btfWork {
		prewarm.Add(1)
		go func() {
			defer prewarm.Done()
			_, _ = hp.btf.Kernel() // errors are the trial loads' to report
		}()
	}

	if len(symbols) > 0 {
		ks, notes := kernelSymbols(h, symbols, facts, live)
		for _, n := range notes {
			note("%s", n)
		}
		if ks.Readable {
			st.kallsyms.Readable = true
			st.kallsyms.DataSymbols = st.kallsyms.DataSymbols || ks.DataSymbols
			for s, p := range ks.Symbols {
				st.symbols[s] = p
			}
		}
	}
	// Kallsyms says what the symbols asked for told; a call that asked
	// for none leaves it zero, whatever earlier calls found.
	k.Kallsyms = Kallsyms{}
	if slices.ContainsFunc(facts, func(f Fact) bool { return f.Kind == FactSymbol }) {
		k.Kallsyms = Kallsyms{Readable: st.kallsyms.Readable, DataSymbols: st.kallsyms.DataSymbols}
	}
	for _, f := range facts {
		if p, ok := st.symbols[f.Name]; f.Kind == FactSymbol && ok && k.Kallsyms.Readable {
			if k.Kallsyms.Symbols == nil {
				k.Kallsyms.Symbols = map[string]bool{}
			}
			k.Kallsyms.Symbols[f.Name] = p
		}
	}

	// The mechanism probes and the witnesses run at the same time: the
	// witnesses only need uprobe support (the self-test attaches a
	// uretprobe), probed first, and what was read above. Each side reads
	// its own Kernel; the results are filled in once both are done.
	seen := *k
	seen.Mechanisms = map[Mechanism]Support{}
	if st.kallsyms.Readable {
		// Every symbol known so far, asked for by this call or not.
		seen.Kallsyms = Kallsyms{Readable: true, DataSymbols: st.kallsyms.DataSymbols, Symbols: maps.Clone(st.symbols)}
	}
	first := map[Mechanism]Support{}
	if len(witnesses) > 0 {
		for _, m := range []Mechanism{Uprobe, Uretprobe} {
			s, ok := st.mechs[m]
			if !ok {
				s = prober.Probe(ctx, m, k)
				first[m] = s
				toProbe = slices.DeleteFunc(toProbe, func(p Mechanism) bool { return p == m })
			}
			seen.Mechanisms[m] = s
		}
	}
	// The BTF witness reads the same BTF as the trial loads: hand it the
	// one parse.
	var shared *btf.Cache
	if hp != nil && live && (h == nil || h.FS == nil) {
		shared = hp.btf
	}
	var probed map[Mechanism]Support
	var obs map[string]Observation
	var probeErr, obsErr error
	var both sync.WaitGroup
	both.Add(1)
	go func() {
		defer both.Done()
		obs, obsErr = observeAll(ctx, h, &seen, witnesses, shared)
	}()
	probed, probeErr = probeAll(ctx, prober, k, toProbe)
	both.Wait()
	if err := errors.Join(probeErr, obsErr); err != nil {
		return nil, err
	}
	// Only a detection that was not cut short is remembered.
	maps.Copy(st.mechs, first)
	maps.Copy(st.mechs, probed)
	k.Mechanisms = make(map[Mechanism]Support, len(mechs))
	for _, m := range mechs {
		k.Mechanisms[m] = st.mechs[m]
	}
	for _, f := range facts {
		if f.Kind == FactSymbol {
			continue
		}
		o, ok := st.observed[f.Key()]
		if !ok {
			o = obs[f.Key()]
			if o.Known() {
				st.observed[f.Key()] = o
			}
		}
		if k.Observations == nil {
			k.Observations = map[string]Observation{}
		}
		k.Observations[f.Key()] = o
	}
	return k, nil
}

// readIdentity reads the kernel's identity and what the files say about
// it: everything of a Kernel but mechanisms, symbols and observations.
func readIdentity(ctx context.Context, opts *Options, h *kernel.Host) (*Kernel, error) {
	k := &Kernel{Arch: opts.arch()}
	note := func(format string, args ...any) { k.Notes = append(k.Notes, fmt.Sprintf(format, args...)) }
	release, _, err := h.UnameStrings()
	if err != nil {
		// /proc/sys/kernel/osrelease is the same string.
		b, ferr := h.ReadFile("proc/sys/kernel/osrelease")
		if ferr != nil {
			return nil, fmt.Errorf("detect kernel release: %w", errors.Join(err, ferr))
		}
		release = string(b)
		note("uname: %v; release read from /proc/sys/kernel/osrelease", err)
	}
	k.Release = strings.TrimSpace(release)
	if pv, err := h.ProcVersion(); err == nil {
		k.ProcVersion = pv
	} else {
		note("read /proc/version: %v", err)
	}
	if sig, err := h.VersionSignature(); err == nil {
		k.VersionSignature = sig
	} else if !errors.Is(err, fs.ErrNotExist) {
		note("read /proc/version_signature: %v", err)
	}
	if code, err := opts.vdso(); err == nil && code != 0 {
		k.VDSOVersion = fmt.Sprintf("%d.%d.%d", code>>16, code>>8&0xff, code&0xff)
	} else if err != nil {
		note("read vDSO version: %v", err)
	}
	osr, _, err := h.OSRelease()
	if err != nil {
		note("%v", err)
	}
	identify(k, osr)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("detect kernel: %w", err)
	}

	if n, err := h.PossibleCPUs(); err == nil {
		k.CPUs = n
	} else {
		note("%v", err)
	}
	if cfg, src, err := h.Config(k.Release); err == nil {
		k.Config, k.ConfigSource = cfg, src
	} else {
		note("%v", err)
	}
	k.Preemption = preemptionOf(k)
	k.BTF = h.BTF()
	if ms, err := h.Mounts(); err == nil {
		k.Tracefs = kernel.FirstMount(ms, "tracefs")
		k.Debugfs = kernel.FirstMount(ms, "debugfs")
	} else {
		note("%v", err)
	}
	return k, nil
}

// OfflineProber decides mechanisms from the Kernel's version, arch and
// config alone, without touching the running kernel (see OfflineSupport).
type OfflineProber struct{}

// Probe implements FeatureProber.
func (OfflineProber) Probe(_ context.Context, m Mechanism, k *Kernel) Support {
	return offlineSupport(k, m)
}

var _ FeatureProber = OfflineProber{}
