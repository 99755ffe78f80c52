#!/bin/bash
# Build the test-VM kernel: Debian's linux-source-6.12 + our patch series +
# tinyconfig + the config fragment(s) in kernel-patches/config/.
#
# usage: build-kernel.sh [--flavour vm|debug|kasan] [--print-path] [--jobs N]
#
#   --flavour vm     tinyconfig + config/vm.config (default)
#   --flavour debug  vm + config/debug.config (KFENCE, lockdep, ...)
#   --flavour kasan  vm + config/kasan.config (generic inline KASAN)
#   --print-path     print the cached bzImage for the current series/config
#                    and exit 0, or exit 1 when it has not been built
#
# The series is kernel-patches/patches/[0-9][0-9][0-9][0-9]-*.patch without
# 0000-cover-letter.patch ($GPUD_KERNEL_SERIES names another dir).
#
# Cache: ${GPUD_KERNEL_CACHE:-/var/cache/gpudirect/kernel}
#   src/linux/           extracted source, a git tree: branch "base" is the
#                        pristine Debian tree, HEAD is base + series
#   build-<flavour>/     out-of-tree object dir, kept for incremental builds
#   images/<key>/        bzImage, .config and build log for one key
# The key hashes the script version, the flavour, the source package version,
# every series file (name and content) and every config fragment used, so
# any change to them builds a new image while old images stay usable.
#
# Progress: while it builds, a line on stderr every GPUD_KERNEL_PROGRESS_S
# seconds (default 60): elapsed time, stage, and kbuild steps (CC, LD, ...)
# done so far with the last one (make) or MiB written (extract, git commit).
set -euo pipefail

# Bump when a change to this script changes what it builds.
SCRIPT_VERSION=1

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KP_DIR=$(dirname "$HERE")
# GPUD_KERNEL_SERIES: build another series dir (a work-in-progress export).
PATCH_DIR=${GPUD_KERNEL_SERIES:-$KP_DIR/patches}
CONFIG_DIR=$KP_DIR/config
CACHE_ROOT=${GPUD_KERNEL_CACHE:-/var/cache/gpudirect/kernel}
SRC_PKG=linux-source-6.12
SRC_TAR=/usr/src/linux-source-6.12.tar.xz

# Options the tests cannot do without. Checked after olddefconfig because
# merge_config.sh only warns when a dependency silently drops one.
REQUIRED=(NET_DEVMEM UDMABUF DMA_SHARED_BUFFER NETDEVSIM PAGE_POOL NET_NS
	  9P_FS NET_9P NET_9P_VIRTIO VIRTIO_PCI PCI DEVTMPFS TMPFS SHMEM
	  BLK_DEV_INITRD SERIAL_8250_CONSOLE MAGIC_SYSRQ DEBUG_FS INET IPV6
	  UNIX PROC_FS SYSFS BINFMT_ELF BINFMT_SCRIPT MEMFD_CREATE)

die() { echo "build-kernel.sh: error: $*" >&2; exit 1; }
log() { echo "build-kernel.sh: $*" >&2; }

flavour=vm
print_path=0
jobs=$(nproc)
while [ $# -gt 0 ]; do
	case $1 in
	--flavour) flavour=${2:?--flavour needs vm, debug or kasan}; shift 2 ;;
	--flavour=*) flavour=${1#*=}; shift ;;
	--print-path) print_path=1; shift ;;
	--jobs|-j) jobs=${2:?}; shift 2 ;;
	-h|--help) sed -n '2,29s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
done

fragments=("$CONFIG_DIR/vm.config")
case $flavour in
vm) ;;
debug) fragments+=("$CONFIG_DIR/debug.config") ;;
kasan) fragments+=("$CONFIG_DIR/kasan.config") ;;
*) die "unknown flavour '$flavour' (vm, debug or kasan)" ;;
esac
for f in "${fragments[@]}"; do
	[ -r "$f" ] || die "config fragment $f is missing"
done

