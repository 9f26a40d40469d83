#!/usr/bin/env bash
# provision-kernels.sh resolves, downloads and unpacks the Debian kernels the
# kernel-matrix tests (internal/vmtest) boot under QEMU, and installs QEMU when
# it is missing. It is idempotent: downloaded packages and unpacked kernels are
# cached and reused.
#
#   debian-5.10  newest linux-image-5.10.0-NN-cloud-amd64  (bullseye, bullseye-security)
#   debian-6.1   newest linux-image-6.1.0-NN-cloud-amd64   (bookworm, bookworm-security)
#   debian-6.12  newest linux-image-6.12.NN+deb13-cloud-amd64 (trixie), else
#                newest linux-image-6.12.NN+deb12-amd64 (bookworm)
#
# Layout of the cache (SAFEBPF_KERNEL_CACHE, default /var/cache/safebpf-kernels):
#   debs/*.deb                 downloaded packages
#   apt/                       private apt state (lists, caches, sources.list)
#   <name>/vmlinuz             the kernel image
#   <name>/config              its build config (boot/config-RELEASE)
#   <name>/manifest            name=, package=, version=, release=, suite=
#
# The Debian archive addresses are read from this machine's apt sources (the
# ones it uses for bookworm and bookworm-security); SAFEBPF_DEBIAN_MIRROR and
# SAFEBPF_DEBIAN_SECURITY_MIRROR override them. A cached kernel is
# re-resolved (and re-downloaded only when a newer package exists) once its
# manifest is older than SAFEBPF_KERNEL_MAX_AGE_DAYS (default 7); set
# SAFEBPF_KERNEL_REFRESH=1 to re-resolve now.
#
# Needs root for apt-get install (only when qemu is missing). Prints the
# kernels it provides, one line each.
set -euo pipefail

CACHE=${SAFEBPF_KERNEL_CACHE:-/var/cache/safebpf-kernels}
REFRESH=${SAFEBPF_KERNEL_REFRESH:-0}
MAX_AGE_DAYS=${SAFEBPF_KERNEL_MAX_AGE_DAYS:-7}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

