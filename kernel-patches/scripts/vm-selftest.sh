#!/bin/bash
# Smoke test of the test VM itself: run through vm-run.sh, it checks that the
# guest has what the devmem tests need (udmabuf, netdevsim, debugfs, netns)
# and that traffic crosses a linked netdevsim pair intact.
#
# usage: vm-run.sh -- kernel-patches/scripts/vm-selftest.sh
# Exit: 0 pass, 1 fail, 77 skip (not inside the VM).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PREFIX=gpudst
PORT=5301
failed=0

ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; failed=1; }
# expect WHAT CMD...: ok or FAIL for one check, without stopping.
expect() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}

if [ "${GPUD_IN_VM:-}" != 1 ]; then
	echo "SKIP: not in the test VM; run: kernel-patches/scripts/vm-run.sh -- $0"
	exit 77
fi

# shellcheck disable=SC2317  # reached through the trap
cleanup() {
	"$HERE/nsim-pair.sh" down "$PREFIX" || true
	if [ -n "${srv_pid:-}" ]; then kill "$srv_pid" 2>/dev/null || true; fi
	rm -f /tmp/gpudst.tx /tmp/gpudst.rx
}
trap cleanup EXIT

# --- what the kernel must offer --------------------------------------------
expect "/dev/udmabuf (CONFIG_UDMABUF)" test -c /dev/udmabuf
limit=$(cat /sys/module/udmabuf/parameters/size_limit_mb 2>/dev/null || echo '?')
# vm-run.sh raises the 64 MiB default so tests can bind realistic pools.
expect "udmabuf size_limit_mb is $limit, want 1024" test "$limit" = 1024
expect "/sys/bus/netdevsim (CONFIG_NETDEVSIM)" test -d /sys/bus/netdevsim
expect "debugfs with netdevsim" test -d /sys/kernel/debug/netdevsim
expect "writable /tmp" touch /tmp/gpudst.probe
rm -f /tmp/gpudst.probe
[ "$failed" = 0 ] || exit 1

# --- a linked pair ----------------------------------------------------------
if ! env_out=$("$HERE/nsim-pair.sh" up "$PREFIX" --queues 4); then
	bad "nsim-pair.sh up"
	exit 1
fi
eval "$env_out"
ok "nsim pair: $NSIM_NS_A/$NSIM_DEV_A($NSIM_IFINDEX_A) <-> $NSIM_NS_B/$NSIM_DEV_B($NSIM_IFINDEX_B)"
nq=$(ip netns exec "$NSIM_NS_A" ls /sys/class/net/"$NSIM_DEV_A"/queues | grep -c '^rx-' || true)
expect "rx queues: have $nq, want 4" test "$nq" = 4

# Debian has no ping binary here by default; the static busybox has one.
if command -v ping >/dev/null; then ping=(ping); else ping=(busybox ping); fi
if ip netns exec "$NSIM_NS_A" "${ping[@]}" -c 3 -W 2 "$NSIM_ADDR_B" >/dev/null; then
	ok "ping $NSIM_ADDR_A -> $NSIM_ADDR_B"
else
	bad "ping $NSIM_ADDR_A -> $NSIM_ADDR_B"
fi

# Payload integrity over TCP: later patches rebuild received skbs (header
# split), so compare bytes, not just throughput. bash's /dev/tcp sends,
# busybox nc receives.
head -c $((4 << 20)) /dev/urandom >/tmp/gpudst.tx
ip netns exec "$NSIM_NS_B" busybox nc -l -p "$PORT" >/tmp/gpudst.rx &
srv_pid=$!
sent=0
for _ in 1 2 3 4 5 6 7 8 9 10; do
	if ip netns exec "$NSIM_NS_A" bash -c \
		"cat /tmp/gpudst.tx >/dev/tcp/$NSIM_ADDR_B/$PORT" 2>/dev/null; then
		sent=1
		break
	fi
	sleep 0.3	# the listener may not be up yet
done
wait "$srv_pid" || true
srv_pid=
if [ "$sent" = 1 ] && cmp -s /tmp/gpudst.tx /tmp/gpudst.rx; then
	ok "4 MiB over TCP, bytes identical"
else
	bad "TCP transfer (sent=$sent, received $(stat -c %s /tmp/gpudst.rx) bytes)"
fi

if command -v iperf3 >/dev/null; then
	ip netns exec "$NSIM_NS_B" iperf3 -s -1 -B "$NSIM_ADDR_B" -p $((PORT + 1)) >/dev/null 2>&1 &
	srv_pid=$!
	out=
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		out=$(ip netns exec "$NSIM_NS_A" iperf3 -c "$NSIM_ADDR_B" -p $((PORT + 1)) -t 2 -f m 2>&1) && break
		out=
		sleep 0.3
	done
	wait "$srv_pid" || true
	srv_pid=
	rate=$(printf '%s\n' "$out" | awk '/receiver/ {print $(NF-2), $(NF-1)}')
	if [ -n "$rate" ]; then ok "iperf3 2 s: $rate"; else bad "iperf3 failed: $out"; fi
else
	echo "skip: iperf3 not installed"
fi

"$HERE/nsim-pair.sh" down "$PREFIX"
if [ -e "/run/netns/${PREFIX}a" ] || [ -e "/sys/bus/netdevsim/devices/netdevsim$NSIM_ID_A" ]; then
	bad "nsim-pair.sh down left state behind"
else
	ok "nsim pair removed"
fi

if [ "$failed" = 0 ]; then echo "PASS: vm-selftest"; else echo "FAIL: vm-selftest"; fi
exit "$failed"