# The series: 0001-*.patch ... in order; the cover letter carries no diff.
series=()
if [ -d "$PATCH_DIR" ]; then
	while IFS= read -r p; do
		series+=("$p")
	done < <(find "$PATCH_DIR" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' \
			! -name '0000-*' | LC_ALL=C sort)
fi

src_version() {
	dpkg-query -W -f='${Version}' "$SRC_PKG" 2>/dev/null || echo unknown
}

# Hash of everything that decides the image's content. File names go in too,
# so reordering or renaming patches changes the key.
compute_key() {
	{
		echo "script $SCRIPT_VERSION flavour $flavour source $(src_version)"
		for f in "${series[@]}" "${fragments[@]}"; do
			echo "file $(basename "$f")"
			cat "$f"
		done
	} | sha256sum | cut -c1-16
}

key=$(compute_key)
img_dir=$CACHE_ROOT/images/$flavour-$key

if [ "$print_path" = 1 ]; then
	[ -s "$img_dir/bzImage" ] || exit 1
	echo "$img_dir/bzImage"
	exit 0
fi

if [ -s "$img_dir/bzImage" ]; then
	log "reusing $img_dir/bzImage (key $key)"
	echo "$img_dir/bzImage"
	exit 0
fi

for tool in make gcc flex bison bc git tar xz; do
	command -v "$tool" >/dev/null || die "'$tool' not found; apt-get install build-essential flex bison bc git xz-utils libelf-dev libssl-dev"
done

if [ ! -r "$SRC_TAR" ]; then
	[ "$(id -u)" = 0 ] || die "$SRC_TAR missing; run: sudo apt-get install $SRC_PKG"
	log "installing $SRC_PKG"
	apt-get install -y "$SRC_PKG" >&2 || die "apt-get install $SRC_PKG failed"
fi

mkdir -p "$CACHE_ROOT" || die "cannot create $CACHE_ROOT (set GPUD_KERNEL_CACHE to a writable dir)"
# One build at a time per cache: the source tree and build dirs are shared.
exec 9>"$CACHE_ROOT/lock"
if ! flock -n 9; then
	log "waiting for another build of this cache ($CACHE_ROOT/lock)"
	flock 9
fi

# --- progress ---------------------------------------------------------------
# The long stages (extract ~1-2 min, make ~5-10 min) print nothing of their
# own, and a silent CI log looks hung; one line per object would flood it. A
# ticker prints one line every GPUD_KERNEL_PROGRESS_S (default 60) seconds:
# total and stage time, the stage, and what moved (objects built so far and
# the last one, or MiB written). It only reads: statuses and logs are as
# without it.
progress_s=${GPUD_KERNEL_PROGRESS_S:-60}
case $progress_s in ''|*[!0-9]*|0) die "GPUD_KERNEL_PROGRESS_S wants seconds > 0, got '$progress_s'" ;; esac
stage_file=$(mktemp "${TMPDIR:-/tmp}/gpud-kbuild-stage.XXXXXX")
ticker_pid=
stop_ticker() {
	if [ -n "$ticker_pid" ]; then
		kill "$ticker_pid" 2>/dev/null || true
		wait "$ticker_pid" 2>/dev/null || true
		ticker_pid=
	fi
}
# shellcheck disable=SC2317  # reached through the trap
on_exit() { stop_ticker; rm -f "$stage_file"; }
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# stage NAME [log FILE | dir DIR]: what the ticker reports from now on.
stage() {
	printf '%s\t%s\t%s\t%s\n' "$(date +%s)" "$1" "${2:-}" "${3:-}" >"$stage_file.new"
	mv "$stage_file.new" "$stage_file"
}
mmss() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
moved() { # moved log FILE | dir DIR
	case $1 in
	log) [ -r "$2" ] && awk '/^  [A-Z][A-Z0-9_]+ /{ n++; l = $0 }
		END { if (n) { gsub(/ +/, " ", l); printf "%d steps done, last:%s", n, l } }' "$2" ;;
	dir) [ -d "$2" ] && printf '%s MiB written' "$(du -sm "$2" 2>/dev/null | cut -f1)" ;;
	esac
	return 0
}
ticker() {
	local t0 main=$1 since name kind path now what sleeper=
	t0=$(date +%s)
	# shellcheck disable=SC2317  # reached through the trap
	trap '[ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null; exit 0' TERM
	while :; do
		# The sleeper's fds to /dev/null: should it outlive us, it must not
		# keep a caller's pipe (CI's tee, $(...)) open.
		sleep "$progress_s" >/dev/null 2>&1 &
		sleeper=$!
		wait "$sleeper" || exit 0
		sleeper=
		kill -0 "$main" 2>/dev/null || exit 0
		IFS=$'\t' read -r since name kind path <"$stage_file" || continue
		now=$(date +%s)
		what=$(moved "$kind" "$path")
		log "[$(mmss $((now - t0)))] $name ($(mmss $((now - since))) in this stage)${what:+: $what}"
	done
}
stage "waiting to start"
# 9>&-: the ticker (and its sleeper) must not hold the cache lock.
ticker $$ </dev/null >/dev/null 9>&- &
ticker_pid=$!

src=$CACHE_ROOT/src/linux
git_q() { git -C "$src" -c user.name=gpud-build -c user.email=gpud-build@localhost "$@"; }

