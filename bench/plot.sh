#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Turns `gpud-rxbench -j --compare` results (one JSON object per line, any
# number of files, repeats welcome) into PNG charts:
#
#   rxbench-throughput.png  Gbit/s per receive mode and flow count
#                           (bar = median of the repeats, whiskers = min..max)
#   rxbench-ratio.png       gpud mode / plain TCP, throughput and receiver
#                           CPU per GB, per flow count (1.0 = parity)
#
# usage: bench/plot.sh [-o OUTDIR] [-t TITLE] RESULTS.jsonl...
#        (OUTDIR defaults to docs/results next to this script)
# needs: gnuplot (Debian: apt-get install gnuplot-nox) and jq.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out="$here/../docs/results"
title="gpud-rxbench"
while getopts o:t:h opt; do
	case $opt in
	o) out=$OPTARG ;;
	t) title=$OPTARG ;;
	*) sed -n '3,15p' "$0"; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n '3,15p' "$0"; exit 2; }
for tool in gnuplot jq; do
	command -v $tool >/dev/null 2>&1 || {
		echo "plot.sh: $tool is missing: apt-get install $([ $tool = gnuplot ] && echo gnuplot-nox || echo jq)" >&2
		exit 2
	}
done
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# One row per run: flows, run name (gpud mode in brackets), Gbit/s, rx CPU s/GB.
cat "$@" | jq -r 'select(.schema == "gpud-rxbench/1" and .ok) |
	.config.flows as $f | .runs[] |
	[$f, (if .name == "gpud" then "gpud_rx (" + .mode + ")"
	      elif .name == "plain" then "plain recv()"
	      elif .name == "plain_h2d" then "recv() + host-to-device copy"
	      else .name end),
	 .gbps, .cpu.rx_cpu_s_per_gb] | @tsv' > "$tmp/runs.tsv"
[ -s "$tmp/runs.tsv" ] || { echo "plot.sh: no ok gpud-rxbench/1 results in $*" >&2; exit 1; }

# Wide table for a clustered histogram: flows, then median/min/max per run
# name. Medians, because one disturbed run on a shared machine moves a mean.
awk -F'\t' '
	function median(k,   i, j, t, m) {
	  m = n[k]
	  for (i = 1; i <= m; i++) a[i] = v[k, i]
	  for (i = 2; i <= m; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	  return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
	}
	{ k = $1 SUBSEP $2; v[k, ++n[k]] = $3
	  if (!(k in lo) || $3 < lo[k]) lo[k] = $3
	  if (!(k in hi) || $3 > hi[k]) hi[k] = $3
	  if (!($1 in seenf)) { seenf[$1] = 1; flows[++nf] = $1 }
	  if (!($2 in seenr)) { seenr[$2] = 1; names[++nr] = $2 } }
	END {
	  printf "flows"; for (j = 1; j <= nr; j++) printf "\t\"%s\"\tmin\tmax", names[j]; print ""
	  for (i = 1; i <= nf; i++) {
	    printf "%s", flows[i]
	    for (j = 1; j <= nr; j++) { k = flows[i] SUBSEP names[j]
	      if (k in n) printf "\t%.3f\t%.3f\t%.3f", median(k), lo[k], hi[k]
	      else printf "\t0\t0\t0" }
	    print ""
	  }
	  print nr > "'"$tmp"'/nruns"
	}' "$tmp/runs.tsv" | sort -n > "$tmp/tput.dat"
nruns=$(cat "$tmp/nruns")

# flows, then median/min/max of the throughput ratio and of the CPU ratio.
jq -s -r 'def med: sort | if length % 2 == 1 then .[length / 2 | floor]
		else (.[length / 2 - 1] + .[length / 2]) / 2 end;
	map(select(.schema == "gpud-rxbench/1" and .ok and .ratio != null)) |
	group_by(.config.flows)[] |
	[.[0].config.flows,
	 ([.[].ratio.gbps_gpud_over_plain] | med, min, max),
	 ([.[].ratio.rx_cpu_per_gb_gpud_over_plain] | med, min, max), length] | @tsv' \
	"$@" > "$tmp/ratio.dat"

cat > "$tmp/tput.gp" <<EOF
set terminal pngcairo size 900,560 font "DejaVu Sans,11" noenhanced
set output "$out/rxbench-throughput.png"
set title "$title: receive throughput per mode\n(bar: median of repeats, whiskers: min..max)"
set ylabel "payload Gbit/s"
set xlabel "TCP flows"
set style data histogram
set style histogram errorbars gap 2 lw 1.5
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set grid ytics
set key below
set datafile separator "\t"
plot for [i=0:$nruns-1] "$tmp/tput.dat" using 2+3*i:3+3*i:4+3*i:xtic(1) title columnheader(2+3*i)
EOF
gnuplot "$tmp/tput.gp"

if [ -s "$tmp/ratio.dat" ]; then
	cat > "$tmp/ratio.gp" <<EOF
set terminal pngcairo size 900,560 font "DejaVu Sans,11" noenhanced
set output "$out/rxbench-ratio.png"
set title "$title: gpud mode relative to plain TCP on the same path\n(bar: median of repeats, whiskers: min..max; 1.0 = same as plain recv())"
set xlabel "TCP flows"
set ylabel "gpud / plain"
set style data histogram
set style histogram errorbars gap 2 lw 1.5
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set grid ytics
set key below
set datafile separator "\t"
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 2 lc rgb "black"
plot "$tmp/ratio.dat" using 2:3:4:xtic(1) title "throughput (higher is better)", \
     "" using 5:6:7 title "receiver CPU per GB (lower is better)"
EOF
	gnuplot "$tmp/ratio.gp"
fi
ls -1 "$out"/rxbench-*.png
