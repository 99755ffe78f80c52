#!/bin/bash
# Run one command inside a throw-away QEMU VM booted with the patched kernel.
#
# usage: vm-run.sh [options] -- CMD [ARGS...]
#
#   --kernel BZIMAGE  kernel to boot (default: $GPUD_VM_KERNEL, else the image
#                     build-kernel.sh --print-path finds for --flavour)
#   --flavour F       vm (default), debug or kasan, when looking up the kernel
#   --timeout S       kill the VM after S seconds (default 300)
#   --mem MB          guest memory (default 2048)
#   --append ARGS     extra kernel command line
#   --env NAME[=VAL]  pass NAME (with VAL, or its current value) to CMD
#   --rw DIR          make host DIR writable in the guest (repeatable)
#                     (the project tree, the build dir and the working dir,
#                     when they lie under /tmp, /var/tmp, /run or /dev/shm,
#                     which the guest's tmpfs would hide, are shared
#                     read-only on their own)
#   --build-dir DIR   the build tree CMD's binaries and libraries come from
#                     (gpud_add_vm_test passes CMake's binary dir): shared
#                     whole when the guest's tmpfs would hide it
#   --allow REGEX     kernel log lines matching REGEX are not failures
#                     (for tests that trigger a WARN on purpose)
#   --log FILE        also keep the guest console log in FILE
#   --console         copy the guest console to stderr as it arrives
#
# Environment: GPUD_VM_KERNEL, GPUD_VM_FLAVOUR (as the options),
# GPUD_VM_P9CACHE (9p cache mode of the host root, default loose),
# GPUD_VM_ACCEL (default tcg), GPUD_VM_KEEP=1 (keep a failed run's dir).
#
# The guest sees the host's / read-only (tmpfs on /tmp, /var/tmp, /run,
# /dev/shm), runs CMD as root in the caller's current directory with
# GPUD_IN_VM=1 and the caller's PATH, locale, LD_LIBRARY_PATH, HOME and
# GPUD_*, NCCL_*, CUDA_*, NETIF, *SAN_OPTIONS, GTEST_* variables, and
# streams CMD's stdout+stderr to our stdout.
#
# Exit status: CMD's (77 = skipped), or non-zero when the kernel log shows a
# panic, WARNING, BUG, lockdep/RCU report, refcount or memory-checker report,
# or a page_pool leak — even if CMD passed; 124 when the VM timed out; 77
# when no kernel is built or qemu is missing, and 77 when CMD, or an
# executable named in its arguments, is missing in the guest or its shared
# libraries do not resolve there (a tree the guest cannot see: a skip that
# names what is missing, never a loader error).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() { echo "vm-run.sh: error: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }

kernel=${GPUD_VM_KERNEL:-}
flavour=${GPUD_VM_FLAVOUR:-vm}
timeout=300
mem=2048
append=
log_file=
console=0
envs=()
rw_dirs=()
build_dir=
allow=()
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=${2:?}; shift 2 ;;
	--flavour) flavour=${2:?}; shift 2 ;;
	--timeout) timeout=${2:?}; shift 2 ;;
	--mem) mem=${2:?}; shift 2 ;;
	--append) append="$append ${2:?}"; shift 2 ;;
	--env) envs+=("${2:?}"); shift 2 ;;
	--rw) rw_dirs+=("$(cd "${2:?}" && pwd -P)") || die "--rw: no directory $2"; shift 2 ;;
	--build-dir) build_dir=$(cd "${2:?}" && pwd -P) || die "--build-dir: no directory $2"; shift 2 ;;
	--allow) allow+=("${2:?}"); shift 2 ;;
	--log) log_file=${2:?}; shift 2 ;;
	--console) console=1; shift ;;
	-h|--help) sed -n '2,44s/^# \{0,1\}//p' "$0"; exit 0 ;;
	--) shift; break ;;
	*) die "unknown option '$1' (see --help; the command goes after --)" ;;
	esac