# Extract once per source package version; a new Debian upload starts over.
want_src="$(src_version) $SRC_TAR"
if [ "$(cat "$CACHE_ROOT/src/.source" 2>/dev/null)" != "$want_src" ]; then
	log "extracting $SRC_TAR (once per source version; ~1-2 min)"
	stage "extract $(basename "$SRC_TAR")" dir "$CACHE_ROOT/src.tmp"
	rm -rf "$CACHE_ROOT/src" "$CACHE_ROOT"/build-*
	mkdir -p "$CACHE_ROOT/src.tmp"
	tar -C "$CACHE_ROOT/src.tmp" -xf "$SRC_TAR"
	mv "$CACHE_ROOT/src.tmp/$SRC_PKG" "$CACHE_ROOT/src.tmp/linux"
	mv "$CACHE_ROOT/src.tmp" "$CACHE_ROOT/src"
	log "committing the pristine tree as branch base"
	stage "git commit of the pristine tree" dir "$src/.git"
	git -C "$src" init -q -b base
	# Debian's top-level .gitignore ignores "/*": without -f nothing is
	# added and git am later fails on every file.
	git -C "$src" add -f -A
	git_q commit -q -m "Debian $SRC_PKG $(src_version)"
	echo "$want_src" >"$CACHE_ROOT/src/.source"
fi

# (Re)apply the series only when it changed, so an unchanged tree keeps its
# timestamps and make rebuilds nothing; a changed series resets to base and
# reapplies, touching only the files the patches touch.
series_key=$(cat "${series[@]}" /dev/null | sha256sum | cut -c1-16)
if [ "$(cat "$CACHE_ROOT/src/.series" 2>/dev/null)" != "$series_key" ]; then
	rm -f "$CACHE_ROOT/src/.series"
	stage "applying the series (${#series[@]} patches)"
	git_q am --abort >/dev/null 2>&1 || true
	git_q checkout -q -B patched base
	git_q clean -q -fdx
	for p in "${series[@]}"; do
		if ! git_q am -q --whitespace=nowarn "$p" >&2; then
			git_q am --abort >/dev/null 2>&1 || true
			die "patch $(basename "$p") does not apply to $SRC_PKG $(src_version)"
		fi
	done
	echo "$series_key" >"$CACHE_ROOT/src/.series"
	log "applied ${#series[@]} patch(es)"
fi

build=$CACHE_ROOT/build-$flavour
mkdir -p "$build"
mk() { make -C "$src" O="$build" -s "$@"; }

start=$(date +%s)
log "configuring ($flavour): tinyconfig + ${fragments[*]##*/}"
stage "configure ($flavour)"
mk tinyconfig >/dev/null
# -m: merge only, olddefconfig below resolves dependencies.
"$src/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" \
	"${fragments[@]}" >"$build/merge.log" 2>&1 ||
	die "merge_config.sh failed; see $build/merge.log"
mk olddefconfig

# Every CONFIG_X=y a fragment asks for must survive, plus the REQUIRED list,
# and every "# CONFIG_X is not set" must stay off. A later fragment
# overrides an earlier one, as in merge_config.sh (kasan.config turns off
# what vm.config adds for tests that flavour does not run).
declare -A want=()
for opt in "${REQUIRED[@]}"; do
	want[$opt]=y
done
while read -r opt val; do
	want[$opt]=$val
done < <(sed -n -e 's/^CONFIG_\([A-Za-z0-9_]*\)=y$/\1 y/p' \
		-e 's/^# CONFIG_\([A-Za-z0-9_]*\) is not set$/\1 n/p' "${fragments[@]}")
missing=()
for opt in "${!want[@]}"; do
	if [ "${want[$opt]}" = y ]; then
		grep -qx "CONFIG_$opt=y" "$build/.config" || missing+=("CONFIG_$opt")
	elif grep -qx "CONFIG_$opt=[ym]" "$build/.config"; then
		missing+=("CONFIG_$opt (wanted off)")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	printf 'build-kernel.sh: error: not as the fragments ask after olddefconfig (a dependency missing?): %s\n' \
		"${missing[@]}" >&2
	die "fix kernel-patches/config/*.config; see $build/.config"
fi

log "building bzImage with make -j$jobs (tinyconfig-based: ~5-6 min on 2 cores; progress every ${progress_s} s)"
stage "make -j$jobs bzImage ($flavour)" log "$build/build.log"
if ! make -C "$src" O="$build" -j"$jobs" bzImage >"$build/build.log" 2>&1; then
	stop_ticker
	tail -n 40 "$build/build.log" >&2
	die "kernel build failed; full log in $build/build.log"
fi
stop_ticker
log "built in $(( $(date +%s) - start )) s"

# Publish atomically so a concurrent --print-path never sees half an image.
mkdir -p "$CACHE_ROOT/images"
tmp=$(mktemp -d "$CACHE_ROOT/images/.new.XXXXXX")
cp "$build/arch/x86/boot/bzImage" "$build/.config" "$build/build.log" "$tmp/"
printf '%s\n' "${series[@]##*/}" >"$tmp/series"
rm -rf "$img_dir"
mv "$tmp" "$img_dir"
# Keep the newest few images per flavour (switching branches back and forth
# then costs nothing); each is ~3 MiB plus its build log.
# shellcheck disable=SC2012  # our own dir names: no odd characters
ls -1dt "$CACHE_ROOT/images/$flavour"-* | tail -n +6 | xargs -r rm -rf
echo "$img_dir/bzImage"
