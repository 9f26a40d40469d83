// Package kcode reads the running kernel's machine code and tells whether a
// function calls another: it resolves function addresses and extents from
// /proc/kallsyms ([ReadSymbols]), reads their bytes from /proc/kcore
// ([OpenCore], an ELF64 core file whose PT_LOAD segments map kernel virtual
// addresses) and disassembles them ([FindCall]) with golang.org/x/arch
// (x86asm for amd64, arm64asm for arm64).
//
// A kernel fixed by a commit that adds a call (d319f344561d "mm: Fix
// copy_from_user_nofault()." adds a call to nmi_uaccess_okay) is told apart
// from an unfixed one by what its own code does, whatever its version string
// says: the approach of the OpenTelemetry eBPF profiler, generalised to any
// "function -> callee" question.
//
// # What counts as a call
//
// A direct call (x86 `call rel32`, arm64 `bl`) or a direct jump leaving the
// function (x86 `jmp rel32`, arm64 `b`: a tail call) whose target is the
// callee's entry, a GCC clone of it ("find_vmap_area.constprop.0"), or a
// point in the 16 bytes of padding before its entry (x86 call depth tracking
// thunks, CONFIG_CALL_THUNKS, are patched into that padding). Indirect calls
// are not followed. The function's extent runs up to the next text symbol at
// a higher address; its ".cold" part, when kallsyms lists one, is read too.
//
// # Three-valued answers
//
// FindCall returns an error, never a "no", whenever the code could not be
// read completely: unreadable kallsyms, zeroed addresses (kptr_restrict), a
// function or callee missing from kallsyms, an extent too large to be one
// function, bytes kcore cannot supply, or an instruction the disassembler
// cannot decode before the call was seen. Only a complete linear decode of
// every byte up to the extent answers "the call is not there".
//
// The package reads nothing on its own: callers pass the kallsyms text and
// the kcore reader (internal/kernel.Host opens them), so everything here is
// tested on synthetic cores built by package kcodetest.
package kcode