done
[ $# -gt 0 ] || die "no command given (vm-run.sh [options] -- CMD [ARGS...])"
case $timeout in ''|*[!0-9]*) die "--timeout wants seconds, got '$timeout'" ;; esac

qemu=$(command -v qemu-system-x86_64 || true)
[ -n "$qemu" ] || skip "qemu-system-x86_64 not found; run: apt-get install qemu-system-x86"

if [ -z "$kernel" ]; then
	hint=
	[ "$flavour" = vm ] || hint=" --flavour $flavour"
	kernel=$("$HERE/build-kernel.sh" --flavour "$flavour" --print-path 2>/dev/null) ||
		skip "patched kernel not built; run kernel-patches/scripts/build-kernel.sh$hint"
fi
[ -r "$kernel" ] || die "kernel image $kernel not readable"

# Per-run state; share/ is the guest's writable /run/gpud-vm. The console log
# stays outside it so the guest cannot rewrite what we scan.
run=$(mktemp -d "${TMPDIR:-/tmp}/gpud-vm.XXXXXX")
share=$run/share
mkdir "$share"
qpid=
tpids=()
# GPUD_VM_KEEP=1 keeps a failed run's dir (console, dmesg, cmd.sh) for a
# post-mortem; by default every run dir is removed.
keep_run=0
# shellcheck disable=SC2317  # reached through the traps
cleanup() {
	if [ -n "$qpid" ]; then kill "$qpid" 2>/dev/null || true; fi
	for p in "${tpids[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ "$keep_run" = 1 ] && [ "${GPUD_VM_KEEP:-0}" = 1 ]; then
		rm -f "$run/initramfs.cpio"
		echo "vm-run.sh: run dir kept for inspection: $run" >&2
	else
		rm -rf "$run"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$HERE/mkinitramfs.sh" "$run/initramfs.cpio"

# --- the command, as a script the guest's /bin/sh runs -----------------------
# Single-quote a value for POSIX sh (the guest runs the host's dash).
shq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

pass_env() {
	local name
	for name in PATH HOME USER LOGNAME LANG LANGUAGE TZ LD_LIBRARY_PATH NETIF \
		$(compgen -e | grep -E '^(LC_[A-Z_]+|GPUD_[A-Za-z0-9_]+|NCCL_[A-Za-z0-9_]+|CUDA_[A-Za-z0-9_]+|[A-Z]SAN_OPTIONS|GTEST_[A-Z_]+)$' || true); do
		[ -n "${!name+x}" ] || continue
		# vm-run's own knobs mean nothing inside.
		case $name in GPUD_VM_*) continue ;; esac
		echo "export $name=$(shq "${!name}")"
	done
	for e in "${envs[@]}"; do
		case $e in
		*=*) echo "export ${e%%=*}=$(shq "${e#*=}")" ;;
		*) [ -n "${!e+x}" ] && echo "export $e=$(shq "${!e}")" ;;
		esac
	done
}

# The executables CMD names, as absolute host paths: its first word (looked
# up in PATH) and every word of its arguments that contains a '/' and is an
# executable file here (a binary handed to a wrapper, or inside `sh -c`).
# The guest checks that it sees each of them and their shared libraries.
cmd_executables() {
	local f w
	f=$(command -v -- "$1" 2>/dev/null || true)
	[ -n "$f" ] && abs_exe "$f"
	shift
	printf '%s\n' "$@" | tr -s " \t;&|=:'\"()" '\n' | while IFS= read -r w; do
		case $w in */*) abs_exe "$w" ;; esac
	done
}
abs_exe() {
	[ -f "$1" ] && [ -x "$1" ] || return 0
	printf '%s/%s\n' "$(cd "$(dirname "$1")" && pwd -P)" "$(basename "$1")"
}

# Guest side of that check, in the guest's /bin/sh (the host's dash). A
# tree the guest cannot see makes the loader fail with "error while loading
# shared libraries" (127): say which file or library is missing and skip.
# shellcheck disable=SC2016  # expanded by the guest's shell
guest_check='
vm_check() {
	for f in "$@"; do
		if [ ! -f "$f" ] || [ ! -x "$f" ]; then
			echo "SKIP: vm-run.sh: $f is not visible in the guest$vm_hint"
			exit 77
		fi
		command -v ldd >/dev/null 2>&1 || continue
		miss=$(ldd "$f" 2>/dev/null | sed -n "s/^[[:space:]]*\([^[:space:]]*\) => not found.*/\1/p" | tr "\n" " ")
		if [ -n "$miss" ]; then
			echo "SKIP: vm-run.sh: $f: shared libraries not found in the guest: ${miss% }$vm_hint"
			exit 77
		fi
	done
}
vm_hint=" (the guest sees the host root with tmpfs over /tmp, /var/tmp, /run and /dev/shm; a tree there needs vm-run.sh --build-dir DIR or --rw DIR)"'

