#!/usr/bin/env bash
# build-lab-kernel.sh builds the hazard lab's kernel (docs/hazard-lab.md,
# scenario 5): Debian bookworm's own 6.1 source (the linux-source-6.1 package
# of the same version as the matrix's debian-6.1 kernel) with upstream
# d319f344561d "mm: Fix copy_from_user_nofault()." reverted
# (scripts/lab-kernel/revert-d319f344561d.patch) and a small config
# (`make tinyconfig` + scripts/lab-kernel/lab.config), so the user-read
# deadlock of HAZARDS-RESEARCH.md §1 is back in a kernel that boots under
# QEMU like the matrix's.
#
# The result is cached beside the downloaded kernels, keyed by source version
# and a hash of the recipe (config fragment, patch, this script's recipe
# version, compiler and pahole versions); a cached build is reused:
#
#   $CACHE/lab-6.1-<version>-<hash>/vmlinuz     bzImage
#   $CACHE/lab-6.1-<version>-<hash>/config      the full .config
#   $CACHE/lab-6.1-<version>-<hash>/System.map
#   $CACHE/lab-6.1-<version>-<hash>/manifest    name=lab-6.1, kind=lab, package=,
#                                               version=, release=, suite=, patch=,
#                                               recipe=, build_seconds=,
#                                               build_cpu_seconds=, built=
#   $CACHE/debs/linux-source-6.1_<version>_all.deb
#
# Older lab-6.1-* builds are removed when a new one is made. Needs the
# private apt state and the debian-6.1 manifest of scripts/provision-kernels.sh
# (run it first), root to install the build tools when missing (flex, bison,
# dwarves for pahole, libelf-dev, bc), and about 3 GiB in TMPDIR (or
# SAFEBPF_LAB_BUILD_DIR) while it builds. SAFEBPF_LAB_JOBS sets make -j
# (default: the number of CPUs). Prints the kernel it provides, one line.
set -euo pipefail

CACHE=${SAFEBPF_KERNEL_CACHE:-/var/cache/safebpf-kernels}
HERE=$(cd "$(dirname "$0")" && pwd)
FRAGMENT=$HERE/lab-kernel/lab.config
PATCH=$HERE/lab-kernel/revert-d319f344561d.patch
# Bump when the steps below change what is built from the same inputs.
RECIPE_VERSION=1
JOBS=${SAFEBPF_LAB_JOBS:-$(nproc)}
work="" # the build directory, removed on exit
CPU=0   # set by children_cpu

