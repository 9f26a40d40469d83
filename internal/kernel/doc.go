// Package kernel reads and parses facts about the running Linux kernel. It
// is the only package in the module that reads host files (/proc, /sys,
// /etc, /boot) or calls uname; everything else receives parsed values.
//
// The parsers (ParseRelease, ParseProcVersion, ParseVersionSignature,
// ParseOSRelease, ParseCPUList, ParseConfig, ScanKallsyms, ParseMounts) are
// pure: they take strings or an io.Reader and never touch the host, so they
// are tested on fixtures and fuzzed. Host reads go through [Host], whose
// fs.FS is rooted at "/" (os.DirFS("/") by default) so tests can replay
// another machine's files. Host reads only regular files (opening never
// blocks on a FIFO or device) and reads each kind of file through a bound
// (MaxFileSize, MaxConfigSize also after gunzip, MaxKallsymsSize,
// MaxMountsSize, MaxBTFSize), via internal/boundedio.
//
// Release strings are never handed to a semver library: "5.15.0-91-generic"
// is not semver (see the module's STYLE.md, rule 17). ParseRelease splits
// them into a numeric core and an opaque suffix, and the suffix is only ever
// matched against the known distribution shapes.
package kernel
