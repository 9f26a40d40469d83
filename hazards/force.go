package hazards

import (
	"fmt"
	"slices"
	"strings"
)

// ForceOrigin says where a force list came from. It decides what an ID
// the catalog does not know does; that rule is stated here and applied by
// [Catalog.CheckForce] and [Catalog.ParseForce] only.
type ForceOrigin int

const (
	// FromOperator is a force list given at run time: a flag
	// (-safebpf-force, the command's --force), SAFEBPF_FORCE, or
	// loader.Options.Force. A well-formed ID the catalog does not know is
	// not an error: it may name a hazard a newer release knows, set
	// fleet-wide while agents are upgraded, and it cannot force anything
	// here. It is returned in [Force].Unknown, for the caller to log at
	// warn level and ignore (version skew must not stop older agents).
	FromOperator ForceOrigin = iota
	// FromPolicyFile is a policy's force list. A policy is written
	// against the catalog it names, and the operator who wrote it can be
	// told at once: an ID the catalog (with the policy's own rules) does
	// not know is an error, and so is a duplicate.
	FromPolicyFile
)

// Force is a force list checked against a catalog.
type Force struct {
	// IDs are the well-formed IDs in the order given, without duplicates:
	// known ones, ForceAll, and (FromOperator only) unknown ones.
	IDs []ID
	// Unknown are the IDs of IDs that the catalog does not know; they
	// force nothing. Always empty for FromPolicyFile.
	Unknown []ID
}

// Known returns the IDs that force something: IDs without Unknown.
func (f Force) Known() []ID {
	if len(f.Unknown) == 0 {
		return f.IDs
	}
	var out []ID
	for _, id := range f.IDs {
		if !slices.Contains(f.Unknown, id) {
			out = append(out, id)
		}
	}
	return out
}

// ParseForce parses a force list as written on a command line or in
// SAFEBPF_FORCE: comma-separated IDs, with spaces around them, empty
// items and duplicates ignored. The items are then checked with
// CheckForce. A nil catalog is [Builtin].
func (c *Catalog) ParseForce(s string, from ForceOrigin) (Force, error) {
	var ids []ID
	for _, item := range strings.Split(s, ",") {
		id := ID(strings.TrimSpace(item))
		if id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return c.CheckForce(ids, from)
}

// CheckForce checks a force list against the catalog (a nil catalog is
// [Builtin]). ForceAll ("all", spelled exactly so) forces every hazard. A
// malformed item, which no release could know ("ALL",
// "Kretprobe-Contention", "a;b"; see [ID.WellFormed]), is always an
// error. What an ID the catalog does not know does depends on from: see
// [ForceOrigin]. Errors are *[UnknownIDError] (errors.Is
// [ErrUnknownHazard]) listing the known IDs, or, for a duplicate in a
// policy file, a *[ForceError].
func (c *Catalog) CheckForce(ids []ID, from ForceOrigin) (Force, error) {
	if c == nil {
		c = Builtin()
	}
	return checkForce(ids, c.IDs(), from)
}

// ForceError locates a problem in a force list: the index of the
// offending item and what is wrong with it.
type ForceError struct {
	Index int
	ID    ID
	// Err is an *UnknownIDError, or nil for a duplicate.
	Err error
}

// Error implements error.
func (e *ForceError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("duplicate hazard ID %q", e.ID)
	}
	return e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *ForceError) Unwrap() error { return e.Err }

// checkForce is the force-list rule, over the IDs known.
func checkForce(ids, known []ID, from ForceOrigin) (Force, error) {
	var f Force
	for i, id := range ids {
		unknown := &UnknownIDError{ID: id, Known: known}
		if !id.WellFormed() {
			return Force{}, &ForceError{Index: i, ID: id, Err: unknown}
		}
		if slices.Contains(f.IDs, id) {
			if from == FromPolicyFile {
				return Force{}, &ForceError{Index: i, ID: id}
			}
			continue
		}
		if id != ForceAll && !slices.Contains(known, id) {
			if from == FromPolicyFile {
				return Force{}, &ForceError{Index: i, ID: id, Err: unknown}
			}
			f.Unknown = append(f.Unknown, id)
		}
		f.IDs = append(f.IDs, id)
	}
	return f, nil
}