cwd=$(pwd -P)
mapfile -t check_files < <(cmd_executables "$@" | awk '!seen[$0]++')
{
	echo "# generated by vm-run.sh"
	pass_env
	echo "export GPUD_IN_VM=1"
	echo "cd $(shq "$cwd") || { echo 'vm-run.sh: cannot cd to '$(shq "$cwd")' in the guest' >&2; exit 125; }"
	if [ ${#check_files[@]} -gt 0 ]; then
		echo "$guest_check"
		printf 'vm_check'
		for f in "${check_files[@]}"; do printf ' %s' "$(shq "$f")"; done
		echo
	fi
	printf 'exec'
	for a in "$@"; do printf ' %s' "$(shq "$a")"; done
	echo
} >"$share/cmd.sh"

nonce=$(od -An -tx8 -N8 /dev/urandom | tr -d ' \n')
echo "$nonce" >"$share/nonce"
: >"$share/output"

virtfs=(-virtfs "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap"
	-virtfs "local,path=$share,mount_tag=gpudrun,security_model=none")
# The guest's tmpfs mounts hide the host's /tmp, /var/tmp, /run and
# /dev/shm: a tree there (a clone under /tmp, as CI may make, or a build dir
# of its own from `mktemp -d`) is shared on its own, read-only, unless --rw
# already covers it: the project root this script belongs to (tests run
# binaries and scripts from all over it), the build dir (the test binaries'
# shared libraries and helpers lie all over it, not only in the working
# dir) and the working dir; one that lies inside another is not shared
# twice. Listed first so that --rw dirs inside them are mounted on top.
# The tmpfs dirs themselves are never shared: that would hide the guest's
# writable /tmp.
hidden() {
	case $1/ in /tmp/?*|/var/tmp/?*|/run/?*|/dev/shm/?*) return 0 ;; esac
	return 1
}
inside() { # inside DIR PARENT...: DIR is one of the PARENTs or below one
	local d=$1 p
	shift
	for p in "$@"; do
		case $d/ in "$p"/*) return 0 ;; esac
	done
	return 1
}
project_root=$(cd "$HERE/../.." && pwd -P)
wanted=()
for d in "$project_root" ${build_dir:+"$build_dir"} "$cwd"; do
	hidden "$d" || continue
	inside "$d" ${rw_dirs[@]+"${rw_dirs[@]}"} && continue
	wanted+=("$d")
done
ro_shares=()
for d in ${wanted[@]+"${wanted[@]}"}; do
	inside "$d" ${ro_shares[@]+"${ro_shares[@]}"} && continue
	for p in "${wanted[@]}"; do
		[ "$p" != "$d" ] && inside "$d" "$p" && continue 2
	done
	ro_shares+=("$d")
done
i=0
for d in "${ro_shares[@]}"; do
	virtfs+=(-virtfs "local,path=$d,mount_tag=ro$i,security_model=none,readonly=on,multidevs=remap")
	echo "ro$i $d" >>"$share/mounts"
	i=$((i + 1))
done
i=0
for d in "${rw_dirs[@]}"; do
	virtfs+=(-virtfs "local,path=$d,mount_tag=rw$i,security_model=none,multidevs=remap")
	echo "rw$i $d" >>"$share/mounts"
	i=$((i + 1))
done

# Host-side accel: TCG unless told otherwise (KVM is not usable on the CI
# hosts this was written for; see shared/FACTS.md).
accel=${GPUD_VM_ACCEL:-tcg}
cmdline="console=ttyS0 panic=-1 oops=panic udmabuf.size_limit_mb=1024 gpud.vm=1"
cmdline="$cmdline gpud.p9cache=${GPUD_VM_P9CACHE:-loose}$append"
# tsc=reliable: the guest has no ACPI (so no HPET or PM timer), and its TSC
# sync check fails under TCG (each vCPU's TSC starts at its own reset), so
# the kernel falls back to jiffies and CLOCK_MONOTONIC moves in 4 ms steps:
# every timing a VM test logs (gpudctl agent bench, the ranks' start-up)
# came out in multiples of 4 ms. TCG reads one host clock for every vCPU:
# 14M cross-vCPU reads under a lock never saw it step back (2 boots).
# And the TSC's rate: under host load the guest's PIT calibration fails
# ("Unable to calibrate against PIT", "Marking TSC unstable due to could not
# calculate TSC khz": jiffies again). TCG's TSC is the host's, so where the
# host's "cpu MHz" is its TSC rate (constant_tsc, no cpufreq scaling it),
# hand that to the guest and skip the calibration.
host_tsc_khz() {
	grep -qw constant_tsc /proc/cpuinfo || return 0
	[ ! -e /sys/devices/system/cpu/cpu0/cpufreq ] || return 0
	awk -F: '/^cpu MHz/ { if ($2 > 100) printf "%d\n", $2 * 1000; exit }' /proc/cpuinfo
}
if [ "$accel" = tcg ]; then
	cmdline="$cmdline tsc=reliable"
	tsc_khz=$(host_tsc_khz || true)
	if [ -n "$tsc_khz" ]; then
		cmdline="$cmdline tsc_early_khz=$tsc_khz"
	fi
fi
# KASAN guests boot with 4-level paging. qemu's "-cpu max" offers LA57, and
# 6.12's identify_cpu() clears boot_cpu_data's capabilities while it probes
# them again: an interrupt in that window sees pgtable_l5_enabled() false,
# so KASAN takes the 5-level direct map (ff11...) for an address without
# shadow and reports a "wild-memory-access" in handle_edge_irq(). Seen in 3
# of ~14 boots of the kasan image, at 0.03-0.14 s, before any test ran.
if [ "$flavour" = kasan ] || [[ $kernel == */kasan-* ]]; then
	cmdline="$cmdline no5lvl"
