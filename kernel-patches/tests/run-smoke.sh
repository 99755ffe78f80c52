#!/bin/bash
# Run nsim_devmem_smoke across a linked netdevsim pair, inside the test VM:
#   scripts/vm-run.sh --kernel BZIMAGE --append udmabuf.size_limit_mb=1024 \
#           -- kernel-patches/tests/run-smoke.sh [MIB]
# Exit status is the test's (0 pass, 1 fail, 77 skip).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PAIR=$HERE/../scripts/nsim-pair.sh

[ -x "$HERE/nsim_devmem_smoke" ] || { echo "SKIP: build nsim_devmem_smoke first"; exit 77; }
[ -d /sys/bus/netdevsim ] || { echo "SKIP: no netdevsim"; exit 77; }

eval "$("$PAIR" up smoke --queues 4)"
trap '"$PAIR" down smoke >/dev/null 2>&1 || true' EXIT
rc=0
ip netns exec "$NSIM_NS_B" ${STRACE:-} "$HERE/nsim_devmem_smoke" "$NSIM_DEV_B" \
	"$NSIM_ADDR_B" "/run/netns/$NSIM_NS_A" "${1:-256}" || rc=$?
exit $rc
