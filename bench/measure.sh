#!/bin/sh
# SPDX-License-Identifier: MIT
#
# The measurement behind docs/results.md: gpud-rxbench --demo --compare over
# the veth demo path, 1 and 4 flows, REPEATS times each, without validation
# (validation reads cost CPU and would be charged to the gpud run), then the
# charts. Needs root (namespaces). Appends to OUTDIR/rxbench-veth.jsonl and
# writes the load average seen before each run to OUTDIR/rxbench-veth.log,
# because on a shared machine that is what the numbers must be read against.
#
# usage: sudo bench/measure.sh PATH-TO-gpud-rxbench [REPEATS [DURATION [OUTDIR]]]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
tool=${1:?usage: $0 PATH-TO-gpud-rxbench [REPEATS [DURATION [OUTDIR]]]}
repeats=${2:-3}
duration=${3:-5}
out=${4:-$here/../docs/results}
mkdir -p "$out"
jsonl="$out/rxbench-veth.jsonl"
log="$out/rxbench-veth.log"

{
	echo "# $(date -u +%FT%TZ) $(uname -r) $(nproc) cpus; $tool"
	echo "# per run: flows, repeat, load average (1 min) before the run"
} >> "$log"
for r in $(seq 1 "$repeats"); do
	for flows in 1 4; do
		load=$(cut -d' ' -f1 /proc/loadavg)
		echo "flows=$flows repeat=$r load=$load" >> "$log"
		echo "flows=$flows repeat=$r load=$load" >&2
		"$tool" --demo --compare --no-validate -j --flows "$flows" \
			--duration "$duration" >> "$jsonl"
	done
done
"$here/plot.sh" -o "$out" -t "gpud-rxbench, veth, copy mode" "$jsonl"