fi

console_log=$run/console.log
: >"$console_log"
# sockets=2: without ACPI the kernel finds CPUs in SeaBIOS's MP table, which
# lists one CPU per package, so "-smp 2" (two cores, one socket) boots one.
# A TCG qemu that crashes itself (SIGSEGV/SIGABRT) while the guest is still
# booting, before the command wrote anything or reported a status, is not the
# command's result: CI once saw qemu segfault 0.5 s into boot. Boot once more
# then, and say so; a crash after the command started is never retried.
for boot in 1 2; do
	start=$(date +%s.%N)
	timeout -k 5 "$timeout" "$qemu" -machine q35 -accel "$accel" -cpu max -smp 2,sockets=2,cores=1,threads=1 -m "$mem" \
		-nodefaults -no-user-config -display none -no-reboot -monitor none \
		-serial "file:$console_log" \
		-kernel "$kernel" -initrd "$run/initramfs.cpio" -append "$cmdline" \
		"${virtfs[@]}" </dev/null >"$run/qemu.out" 2>&1 &
	qpid=$!

	# Stream the command's output (and optionally the console) while it runs.
	tail -n +1 -f --pid="$qpid" "$share/output" &
	tpids+=($!)
	if [ "$console" = 1 ]; then
		tail -n +1 -f --pid="$qpid" "$console_log" >&2 &
		tpids+=($!)
	fi

	qrc=0
	wait "$qpid" || qrc=$?
	qpid=
	for p in "${tpids[@]}"; do wait "$p" 2>/dev/null || true; done
	tpids=()
	if [ "$boot" = 1 ] && { [ "$qrc" = 139 ] || [ "$qrc" = 134 ]; } &&
		[ ! -s "$share/output" ] && [ ! -s "$share/status" ] &&
		! grep -q "^GPUD-VM-EXIT $nonce " "$console_log"; then
		echo "vm-run.sh: qemu crashed during boot (exit $qrc, nothing run yet); booting once more" >&2
		tail -n 5 "$console_log" >&2
		: >"$console_log"
		continue
	fi
	break
