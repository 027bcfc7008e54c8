#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/vm/mkinitramfs.sh OUT.cpio
#
# Build the VM suite's root filesystem as an uncompressed newc cpio (the
# guest kernel unpacks it faster than a compressed one under TCG):
#   /init                      tests/vm/init (PID 1)
#   /usr/bin/busybox + applets  busybox-static, for whatever is not below
#   bash, GNU coreutils/findutils/diffutils/grep/sed/procps, iproute2,
#   bpftool, ...               the host's binaries plus exactly the shared
#                              libraries ldd lists, so the test scripts see
#                              the same tools as on the host
#   /src/build, /src/tests     voltrace, the test programs, the peer, the
#                              test scripts: a copy of the repository layout
# voltrace is the dynamically linked build/voltrace: Debian ships no static
# libp11-kit, which libmicrohttpd.a needs through libgnutls.a, so a static
# link cannot be done with Debian's packages (see README).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUTPUT=${OUTPUT:-build}
out=${1:?usage: $0 OUT.cpio}

die() { echo "mkinitramfs: $*" >&2; exit 1; }

# What the suites need from the build; a missing one is an error, not a skip.
required=("$OUTPUT/voltrace" "$OUTPUT/tests/kata-peer")
for f in "${required[@]}"; do
	[ -x "$f" ] || die "$f missing: run 'make tests' first"
done
command -v busybox >/dev/null || die "busybox missing: apt-get install busybox-static"
busybox=$(command -v busybox)
ldd "$busybox" >/dev/null 2>&1 && die "$busybox is dynamic: install busybox-static"

mkdir -p "$(dirname "$out")"
root=$(mktemp -d "$(dirname "$out")/root.XXXXXX")
trap 'rm -rf "$root"' EXIT

# Debian 12 is merged-/usr: keep the same shape so ldd's paths resolve.
mkdir -p "$root"/usr/{bin,sbin,lib,lib64} "$root"/{dev,proc,sys,tmp,run,root,etc,src,var/lib}
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done

# add_file HOSTPATH: copy a file's content to the same path in the image.
add_file() {
	local dst=$root$1
	[ -e "$dst" ] && return 0
	mkdir -p "$(dirname "$dst")"
	cp -L "$1" "$dst"
}

# ELF_LIBS FILE...: the shared libraries and loader the files need.
elf_libs() {
	ldd "$@" 2>/dev/null |
		awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
		sort -u
}

# add_elf HOSTPATH [DEST]: a program plus its libraries.
add_elf() {
	local src=$1 dst=${2:-$1} lib
	mkdir -p "$(dirname "$root$dst")"
	[ -e "$root$dst" ] || cp -L "$src" "$root$dst"
	for lib in $(elf_libs "$src"); do add_file "$lib"; done
}

# Host tools: whole packages the scripts are written against, then single
# commands. Absent optional ones are left out (busybox may cover them).
pkg_bins() {
	dpkg -L "$@" 2>/dev/null | grep -E '^/(usr/)?s?bin/[^/]+$' || true
}
tools=$(pkg_bins coreutils findutils diffutils grep sed procps)
for c in bash awk ip ss bpftool setsid flock unshare nsenter mountpoint \
	getopt xxd hexdump jq curl strace; do
	p=$(command -v "$c" 2>/dev/null || true)
	[[ $p == /* ]] && tools+=$'\n'$p
done
for t in $tools; do
	[ -f "$t" ] || continue
	# Debian's /bin and /usr/bin are one directory: install under /usr.
	d=/usr/${t#/usr/}
	[ -e "$root$d" ] && continue
	if ldd "$t" >/dev/null 2>&1; then
		add_elf "$t" "$d"
	else
		mkdir -p "$(dirname "$root$d")"
		cp -L "$t" "$root$d"
	fi
done

# busybox for everything else, never shadowing a real tool.
cp "$busybox" "$root/usr/bin/busybox"
for a in $("$busybox" --list); do
	[ "$a" = busybox ] && continue
	found=
	for d in usr/sbin usr/bin; do
		[ -e "$root/$d/$a" ] && found=1
	done
	[ -n "$found" ] || ln -s busybox "$root/usr/bin/$a"
done
# /bin/sh is busybox ash, as on minimal systems; the suites run under bash.
ln -sf busybox "$root/usr/bin/sh"

# The project: same layout as the repository, under /src.
mkdir -p "$root/src/build/tests"
cp -a tests "$root/src/"
for f in "$OUTPUT"/voltrace "$OUTPUT"/*.bpf.o "$OUTPUT"/tests/kata-peer \
	"$OUTPUT"/tests/tools/*; do
	[ -f "$f" ] || continue
	add_elf "$f" "/src/build/${f#"$OUTPUT"/}"
done

install -m 0755 tests/vm/init "$root/init"
cat > "$root/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/bash
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
PW
cat > "$root/etc/group" <<'GR'
root:x:0:
nogroup:x:65534:
GR
printf '127.0.0.1 localhost\n::1 localhost\n' > "$root/etc/hosts"
printf 'passwd: files\ngroup: files\nhosts: files\n' > "$root/etc/nsswitch.conf"

(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$out.tmp"
mv "$out.tmp" "$out"
echo "# initramfs $out: $(($(stat -c %s "$out") / 1048576)) MiB" >&2
