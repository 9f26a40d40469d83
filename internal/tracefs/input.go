package tracefs

import (
	"fmt"
	"strings"
)

// maxSymbolLen is the kernel's KSYM_NAME_LEN (512 since 6.1, 128 before).
const maxSymbolLen = 512

// maxPathLen is PATH_MAX.
const maxPathLen = 4096

// checkSymbol accepts a kernel symbol as kprobe_events takes it:
// [MODULE:]SYMBOL with symbol characters [A-Za-z0-9_.] and module
// characters [A-Za-z0-9_-]. Everything else is refused before anything is
// written: a newline would start a second command (adding or deleting
// another tool's event), a space or tab would add fetch arguments, and '#'
// starts a comment that cuts the command short.
func checkSymbol(sym string) error {
	if sym == "" || len(sym) > maxSymbolLen {
		return fmt.Errorf("symbol %.80q: want 1 to %d bytes: %w", sym, maxSymbolLen, errInvalidInput)
	}
	mod, name, hasMod := strings.Cut(sym, ":")
	if !hasMod {
		mod, name = "", sym
	}
	if name == "" || (hasMod && mod == "") {
		return fmt.Errorf("symbol %.80q: want SYMBOL or MODULE:SYMBOL: %w", sym, errInvalidInput)
	}
	for i := 0; i < len(mod); i++ {
		if c := mod[i]; !(isAlphaOrUnderscore(c) || (c >= '0' && c <= '9') || c == '-') {
			return fmt.Errorf("symbol %.80q: module name has byte %q: %w", sym, c, errInvalidInput)
		}
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !(isAlphaOrUnderscore(c) || (c >= '0' && c <= '9') || c == '.') {
			return fmt.Errorf("symbol %.80q: byte %q is not in a kernel symbol name: %w", sym, c, errInvalidInput)
		}
	}
	return nil
}

// checkPath accepts an absolute file path that uprobe_events parses back
// unchanged: no byte the kernel treats as a space (isspace, which in the
// kernel's Latin-1 ctype includes 0xa0), no control character, no '#'
// (comment), at most PATH_MAX bytes. A ':' is fine: the kernel splits the
// offset at the last one.
func checkPath(path string) error {
	if path == "" || path[0] != '/' || len(path) > maxPathLen {
		return fmt.Errorf("path %.80q: want an absolute path of at most %d bytes: %w", path, maxPathLen, errInvalidInput)
	}
	for i := 0; i < len(path); i++ {
		if c := path[i]; c <= ' ' || c == 0x7f || c == 0xa0 || c == '#' {
			return fmt.Errorf("path %.80q: byte %q cannot be written to uprobe_events (it would split or end the command): %w", path, c, errInvalidInput)
		}
	}
	return nil
}
