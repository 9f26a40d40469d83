package hazards

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Typed errors below match them with errors.Is.
var (
	// ErrInvalidPolicy is matched by every *PolicyError: a policy file (or
	// the built-in catalog) that does not parse or validate.
	ErrInvalidPolicy = errors.New("invalid policy")
	// ErrUnknownHazard is matched by *UnknownIDError: a hazard ID that no
	// catalog entry carries.
	ErrUnknownHazard = errors.New("unknown hazard ID")
)

// PolicyError locates one problem in a policy file or catalog. It prints as
// "policy.yaml:12: hazards.foo: unknown hazard ID "foo" (known: ...)".
type PolicyError struct {
	// File is the name the document was parsed under (may be empty).
	File string
	// Line is the 1-based line of the offending node; 0 when unknown
	// (e.g. a Policy built in Go rather than parsed).
	Line int
	// Key is the path of the offending value: "hazards.foo",
	// "rules[0].affected[1]", "force[2]". Empty for document-level problems.
	Key string
	// Msg says what is wrong.
	Msg string
	// Err is an underlying error (e.g. *UnknownIDError), or nil.
	Err error
}

// Error implements error: file:line: key: message.
func (e *PolicyError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is matches ErrInvalidPolicy.
func (e *PolicyError) Is(target error) bool { return target == ErrInvalidPolicy }

// Unwrap returns the underlying error, if any.
func (e *PolicyError) Unwrap() error { return e.Err }

// UnknownIDError reports a hazard ID that the catalog does not know.
type UnknownIDError struct {
	ID ID
	// Known lists the valid IDs, for the message.
	Known []ID
}

// Error implements error: the unknown ID and the known ones.
func (e *UnknownIDError) Error() string {
	known := make([]string, len(e.Known))
	for i, id := range e.Known {
		known[i] = string(id)
	}
	msg := fmt.Sprintf("unknown hazard ID %q (known: %s)", e.ID, strings.Join(known, ", "))
	if e.ID != ForceAll && strings.EqualFold(string(e.ID), string(ForceAll)) {
		msg += `; "all" must be spelled in lower case`
	}
	return msg
}

// Is matches ErrUnknownHazard.
func (e *UnknownIDError) Is(target error) bool { return target == ErrUnknownHazard }
