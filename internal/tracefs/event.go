package tracefs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cilium/ebpf"

	"github.com/safebpf/safebpf/internal/boundedio"
)

// Kind is the type of a trace event.
type Kind int

// The kinds of trace events this package creates.
const (
	Kprobe Kind = iota
	Kretprobe
	Uprobe
	Uretprobe
)

// String returns the kind's name ("kprobe", …).
func (k Kind) String() string {
	switch k {
	case Kprobe:
		return "kprobe"
	case Kretprobe:
		return "kretprobe"
	case Uprobe:
		return "uprobe"
	case Uretprobe:
		return "uretprobe"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

func (k Kind) eventsFile() string {
	if k == Uprobe || k == Uretprobe {
		return UprobeEventsFile
	}
	return KprobeEventsFile
}

// KprobeOptions configures [FS.Kprobe]. A nil *KprobeOptions creates an
// entry kprobe at offset 0 owned by the calling process.
type KprobeOptions struct {
	// Offset is added to the symbol ("SYMBOL+OFFSET"). Zero means the entry.
	Offset uint64
	// Return creates a kretprobe instead of a kprobe.
	Return bool
	// MaxActive caps concurrently tracked kretprobe instances ("rN:").
	// Zero means the kernel default (max(10, 2*NR_CPUS) on most kernels).
	// Only valid with Return, at most [MaxActiveLimit]. Needs kernel 4.12+.
	MaxActive int
	// Owner is the owner recorded in the group name. Nil means the calling
	// process ([Self]). Events whose owner is provably dead are removed by
	// [FS.CleanupStale].
	Owner *Owner
}

// UprobeOptions configures [FS.Uprobe]. A nil *UprobeOptions creates an
// entry uprobe owned by the calling process.
type UprobeOptions struct {
	// Return creates a uretprobe instead of a uprobe.
	Return bool
	// Owner is the owner recorded in the group name. Nil means the calling
	// process ([Self]).
	Owner *Owner
}

// Event is a trace event created by this package. Attach to it by opening
// a PERF_TYPE_TRACEPOINT perf event with config ID.
//
// Losing the reference to an Event removes it from tracefs when it is
// garbage collected; call Close when done.
type Event struct {
	// Kind is the event's type.
	Kind Kind
	// Group and Name identify the event: events/GROUP/NAME in tracefs.
	Group, Name string
	// ID is the kernel's trace event ID (events/GROUP/NAME/id).
	ID uint64

	fs      *FS
	mu      sync.Mutex
	closed  bool
	cleanup runtime.Cleanup
}

// MaxActiveLimit is the largest kretprobe maxactive the kernel accepts
// (KRETPROBE_MAXACTIVE_MAX in kernel/trace/trace_kprobe.c since 4.12).
const MaxActiveLimit = 4096

var counter atomic.Uint64

// Kprobe creates a kprobe or kretprobe event on the kernel symbol, writing
// "p:GROUP/NAME SYMBOL[+OFF]" or "r[MAXACTIVE]:GROUP/NAME SYMBOL[+OFF]" to
// kprobe_events. The symbol must be [MODULE:]SYMBOL made of the characters
// kernel symbols use ([A-Za-z0-9_.], module [A-Za-z0-9_-]): anything else,
// such as a newline that would add or delete another tool's event, is
// refused before anything is written. An unknown or unprobeable symbol
// matches [os.ErrNotExist]; a kernel without kprobe events, or too old for
// maxactive, matches [ebpf.ErrNotSupported].
func (f *FS) Kprobe(symbol string, opts *KprobeOptions) (*Event, error) {
	var o KprobeOptions
	if opts != nil {
		o = *opts
	}
	if err := checkSymbol(symbol); err != nil {
		return nil, fmt.Errorf("create kprobe: %w", err)
	}
	if o.MaxActive < 0 || o.MaxActive > MaxActiveLimit || (o.MaxActive != 0 && !o.Return) {
		return nil, fmt.Errorf("create kprobe on %q: maxactive %d: want 0..%d on a kretprobe: %w", symbol, o.MaxActive, MaxActiveLimit, errInvalidInput)
	}
	kind, prefix := Kprobe, "p"
	if o.Return {
		kind, prefix = Kretprobe, "r"
		if o.MaxActive > 0 {
			prefix += strconv.Itoa(o.MaxActive)
		}
	}
	target := symbol
	if o.Offset != 0 {
		target += "+" + strconv.FormatUint(o.Offset, 10)
	}
	ev, err := f.create(kind, prefix, symbol, target, o.Owner)
	if err != nil && errors.Is(err, syscall.EINVAL) && !errors.Is(err, os.ErrNotExist) {
		// Kernels up to at least 6.12 answer EINVAL, not ENOENT, for a
		// symbol they do not know; tell that case apart through kallsyms.
		if known, kerr := kallsymsHas(symbol); kerr == nil && !known {
			err = fmt.Errorf("%w: symbol not in /proc/kallsyms: %w", err, os.ErrNotExist)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create %s on %q: %w", kind, symbol, err)
	}
	return ev, nil
}

// Uprobe creates a uprobe or uretprobe event at offset in the file at path,
// writing "p:GROUP/NAME PATH:0xOFFSET" to uprobe_events. The path must be
// absolute and free of what the kernel would parse as a separator or a
// comment (whitespace including the byte 0xa0, control characters, '#'):
// such a path is refused before anything is written. A missing file
// matches [os.ErrNotExist]; a kernel without uprobe events matches
// [ebpf.ErrNotSupported].
func (f *FS) Uprobe(path string, offset uint64, opts *UprobeOptions) (*Event, error) {
	var o UprobeOptions
	if opts != nil {
		o = *opts
	}
	if err := checkPath(path); err != nil {
		return nil, fmt.Errorf("create uprobe: %w", err)
	}
	kind, prefix := Uprobe, "p"
	if o.Return {
		kind, prefix = Uretprobe, "r"
	}
	base := filepath.Base(path) + "_" + strconv.FormatUint(offset, 16)
	target := fmt.Sprintf("%s:0x%x", path, offset)
	ev, err := f.create(kind, prefix, base, target, o.Owner)
	if err != nil {
		return nil, fmt.Errorf("create %s on %s: %w", kind, target, err)
	}
	return ev, nil
}

// create writes "<prefix>:GROUP/NAME TARGET" and reads back the event ID.
func (f *FS) create(kind Kind, prefix, symbol, target string, owner *Owner) (*Event, error) {
	if _, err := os.Stat(filepath.Join(f.root, kind.eventsFile())); err != nil {
		return nil, fmt.Errorf("stat %s: %w", kind.eventsFile(), notSupported(err, kind.eventsFile()))
	}
	var o Owner
	if owner != nil {
		o = *owner
	} else {
		self, err := Self()
		if err != nil {
			return nil, err
		}
		// The lock comes first: from now until this process exits, others
		// can tell its events are not stale, from any PID namespace.
		if err := f.holdToken(self); err != nil {
			return nil, err
		}
		o = self
	}
	// Names are unique to this process's lifetime, so a group that exists
	// is another process's doing; skip it, but give up after a few tries
	// rather than loop forever.
	var group, name string
	for attempt := 0; ; attempt++ {
		n := counter.Add(1) - 1
		var err error
		if group, err = GroupName(o, n); err != nil {
			return nil, err
		}
		if name, err = EventName(symbol, o, n); err != nil {
			return nil, err
		}
		_, err = f.EventID(group, name)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, err
		}
		if attempt == 16 {
			return nil, fmt.Errorf("event %s/%s: %w", group, name, os.ErrExist)
		}
	}
	line := fmt.Sprintf("%s:%s/%s %s", prefix, group, name, target)
	if err := f.write(kind.eventsFile(), line); err != nil {
		return nil, err
	}
	id, err := f.EventID(group, name)
	if err != nil {
		// Kernels before 4.12 ignore "rN:GROUP/NAME" and create an event
		// with a generated name instead; ours then does not exist.
		_ = f.write(kind.eventsFile(), "-:"+group+"/"+name)
		if kind == Kretprobe && errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("kretprobe maxactive (needs kernel 4.12+): %w", ebpf.ErrNotSupported)
		}
		return nil, err
	}
	ev := &Event{Kind: kind, Group: group, Name: name, ID: id, fs: f}
	file, pe := kind.eventsFile(), "-:"+group+"/"+name
	ev.cleanup = runtime.AddCleanup(ev, func(struct{}) { _ = f.write(file, pe) }, struct{}{})
	return ev, nil
}

// Close removes the event from tracefs. It fails with EBUSY while a perf
// event still refers to the event; close those first. Closing twice, or a
// nil *Event, is a no-op.
func (e *Event) Close() error {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	err := e.fs.write(e.Kind.eventsFile(), "-:"+e.Group+"/"+e.Name)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s event %s/%s: %w", e.Kind, e.Group, e.Name, err)
	}
	e.closed = true
	e.cleanup.Stop()
	return nil
}