done
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
[ -n "$log_file" ] && cp "$console_log" "$log_file"

show_console() {
	echo "vm-run.sh: --- last lines of the guest console ---" >&2
	tail -n "${1:-40}" "$console_log" >&2
	echo "vm-run.sh: --- end of console ---" >&2
}

# --- the command's status -----------------------------------------------------
rc=
if [ -s "$share/status" ]; then
	rc=$(cat "$share/status")
else
	rc=$(sed -n "s/^GPUD-VM-EXIT $nonce \([0-9]*\).*/\1/p" "$console_log" | tail -n 1)
fi
if [ -z "$rc" ]; then
	keep_run=1
	if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
		echo "vm-run.sh: error: no end marker within ${timeout}s: VM killed (command hung or the guest is stuck)" >&2
		show_console
		exit 124
	fi
	echo "vm-run.sh: error: the VM stopped without the command's exit status (qemu exit $qrc)" >&2
	grep -h 'GPUD-VM-INIT-FAIL' "$console_log" >&2 || true
	cat "$run/qemu.out" >&2
	show_console
	exit 1
fi

# --- the kernel log -----------------------------------------------------------
# What a clean run never prints. KASAN/KFENCE reports start with "BUG:"; the
# bare words are not listed because KFENCE announces itself at boot.
bad_re='Kernel panic|WARNING:|BUG:|Oops: |general protection fault|'
bad_re+='possible circular locking|possible recursive locking|inconsistent lock state|'
bad_re+='suspicious RCU usage|possible irq lock inversion|bad unlock balance|'
bad_re+='lock held when returning|detected stalls|INFO: task .* blocked|'
bad_re+='refcount_t:|UBSAN:|unreferenced object|stalled pool shutdown|page_pool.*leak|'
bad_re+='kernel BUG|list_(add|del) corruption|Call Trace:'
bad=$(cat "$console_log" "$share/dmesg" 2>/dev/null | tr -d '\r' |
	grep -E "$bad_re" | awk '!seen[$0]++' || true)
for re in "${allow[@]}"; do
	bad=$(printf '%s\n' "$bad" | grep -Ev -- "$re" || true)
done
if [ -n "$bad" ]; then
	keep_run=1
	echo "vm-run.sh: FAIL: the guest kernel reported problems (command exit $rc):" >&2
	printf '%s\n' "$bad" | head -n 40 | sed 's/^/    /' >&2
	show_console 80
	# A passing or skipped command must not hide a kernel problem.
	case $rc in 0|77) exit 1 ;; *) exit "$rc" ;; esac
fi

# The clock behind every time the command measured: under TCG it should be
# tsc (tsc=reliable and tsc_early_khz above); jiffies means 4 ms steps, so
# say so next to the numbers.
cs=$(cat "$console_log" "$share/dmesg" 2>/dev/null | tr -d '\r' |
	sed -n 's/.*clocksource: Switched to clocksource \([a-z0-9-]*\).*/\1/p' |
	tail -n 1 || true)
if [ "$accel" = tcg ] && [ -n "$cs" ] && [ "${cs%-early}" != tsc ]; then
	echo "vm-run.sh: note: the guest's clock was $cs, not tsc: times measured in it" \
		"move in jiffies (4 ms steps)" >&2
fi
[ -n "${GPUD_VM_QUIET:-}" ] ||
	printf 'vm-run.sh: command exited %s; VM wall time %.1f s\n' "$rc" "$elapsed" >&2
exit "$rc"
