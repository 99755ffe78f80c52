#!/bin/bash
# The exported ABI is deliberate: the GPUD_API declarations in the public
# header, the names in the version script and the dynamic symbols of the
# built library must be the same three sets.
set -euo pipefail
src=$1 lib=$2
hdr=$src/include/gpudirect/gpudirect.h
map=$src/libgpudirect.map
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Declarations may span lines: join, then pick "GPUD_API <type> name(".
tr '\n' ' ' <"$hdr" | grep -oE 'GPUD_API[^;(]*\(' |
	grep -oE 'gpud_[a-z0-9_]+ *\($' | tr -d ' (' | sort -u >"$tmp/header"
sed -n '/global:/,/local:/p' "$map" | grep -oE '^\s*gpud_[a-z0-9_]+;' |
	tr -d ' \t;' | sort -u >"$tmp/map"
nm -D --defined-only "$lib" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' |
	sort -u >"$tmp/dynsym"

rc=0
if ! diff -u "$tmp/header" "$tmp/map" >"$tmp/d1"; then
	echo "FAIL: header (GPUD_API) and libgpudirect.map differ:"; cat "$tmp/d1"; rc=1
fi
if ! diff -u "$tmp/map" "$tmp/dynsym" >"$tmp/d2"; then
	echo "FAIL: libgpudirect.map and the library's exported symbols differ:"; cat "$tmp/d2"; rc=1
fi
n=$(wc -l <"$tmp/header")
[ "$n" -gt 0 ] || { echo "FAIL: found no GPUD_API declarations in $hdr"; exit 1; }
[ $rc -eq 0 ] && echo "ok: $n exported functions agree in header, map and $lib"
exit $rc
