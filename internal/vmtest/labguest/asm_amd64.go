//go:build linux && amd64

package main

// uretTarget returns x+1 (asm_amd64.s); scenario 4 uretprobes it.
func uretTarget(x int64) int64

// uretTargetSymbol is uretTarget's ELF symbol in this binary (assembly
// functions carry the ABI0 suffix).
const uretTargetSymbol = "main.uretTarget.abi0"
