package hazards

// WellFormed reports whether id has the shape every hazard ID has:
// kebab-case (lower-case letters, digits, single dashes), at most 64
// characters. A well-formed ID that a catalog does not know may be one a
// newer catalog knows; a malformed one ("ALL", "Fentry-Deadlock", "a;b")
// is never an ID. ForceAll is well-formed.
func (id ID) WellFormed() bool {
	return len(id) <= 64 && idRE.MatchString(string(id))
}
