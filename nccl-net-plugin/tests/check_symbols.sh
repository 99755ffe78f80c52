#!/bin/sh
# The plugin exports exactly ncclNetPlugin_v8..v12, and the NCCL installed
# here (if any) looks up v8..v11 (2.28 predates v12, which 2.30 looks up
# first). Usage: check_symbols.sh <plugin.so> [libnccl.so.2]
set -eu
so=$1
nccl=${2:-/usr/local/cuda/lib/libnccl.so.2}
got=$(nm -D --defined-only "$so" | awk '{print $3}' | sort | tr '\n' ' ')
want="ncclNetPlugin_v10 ncclNetPlugin_v11 ncclNetPlugin_v12 ncclNetPlugin_v8 ncclNetPlugin_v9 "
if [ "$got" != "$want" ]; then
	echo "FAIL: exported symbols: '$got', expected '$want'"
	exit 1
fi
echo "exports: $got"
if [ -r "$nccl" ]; then
	for v in 8 9 10 11; do
		if ! strings "$nccl" | grep -qx "ncclNetPlugin_v$v"; then
			echo "FAIL: $nccl does not look up ncclNetPlugin_v$v"
			exit 1
		fi
	done
	echo "$nccl looks up: $(strings "$nccl" | grep -x 'ncclNetPlugin_v[0-9]*' | sort -V | tr '\n' ' ')"
else
	echo "($nccl not present: NCCL lookup not checked)"
fi
echo PASS
