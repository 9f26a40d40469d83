package fallback

import (
	"errors"
	"time"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// Action is what a Decision did to a request.
type Action string

// The actions of a Decision, as reported in JSON and telemetry.
const (
	Allow     Action = "allow"     // attach as requested
	Downgrade Action = "downgrade" // safer or available mechanism (fentry→kprobe, hardware→software)
	Upgrade   Action = "upgrade"   // better mechanism (kprobe→fentry, kretprobe→fexit, single→multi)
	Cap       Action = "cap"       // kretprobe maxactive capped
	Pace      Action = "pace"      // uprobe registrations paced
	Refuse    Action = "refuse"    // nothing safe remains
	Warn      Action = "warn"      // attached as requested; a hazard applies (pinned, warn mode, or forced)
)

// PerfEvent describes a perf event a perf_event program is attached to.
type PerfEvent struct {
	// Hardware is true for PERF_TYPE_HARDWARE (cycles: NMI on x86), false
	// for the software cpu-clock event.
	Hardware bool `json:"hardware"`
	// Exactly one of Frequency (Hz) and Period (events) is non-zero.
	Frequency uint64 `json:"frequency,omitempty"`
	Period    uint64 `json:"period,omitempty"`
}

// Pacing spaces uprobe registrations: at most Concurrency at once,
// consecutive ones at least Interval apart. A registration is one uprobe,
// or one batch of at most Batch symbols of a uprobe_multi link (Batch is
// set for multi links only; 0: all of the link's symbols at once).
type Pacing struct {
	Interval    time.Duration `json:"interval"`
	Concurrency int           `json:"concurrency"`
	Batch       int           `json:"batch,omitempty"`
}

// Settings are the chosen mechanism's parameters.
type Settings struct {
	// MaxActive is the kretprobe maxactive (0: kernel default, no tracefs).
	MaxActive int        `json:"maxactive,omitempty"`
	PerfEvent *PerfEvent `json:"perf_event,omitempty"`
	Pacing    *Pacing    `json:"pacing,omitempty"`
	// Multi is set when single probes were batched into a multi link.
	Multi bool `json:"multi,omitempty"`
}

// Step is one move of the planner, in order.
type Step struct {
	From   probe.Mechanism `json:"from"`
	To     probe.Mechanism `json:"to,omitempty"` // empty when the step refuses
	Action Action          `json:"action"`
	// Hazard names the hazard that caused the step, or Missing the
	// mechanism that is unavailable; one of them is set.
	Hazard  hazards.ID      `json:"hazard,omitempty"`
	Missing probe.Mechanism `json:"missing,omitempty"`
	Forced  bool            `json:"forced,omitempty"`
	Reason  string          `json:"reason"`
}

// Request is one attach request as the planner sees it.
type Request struct {
	// Mechanism is what the caller asked for.
	Mechanism probe.Mechanism
	// Target names the function, event, symbol or perf event (for messages).
	Target string
	// AttachTo lists what the program attaches to, as the kernel names
	// it: functions ("__x64_sys_getpid", one per symbol of a multi link),
	// a tracepoint as "group/name", a raw or BTF tracepoint's event
	// ("sys_enter"). Empty means unknown. It decides, with each mechanism
	// planned, whether the program may run in interrupt context
	// (hazards.Attachment.AttachTo): programs on syscall entry points
	// never do.
	AttachTo []string
	// Alternatives lists the other mechanisms the caller has program
	// variants for (e.g. Kprobe beside Fentry). Perf hardware→software and
	// kretprobe maxactive need no variant.
	Alternatives []probe.Mechanism
	// Pinned forbids transparent changes of mechanism: a blocking hazard or
	// a missing mechanism refuses, warnings are reported, and cap and pace
	// still apply because they change settings, not the mechanism.
	Pinned bool
	// ReadsUserMemory: the program reads user memory through
	// bpf_probe_read_user*, the legacy bpf_probe_read* or
	// bpf_copy_from_user* (unknown: true).
	ReadsUserMemory bool
	// ReadsUserStacks: the program walks user stacks (bpf_get_stack,
	// bpf_get_stackid, bpf_get_task_stack with BPF_F_USER_STACK; unknown:
	// true).
	ReadsUserStacks bool
	// TailCalls: the program makes tail calls (unknown: true).
	TailCalls bool
	// Seccomp: the traced process may run under seccomp (unknown: true).
	Seccomp bool
	// Targets is the number of functions or symbols requested together (multi-link batching from 2 on).
	Targets int
	// MaxActive is the caller's kretprobe maxactive (0: default).
	MaxActive int
	// PerfEvent is the requested perf event, for perf-event mechanisms.
	PerfEvent *PerfEvent
}

// Decision is the planner's answer for one Request.
type Decision struct {
	Target    string          `json:"target,omitempty"`
	Requested probe.Mechanism `json:"requested"`
	// Chosen is empty when the request is refused.
	Chosen   probe.Mechanism   `json:"chosen,omitempty"`
	Action   Action            `json:"action"`
	Settings Settings          `json:"settings"`
	Steps    []Step            `json:"steps"`
	Findings []hazards.Finding `json:"findings"`
	// Forced lists the hazards the operator forced past.
	Forced []hazards.ID `json:"forced,omitempty"`
	Mode   hazards.Mode `json:"mode"`

	// WouldChoose, WouldAction and WouldSettings are set in warn mode only:
	// what enforce mode would have done (Chosen is then the requested
	// mechanism). WouldChoose is empty when enforce would have refused.
	WouldChoose   probe.Mechanism `json:"would_choose,omitempty"`
	WouldAction   Action          `json:"would_action,omitempty"`
	WouldSettings *Settings       `json:"would_settings,omitempty"`
}

// Sentinel errors.
var (
	// ErrRefused is matched by every refusal (see RefusedError).
	ErrRefused = errors.New("attach refused")
)