log() { printf 'build-lab-kernel: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

install_missing() {
	local missing=()
	command -v flex >/dev/null || missing+=(flex)
	command -v bison >/dev/null || missing+=(bison)
	command -v pahole >/dev/null || missing+=(dwarves)
	command -v bc >/dev/null || missing+=(bc)
	command -v gcc >/dev/null || missing+=(gcc)
	command -v make >/dev/null || missing+=(make)
	command -v xz >/dev/null || missing+=(xz-utils)
	command -v patch >/dev/null || missing+=(patch)
	[[ -e /usr/include/libelf.h ]] || missing+=(libelf-dev)
	[[ -e /usr/include/openssl/opensslv.h ]] || missing+=(libssl-dev)
	if ((${#missing[@]})); then
		log "installing ${missing[*]}"
		[[ $(id -u) == 0 ]] || die "need root to install ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
	fi
}

# children_cpu sets CPU to the user+system CPU seconds of this shell's
# finished children (bash's times builtin, which must run in this shell, not
# in a command substitution): the build's CPU cost, which on a shared
# machine says more than its wall time.
children_cpu() {
	times >"$work/.times"
	CPU=$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%d\n", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$work/.times")
}

manifest_value() { awk -F= -v k="$2" '$1 == k { print substr($0, length(k) + 2); exit }' "$1"; }

report() {
	awk -F= -v dir="$1" '{ v[$1] = substr($0, length($1) + 2) }
		END { printf "%-12s %-40s %-14s %-22s %s (built in %ss)\n", v["name"], v["package"] " + revert d319f344561d", v["version"], v["suite"], dir "/vmlinuz", v["build_seconds"] }' "$1/manifest"
}

main() {
	local base=$CACHE/debian-6.1/manifest
	[[ -s $base ]] || die "$base missing: run scripts/provision-kernels.sh first (the lab kernel is built from the same Debian version)"
	[[ -s $FRAGMENT && -s $PATCH ]] || die "missing $FRAGMENT or $PATCH"
	local version suite
	version=$(manifest_value "$base" version)
	suite=$(manifest_value "$base" suite)
	[[ -n $version ]] || die "$base has no version="
	install_missing

	local recipe
	recipe=$({
		echo "recipe $RECIPE_VERSION"
		cat "$FRAGMENT" "$PATCH"
		gcc --version | head -n1
		pahole --version
	} | sha256sum | cut -c1-12)
	local out=$CACHE/lab-6.1-$version-$recipe
	if [[ -s $out/vmlinuz && -s $out/manifest ]]; then
		log "cached: $out"
		report "$out"
		return 0
	fi

	mkdir -p "$CACHE/debs"
	exec 9>"$CACHE/.lab-build.lock"
	flock 9
	if [[ -s $out/vmlinuz && -s $out/manifest ]]; then # built while we waited
		report "$out"
		return 0
	fi

	local deb=$CACHE/debs/linux-source-6.1_${version//:/%3a}_all.deb
	if [[ ! -s $deb ]]; then
		local apt=$CACHE/apt
		[[ -s $apt/sources.list ]] || die "$apt/sources.list missing: run scripts/provision-kernels.sh first"
		log "downloading linux-source-6.1 $version"
		(cd "$CACHE/debs" && apt-get -o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null \
			-o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o APT::Architecture=amd64 \
			-o APT::Architectures=amd64 -o Debug::NoLocking=1 -o APT::Sandbox::User=root \
			-qq download "linux-source-6.1=$version" >&2) ||
			die "cannot download linux-source-6.1=$version (the version of $base); refresh with SAFEBPF_KERNEL_REFRESH=1 scripts/provision-kernels.sh"
	fi

	work=$(mktemp -d "${SAFEBPF_LAB_BUILD_DIR:-${TMPDIR:-/tmp}}/safebpf-lab-kernel.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	local start=$SECONDS
	log "unpacking linux-source-6.1 $version into $work"
	dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/src/linux-source-6.1.tar.xz | tar -xJ -C "$work"
	local src=$work/linux-source-6.1
	[[ -s $src/Makefile ]] || die "$deb did not unpack to linux-source-6.1/"
	local unpacked=$((SECONDS - start))

	log "reverting d319f344561d ($PATCH)"
	(cd "$src" && patch -p1 --dry-run --quiet <"$PATCH" >/dev/null) || die "$PATCH does not apply to linux-source-6.1 $version"
	(cd "$src" && patch -p1 --quiet <"$PATCH")

	log "configuring: tinyconfig + $FRAGMENT"
	make -C "$src" -s ARCH=x86_64 tinyconfig >/dev/null
	(cd "$src" && scripts/kconfig/merge_config.sh -m .config "$FRAGMENT" >/dev/null)
	make -C "$src" -s ARCH=x86_64 olddefconfig >/dev/null 2>&1
	local line lost=()
	while IFS= read -r line; do
		grep -qxF -- "$line" "$src/.config" || lost+=("$line")
	done < <(grep -E '^CONFIG_[A-Z0-9_]+=' "$FRAGMENT")
	((${#lost[@]} == 0)) || die "the final .config lost: ${lost[*]} (a dependency is missing from $FRAGMENT)"

	log "building bzImage with make -j$JOBS (log: $work/build.log)"
	local bstart=$SECONDS cpu0 cpu1
	children_cpu
	cpu0=$CPU
	if ! make -C "$src" ARCH=x86_64 -j"$JOBS" bzImage >"$work/build.log" 2>&1; then
		tail -n 60 "$work/build.log" >&2
		die "kernel build failed"
	fi
	local built=$((SECONDS - bstart))
	children_cpu
	cpu1=$CPU
	local release
	release=$(make -C "$src" -s ARCH=x86_64 kernelrelease)

	rm -rf "$out.new"
	mkdir -p "$out.new"
	cp "$src/arch/x86/boot/bzImage" "$out.new/vmlinuz"
	cp "$src/.config" "$out.new/config"
	cp "$src/System.map" "$out.new/System.map"
	cat >"$out.new/manifest" <<EOF
name=lab-6.1
kind=lab
package=linux-source-6.1
version=$version
release=$release
suite=$suite
deb=${deb##*/}
patch=${PATCH##*/}
recipe=$recipe
unpack_seconds=$unpacked
build_seconds=$built
build_cpu_seconds=$((cpu1 - cpu0))
jobs=$JOBS
built=$(date -u +%Y-%m-%dT%H:%M:%SZ)
EOF
	local old
	for old in "$CACHE"/lab-6.1-*; do
		[[ -d $old && $old != "$out" && $old != "$out.new" ]] && rm -rf "$old"
	done
	mv "$out.new" "$out"
	log "built $release in ${built}s, $((cpu1 - cpu0)) CPU seconds (unpack ${unpacked}s)"
	report "$out"
}

main "$@"
