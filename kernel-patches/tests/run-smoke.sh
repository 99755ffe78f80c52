#!/bin/bash
# Run nsim_devmem_smoke across a linked netdevsim pair, inside the test VM:
#   scripts/vm-run.sh --kernel BZIMAGE --append udmabuf.size_limit_mb=1024 \
#           -- kernel-patches/tests/run-smoke.sh [MIB [MODE]]
# MODE: normal (default), exhaust, unbind, deldev or exit; see
# NSIM_SMOKE_MODE in nsim_devmem_smoke.c. The VM runner fails the run on
# any kernel WARN, BUG, lockdep or page pool leak report.
# Exit status is the test's (0 pass, 1 fail, 77 skip).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PAIR=$HERE/../scripts/nsim-pair.sh
mode=${2:-normal}

[ -x "$HERE/nsim_devmem_smoke" ] || { echo "SKIP: build nsim_devmem_smoke first"; exit 77; }
[ -d /sys/bus/netdevsim ] || { echo "SKIP: no netdevsim"; exit 77; }

eval "$("$PAIR" up smoke --queues 4)"
trap '"$PAIR" down smoke >/dev/null 2>&1 || true' EXIT
case $mode in
normal) ;;
deldev) export NSIM_SMOKE_MODE=deldev=$NSIM_ID_B ;;
*) export NSIM_SMOKE_MODE=$mode ;;
esac
rc=0
# STRACE="strace -f -o FILE" in the environment traces the test.
ip netns exec "$NSIM_NS_B" ${STRACE:-} "$HERE/nsim_devmem_smoke" "$NSIM_DEV_B" \
	"$NSIM_ADDR_B" "/run/netns/$NSIM_NS_A" "${1:-256}" || rc=$?
if [ "$mode" = exit ]; then
	# The kernel must release everything the process left behind; the
	# page pool reports a stalled shutdown after 60 s if it cannot.
	"$PAIR" down smoke
	trap - EXIT
	sleep 70
	echo "no stalled page pool after 70 s"
fi
exit $rc
