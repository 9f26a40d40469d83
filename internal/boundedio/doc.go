// Package boundedio reads files that are expected to be regular files of a
// bounded size: policy and catalog files, kernel fixtures, kallsyms and
// kernel configs given by an operator, ELF objects. It exists because
// os.ReadFile trusts its input: it blocks forever opening a FIFO that has no
// writer, and it reads /dev/zero until memory runs out.
//
// Every function here
//
//   - opens with O_NONBLOCK, so opening a FIFO or a device never waits;
//   - refuses anything that is not a regular file, naming its type
//     ([ErrNotRegular]);
//   - refuses a file whose size exceeds the caller's limit before reading
//     it, and stops reading at the limit when the size is not known in
//     advance (/proc files report size 0) ([ErrTooLarge]).
//
// Errors name what was being read ("policy", "kallsyms"), the path, and the
// limit, so an operator can tell which input was wrong and why.
//
// The limits themselves belong to the packages that own each kind of input
// (hazards for policy and catalog files, probe for kernel fixtures,
// internal/kernel for host files, loader for ELF objects); docs/security.md
// lists them all.
package boundedio
