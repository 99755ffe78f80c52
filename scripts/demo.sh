#!/bin/bash
# Installs dependencies, builds, and runs the embedded default: a receive over
# a veth pair between two network namespaces it creates (and removes),
# printing bytes received, mode (devmem or copy, and why) and throughput.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "demo: needs root (network namespaces); run: sudo bash scripts/demo.sh" >&2
	exit 2
fi
bash scripts/install-deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec build/bench/gpud-rxbench --demo "$@"
