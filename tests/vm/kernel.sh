#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/vm/kernel.sh PACKAGE
#
# Make one Debian kernel available to the VM suite without installing it:
# resolve a meta-package (linux-image-amd64, linux-image-6.12-amd64, ...) to
# the concrete linux-image-<release> package, `apt-get download` it into
# $OUTPUT/vm-cache/debs, unpack it with `dpkg -x` and keep only boot/.
# Prints the kernel directory (vmlinuz, config, release, version) on stdout;
# progress goes to stderr. Both the .deb and the unpacked kernel are cached,
# so a second run needs no network; when apt's lists cannot resolve a
# meta-package (offline, no `apt-get update`), the last resolution is reused.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUTPUT=${OUTPUT:-build}
cache=$OUTPUT/vm-cache
want=${1:?usage: $0 PACKAGE}

die() { echo "kernel.sh: $want: $*" >&2; exit 1; }

mkdir -p "$cache/debs" "$cache/kernels" "$cache/resolved"

# A meta-package depends on exactly one linux-image-<release> package.
pkg=$(apt-cache depends "$want" 2>/dev/null |
	awk '/Depends: linux-image-[0-9]/ { print $2; exit }' || true)
if [ -n "$pkg" ]; then
	echo "$pkg" > "$cache/resolved/$want"
elif [[ $want == linux-image-[0-9]* ]]; then
	pkg=$want
elif [ -s "$cache/resolved/$want" ]; then
	pkg=$(cat "$cache/resolved/$want")
	echo "# $want: apt cannot resolve it now, using cached $pkg" >&2
else
	die "cannot resolve to a linux-image-<release> package (run apt-get update?)"
fi

kdir=$cache/kernels/$pkg
if [ ! -s "$kdir/vmlinuz" ]; then
	deb=$(ls "$cache/debs/${pkg}"_*.deb 2>/dev/null | tail -n 1 || true)
	if [ -z "$deb" ]; then
		echo "# downloading $pkg" >&2
		# apt's sandbox user cannot write into the build tree; the
		# download itself is the ordinary apt client.
		(cd "$cache/debs" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) ||
			die "apt-get download $pkg failed"
		deb=$(ls "$cache/debs/${pkg}"_*.deb 2>/dev/null | tail -n 1 || true)
		[ -n "$deb" ] || die "apt-get download left no ${pkg}_*.deb"
	fi
	tmp=$(mktemp -d "$cache/kernels/.unpack.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	dpkg -x "$deb" "$tmp/root" || die "dpkg -x $deb failed"
	vmlinuz=$(ls "$tmp"/root/boot/vmlinuz-* 2>/dev/null | head -n 1 || true)
	[ -n "$vmlinuz" ] || die "$deb holds no boot/vmlinuz-*"
	release=${vmlinuz##*/vmlinuz-}
	mkdir -p "$tmp/k"
	cp "$vmlinuz" "$tmp/k/vmlinuz"
	cp "$tmp/root/boot/config-$release" "$tmp/k/config" 2>/dev/null || true
	echo "$release" > "$tmp/k/release"
	dpkg-deb -f "$deb" Version > "$tmp/k/version"
	rm -rf "$kdir"
	mv "$tmp/k" "$kdir"
fi
echo "# kernel $pkg $(cat "$kdir/version") (release $(cat "$kdir/release"))" >&2
echo "$kdir"