log() { printf 'provision-kernels: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- host tools ---------------------------------------------------------------

install_missing() {
	local missing=()
	command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
	command -v dpkg-deb >/dev/null || missing+=(dpkg)
	command -v apt-get >/dev/null || die "apt-get not found: this script needs a Debian-based host"
	[[ -r $KEYRING ]] || missing+=(debian-archive-keyring)
	if ((${#missing[@]})); then
		log "installing ${missing[*]}"
		[[ $(id -u) == 0 ]] || die "need root to install ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
	fi
}

# --- archive addresses ----------------------------------------------------------

# archive_uri SUITE prints the first URI this machine's apt sources use for
# SUITE, reading both deb822 (*.sources) and one-line (*.list) files.
archive_uri() {
	local suite=$1 f
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -r $f ]] || continue
		awk -v want="$suite" '
			function flush() { if (uri != "" && ok) { print uri; found = 1; exit } uri = ""; ok = 0 }
			/^[[:space:]]*$/ { flush(); next }
			/^URIs:/ { uri = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == want) ok = 1 }
			END { if (!found) flush() }
		' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -r $f ]] || continue
		awk -v want="$suite" '
			$1 == "deb" {
				i = 2
				if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
				if ($(i+1) == want) print $i
			}
		' "$f"
	done
}

resolve_mirrors() {
	MIRROR=${SAFEBPF_DEBIAN_MIRROR:-$(archive_uri bookworm | head -n1)}
	SECURITY=${SAFEBPF_DEBIAN_SECURITY_MIRROR:-$(archive_uri bookworm-security | head -n1)}
	[[ -n $MIRROR ]] || die "no apt source for bookworm found in /etc/apt; set SAFEBPF_DEBIAN_MIRROR"
	if [[ -z $SECURITY ]]; then
		SECURITY=${MIRROR%/debian}/debian-security
	fi
	MIRROR=${MIRROR%/}
	SECURITY=${SECURITY%/}
}

# --- private apt state -----------------------------------------------------------

APT_OPTS=()
setup_apt() {
	local dir=$CACHE/apt
	mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
	cat >"$dir/sources.list.new" <<EOF
deb [signed-by=$KEYRING] $MIRROR bullseye main
deb [signed-by=$KEYRING] $SECURITY bullseye-security main
deb [signed-by=$KEYRING] $MIRROR bookworm main
deb [signed-by=$KEYRING] $SECURITY bookworm-security main
deb [signed-by=$KEYRING] $MIRROR trixie main
EOF
	mv "$dir/sources.list.new" "$dir/sources.list"
	APT_OPTS=(
		-o "Dir::Etc::SourceList=$dir/sources.list"
		-o "Dir::Etc::SourceParts=/dev/null"
		-o "Dir::State::Lists=$dir/lists"
		-o "Dir::Cache=$dir/cache"
		-o "APT::Architecture=amd64"
		-o "APT::Architectures=amd64"
		-o "Acquire::Languages=none"
		-o "Debug::NoLocking=1"
		-o "APT::Sandbox::User=root"
	)
	log "updating private apt lists ($MIRROR, $SECURITY)"
	# A suite that cannot be read (e.g. its key is not in the keyring) only
	# loses its candidates; the resolution below says what it found.
	apt-get "${APT_OPTS[@]}" -qq update >&2 || log "warning: apt-get update reported errors (see above)"
}

# newest REGEX prints the newest package name matching REGEX (anchored) in
# the private apt state, ordered by the version in the name.
newest() {
	{ apt-cache "${APT_OPTS[@]}" pkgnames 2>/dev/null || true; } | { grep -E "^($1)\$" || true; } | sort -V | tail -n1
}

# --- one kernel -----------------------------------------------------------------

# provide NAME REGEX... : resolve the newest package for the first REGEX that
# matches, download, unpack, write the manifest.
provide() {
	local name=$1
	shift
	local out=$CACHE/$name
	if [[ $REFRESH != 1 && -s $out/vmlinuz && -s $out/manifest &&
		-z $(find "$out/manifest" -mtime "+$MAX_AGE_DAYS" 2>/dev/null) ]]; then
		log "$name: cached"
		report "$name"
		return 0
	fi
	[[ ${#APT_OPTS[@]} -gt 0 ]] || setup_apt
	local pkg="" re
	for re in "$@"; do
		pkg=$(newest "$re")
		[[ -n $pkg ]] && break
	done
	[[ -n $pkg ]] || die "$name: no package matches $*"
	local ver
	ver=$(apt-cache "${APT_OPTS[@]}" policy "$pkg" | awk '/Candidate:/ { print $2 }')
	[[ -n $ver && $ver != "(none)" ]] || die "$name: no candidate version for $pkg"
	mkdir -p "$CACHE/debs"
	local deb
	deb=$(ls "$CACHE/debs/${pkg}_${ver//:/%3a}_"*.deb 2>/dev/null | head -n1 || true)
	if [[ -z $deb ]]; then
		log "$name: downloading $pkg $ver"
		(cd "$CACHE/debs" && apt-get "${APT_OPTS[@]}" -qq download "$pkg=$ver" >&2)
		deb=$(ls "$CACHE/debs/${pkg}_${ver//:/%3a}_"*.deb | head -n1)
	else
		log "$name: $pkg $ver already downloaded"
	fi
	local tmp
	tmp=$(mktemp -d "$CACHE/.x-$name.XXXXXX")
	dpkg-deb -x "$deb" "$tmp"
	local vmlinuz config release
	vmlinuz=$(ls "$tmp"/boot/vmlinuz-* 2>/dev/null | head -n1 || true)
	config=$(ls "$tmp"/boot/config-* 2>/dev/null | head -n1 || true)
	[[ -s $vmlinuz && -s $config ]] || { rm -rf "$tmp"; die "$name: $deb has no boot/vmlinuz-* or boot/config-*"; }
	release=${vmlinuz##*/vmlinuz-}
	local suite
	suite=$(apt-cache "${APT_OPTS[@]}" madison "$pkg" | awk -F'|' -v v="$ver" '{ gsub(/ /, "", $2) } $2 == v { split($3, f, " "); print f[2]; exit }')
	rm -rf "$out.new"
	mkdir -p "$out.new"
	cp "$vmlinuz" "$out.new/vmlinuz"
	cp "$config" "$out.new/config"
	cat >"$out.new/manifest" <<EOF
name=$name
package=$pkg
version=$ver
release=$release
suite=$suite
deb=${deb##*/}
EOF
	rm -rf "$out" "$tmp"
	mv "$out.new" "$out"
	report "$name"
}

report() {
	local m=$CACHE/$1/manifest
	awk -F= -v dir="$CACHE/$1" '{ v[$1] = substr($0, length($1) + 2) }
		END { printf "%-12s %-40s %-14s %-22s %s\n", v["name"], v["package"], v["version"], v["suite"], dir "/vmlinuz" }' "$m"
}

main() {
	install_missing
	resolve_mirrors
	mkdir -p "$CACHE"
	provide debian-5.10 'linux-image-5\.10\.0-[0-9]+-cloud-amd64'
	provide debian-6.1 'linux-image-6\.1\.0-[0-9]+-cloud-amd64'
	provide debian-6.12 'linux-image-6\.12\.[0-9]+\+deb13-cloud-amd64' 'linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64' 'linux-image-6\.12\.[0-9]+\+deb12-amd64'
}

main "$@"