// Missed returns the event's miss count from kprobe_profile: for a
// kretprobe, the instances dropped because maxactive was exhausted. Uprobe
// events have no miss counter and return an error wrapping
// [ebpf.ErrNotSupported].
func (e *Event) Missed() (uint64, error) {
	if e.Kind != Kprobe && e.Kind != Kretprobe {
		return 0, fmt.Errorf("read missed count of %s event %s: %w", e.Kind, e.Name, ebpf.ErrNotSupported)
	}
	prof, err := e.fs.Profile()
	if err != nil {
		return 0, fmt.Errorf("read missed count of %s: %w", e.Name, err)
	}
	entry, ok := prof[e.Name]
	if !ok {
		entry, ok = prof[e.Group+"/"+e.Name]
	}
	if !ok {
		return 0, fmt.Errorf("read missed count of %s: not in %s: %w", e.Name, KprobeProfileFile, os.ErrNotExist)
	}
	return entry.Missed, nil
}

// write appends one command to the events file. It never truncates: opening
// kprobe_events with O_TRUNC would delete every probe on the host.
func (f *FS) write(file, line string) error {
	fh, err := os.OpenFile(filepath.Join(f.root, file), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", file, notSupported(err, file))
	}
	defer fh.Close()
	_, err = fh.WriteString(line)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EILSEQ):
		// Since kernel commit ab105a4fb894: offset is not on an instruction boundary.
		return fmt.Errorf("write %q to %s: bad instruction boundary: %w (%w)", line, file, os.ErrNotExist, err)
	case errors.Is(err, syscall.ERANGE):
		return fmt.Errorf("write %q to %s: offset out of range: %w (%w)", line, file, os.ErrNotExist, err)
	}
	return fmt.Errorf("write %q to %s: %w", line, file, err)
}

// notSupported turns a missing events file into ebpf.ErrNotSupported.
func notSupported(err error, what string) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("kernel has no %s: %w (%v)", what, ebpf.ErrNotSupported, err)
	}
	return err
}

// maxKallsyms bounds the read of /proc/kallsyms (as internal/kernel's
// MaxKallsymsSize does).
const maxKallsyms = 256 << 20

// kallsymsHas reports whether /proc/kallsyms lists a symbol named sym (in
// the kernel or a module).
func kallsymsHas(sym string) (bool, error) {
	fh, err := boundedio.Open("/proc/kallsyms", "kallsyms")
	if err != nil {
		return false, err
	}
	defer fh.Close()
	sc := bufio.NewScanner(boundedio.LimitReader(fh, maxKallsyms, "kallsyms", "/proc/kallsyms"))
	for sc.Scan() {
		// "ffffffff81000000 T _stext" or "... t name\t[module]"
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[2] == sym {
			return true, nil
		}
	}
	return false, sc.Err()
}
