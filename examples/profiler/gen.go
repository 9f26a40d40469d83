//go:build linux && (386 || amd64)

package main

// The committed profiler_x86_bpfel.{go,o} come from profiler.c, compiled for x86
// (-target amd64 defines __TARGET_ARCH_x86 for the pt_regs accessors), so
// this example builds on Linux x86 only. Regenerating needs clang, llvm-strip
// and libbpf's headers (Debian: clang, llvm, libbpf-dev); the include path
// below is Debian's multiarch location of <asm/types.h>.
//go:generate go tool bpf2go -tags linux -target amd64 -type key -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" profiler profiler.c
