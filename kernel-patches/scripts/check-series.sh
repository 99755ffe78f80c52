#!/bin/bash
# Review checks of the patch series, as netdev's maintainers run them:
# every patch checkpatch --strict clean, and every prefix of the series
# building (W=1, warnings are errors) the directories the series touches.
#
# usage: check-series.sh [--no-build] [--jobs N]
#
# Needs the source tree build-kernel.sh extracted (run it once first); works
# in a clone of it under $GPUD_KERNEL_CACHE/check/ so the cached tree and its
# object dirs are left alone. Objects are kept in check/obj/ between runs (a
# second run rebuilds only what the patches touch).
#
# The tree is Debian's, without upstream history, so checkpatch reports a
# Fixes: tag naming an upstream commit as "Unknown commit id": that warning
# is expected, said once per patch and not counted. A build warning counts
# when it is in a file the series touched so far (6.12 itself is not W=1
# clean everywhere).
#
# Exit: 0 all clean, 1 otherwise (each failing patch named).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KP_DIR=$(dirname "$HERE")
PATCH_DIR=${GPUD_KERNEL_SERIES:-$KP_DIR/patches}
CACHE_ROOT=${GPUD_KERNEL_CACHE:-/var/cache/gpudirect/kernel}
build=1
jobs=$(nproc)

die() { echo "check-series.sh: error: $*" >&2; exit 1; }
log() { echo "check-series.sh: $*" >&2; }

while [ $# -gt 0 ]; do
	case $1 in
	--no-build) build=0; shift ;;
	--jobs|-j) jobs=${2:?}; shift 2 ;;
	-h|--help) sed -n '2,20s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
done

src=$CACHE_ROOT/src/linux
[ -d "$src/.git" ] || die "$src missing; run kernel-patches/scripts/build-kernel.sh first"
git -C "$src" rev-parse -q --verify base >/dev/null || die "$src has no branch base"

mapfile -t series < <(find "$PATCH_DIR" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' \
			! -name '0000-*' | LC_ALL=C sort)
[ ${#series[@]} -gt 0 ] || die "no patches in $PATCH_DIR"

work=$CACHE_ROOT/check
tree=$work/linux
obj=$work/obj
mkdir -p "$work"
if [ ! -d "$tree/.git" ]; then
	log "cloning $src (local, hard links)"
	git clone -q --no-checkout "$src" "$tree"
fi
g() { git -C "$tree" -c user.name=gpud-check -c user.email=gpud-check@localhost "$@"; }
# The clone has no local branch base: keep the fetched one as a ref of its own
g fetch -q -f "$src" base:refs/remotes/src/base
g checkout -q -f -B check src/base
g am --abort >/dev/null 2>&1 || true

# Each file PATCH adds lies in a directory with an "F:	DIR/*" or
# "F:	DIR/" line in the tree's MAINTAINERS.
new_files_maintained() {
	local f dir
	while read -r f; do
		dir=$(dirname "$f")
		grep -qxF -e "F:	$dir/*" -e "F:	$dir/" "$tree/MAINTAINERS" || return 1
	done < <(awk '/^diff --git /{f=$4; sub(/^b\//, "", f)} /^new file mode/{print f}' "$1")
}

failed=()
if [ "$build" = 1 ]; then
	mkdir -p "$obj"
	if [ ! -s "$obj/.config" ]; then
		# shellcheck disable=SC2012  # our own dir names
		cfg=$(ls -1t "$CACHE_ROOT"/images/vm-*/.config 2>/dev/null | head -n 1) ||
			true
		[ -n "$cfg" ] || die "no built vm image to take a .config from; run build-kernel.sh"
		cp "$cfg" "$obj/.config"
	fi
	make -C "$tree" O="$obj" -s olddefconfig
fi

n=0
for p in "${series[@]}"; do
	n=$((n + 1))
	name=$(basename "$p")
	out=$("$tree/scripts/checkpatch.pl" --strict --no-tree -q "$p" 2>&1 || true)
	real=$(printf '%s\n' "$out" | grep -E '^(ERROR|WARNING|CHECK):' |
	       grep -v "Unknown commit id" || true)
	if printf '%s\n' "$out" | grep -q "Unknown commit id"; then
		log "$name: checkpatch: names an upstream commit this tree lacks (expected)"
	fi
	# checkpatch asks about MAINTAINERS for every added file; excuse it
	# when each added file lies in a directory MAINTAINERS already lists.
	if printf '%s\n' "$real" | grep -q "does MAINTAINERS need updating" &&
	   new_files_maintained "$p"; then
		real=$(printf '%s\n' "$real" | grep -v "does MAINTAINERS need updating" || true)
		log "$name: checkpatch: new files lie in directories MAINTAINERS lists (expected)"
	fi
	if [ -n "$real" ]; then
		printf '%s\n' "$out" >&2
		failed+=("$name (checkpatch)")
	fi
	g am -q --whitespace=nowarn "$p" || { g am --abort || true; failed+=("$name (does not apply)"); break; }
	[ "$build" = 1 ] || continue
	# Only what the series touches, each prefix with warnings as errors.
	mapfile -t dirs < <(git -C "$tree" diff --name-only src/base HEAD -- '*.c' |
			    xargs -r -n1 dirname | sort -u)
	log "[$n/${#series[@]}] $name: building ${dirs[*]}"
	if ! make -C "$tree" O="$obj" -s -j"$jobs" W=1 \
		"${dirs[@]/%//}" >"$work/build-$n.log" 2>&1; then
		tail -n 30 "$work/build-$n.log" >&2
		failed+=("$name (build, $work/build-$n.log)")
		continue
	fi
	touched=$(git -C "$tree" diff --name-only src/base HEAD | paste -sd'|' | sed 's/\./\\./g')
	if grep -E "($touched):[0-9]+:[0-9]+: warning:" "$work/build-$n.log" >&2; then
		failed+=("$name (W=1 warning, $work/build-$n.log)")
	fi
done

if [ ${#failed[@]} -gt 0 ]; then
	printf 'check-series.sh: FAIL: %s\n' "${failed[@]}" >&2
	exit 1
fi
what="checkpatch --strict clean"
[ "$build" = 0 ] || what="$what and every prefix builds (W=1)"
log "all ${#series[@]} patches $what"
