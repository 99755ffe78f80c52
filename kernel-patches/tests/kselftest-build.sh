#!/bin/bash
# Builds the net selftests' ncdevmem from the patched kernel tree that
# build-kernel.sh leaves in its cache (src/linux, branch `patched`) into
# OUTDIR, for the kselftest_netdevsim_devmem VM test (kselftest.cmake).
# The uapi headers come from that tree too (Debian 12's are 6.1's), made
# out of tree so the cached source stays clean for build-kernel.sh; the
# YNL library builds inside tools/net/ynl, as the selftests' ynl.mk does.
#
# usage: kselftest-build.sh OUTDIR
# Exit: 0 built, 77 the tree lacks the series' kselftest, 1 build failed.
set -euo pipefail

out=${1:?usage: kselftest-build.sh OUTDIR}
src=${GPUD_KERNEL_SRC:-${GPUD_KERNEL_CACHE:-/var/cache/gpudirect/kernel}/src/linux}
test=tools/testing/selftests/drivers/net/netdevsim/devmem.sh

if [ ! -f "$src/$test" ]; then
	echo "SKIP: $src/$test missing: build the series first" \
	     "(kernel-patches/scripts/build-kernel.sh; patch 0014 adds it)"
	exit 77
fi
mkdir -p "$out"
start=$SECONDS
make -s -C "$src" O="$out/hobj" headers
make -s -C "$src/tools/testing/selftests/net" OUTPUT="$out" \
	KHDR_INCLUDES="-isystem $out/hobj/usr/include" "$out/ncdevmem"
echo "kselftest-build.sh: $out/ncdevmem built from $src in $((SECONDS - start)) s"
