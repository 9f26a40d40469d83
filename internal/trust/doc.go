// Package trust decides whether a file may steer a privileged process.
//
// A policy file can force hazards past every check, and a catalog file
// decides what counts as a hazard: whoever can write either controls what a
// privileged agent attaches to the kernel. This package therefore refuses,
// while the process is privileged, a file that someone other than root or
// the process's own user could have written — the rule sudo applies to
// sudoers and sshd's StrictModes applies to authorized_keys:
//
//   - the file, every symbolic link followed on the way to it, and every
//     directory above it (up to /) must be owned by root (uid 0) or by the
//     effective uid of the process;
//   - the file and those directories must not be writable by group or
//     others. A world-writable directory is refused even with its sticky bit
//     set (/tmp): the sticky bit stops others from replacing an existing
//     file, not from planting the file before the agent starts.
//
// "Privileged" means effective uid 0, or any of CAP_SYS_ADMIN, CAP_PERFMON
// or CAP_BPF in the effective capability set: each of them lets the process
// load or attach BPF programs. An unprivileged process gets no ownership
// checks (it cannot attach anything the file could force), but every read
// still goes through [boundedio]: regular files only, bounded in size.
//
// # Race-free checking
//
// The path is walked one component at a time with openat(O_PATH|O_NOFOLLOW)
// from /, checking each object through its file descriptor (fstat) and
// resolving symbolic links by hand, so every check applies to the object
// the next step really goes through. The file is finally opened relative to
// its (checked) directory with O_NOFOLLOW|O_NONBLOCK and must be the inode
// that was checked; since every directory above it is writable only by
// trusted users, nobody else can swap it in between.
package trust
