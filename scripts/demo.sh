#!/bin/bash
# Installs dependencies, builds, and runs the embedded default: a devmem TCP
# receive between two linked netdevsim ports in two network namespaces, inside
# a QEMU guest booted with our patched 6.12 kernel (this machine needs no
# devmem NIC and no GPU). Payload lands in a udmabuf dma-buf bound to the
# receiving queue; every byte is checked. Prints bytes received, mode (devmem
# or copy, and why), throughput and CPU copies per payload byte.
#
#   bash scripts/demo.sh                 devmem in the test VM (builds the
#                                        patched kernel once: ~10 min on 2
#                                        cores, cached afterwards)
#   bash scripts/demo.sh --host          quick run on this host's kernel over
#                                        a veth pair (copy mode unless the
#                                        host has a devmem-capable setup)
#   any other arguments go to gpud-rxbench (e.g. --compare, -j, --flows 4)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "demo: needs root (network namespaces, kernel build cache): run it as root, e.g. sudo bash scripts/demo.sh" >&2
	exit 2
fi
where=vm
args=()
for a in "$@"; do
	case $a in
	--host) where=host ;;
	*) args+=("$a") ;;
	esac
done

bash scripts/install-deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
if [ "$where" = host ]; then
	exec build/bench/gpud-rxbench --demo "${args[@]}"
fi

if ! kernel-patches/scripts/build-kernel.sh --print-path >/dev/null 2>&1; then
	echo "demo: building the patched kernel once (Debian linux-source-6.12 + kernel-patches/;" \
	     "~10 min on 2 cores, cached in /var/cache/gpudirect/kernel)" >&2
	# Its progress lines (stage, elapsed time, once a minute) and errors show
	# here as well as in the log (its stdout is only the image's path).
	if ! kernel-patches/scripts/build-kernel.sh 2>&1 >/dev/null |
		tee build/demo-kernel.log >&2; then
		echo "demo: the kernel build failed (full log: build/demo-kernel.log);" \
		     "'bash scripts/demo.sh --host' runs the copy-mode demo without it" >&2
		exit 1
	fi
fi
# The guest sees this tree read-only over 9p and runs the same binary.
exec kernel-patches/scripts/vm-run.sh --timeout 280 -- build/bench/gpud-rxbench --demo "${args[@]}"
