#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Turns `gpud-rxbench -j --compare` and `gpud-pluginbench -j` results (one
# JSON object per line, any number of files, repeats welcome, the two tools
# mixed or not) into PNG charts:
#
#   rxbench-throughput.png  Gbit/s per receive mode and flow count
#                           (bar = median of the repeats, whiskers = min..max)
#   rxbench-ratio.png       gpud mode / plain TCP, throughput and receiver
#                           CPU per GB, per flow count (1.0 = parity)
#   pluginbench-algbw.png   algbw (GB/s) vs message size: plugin, raw TCP with
#                           1 and N connections (median of repeats per size)
#   pluginbench-ratio.png   plugin / raw TCP algbw per message size
#
# usage: bench/plot.sh [-o OUTDIR] [-t TITLE] RESULTS.jsonl...
#        (OUTDIR defaults to docs/results next to this script)
# needs: gnuplot (Debian: apt-get install gnuplot-nox) and jq.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out="$here/../docs/results"
title="gpud-rxbench"
pbtitle="gpud-pluginbench"
while getopts o:t:h opt; do
	case $opt in
	o) out=$OPTARG ;;
	t) title=$OPTARG pbtitle=$OPTARG ;;
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
if [ -s "$tmp/runs.tsv" ]; then

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
fi

# gpud-pluginbench: per size, the median over repeats of each algbw and ratio.
jq -s -r 'def med: map(select(. != null)) | sort |
		if length == 0 then "NaN" elif length % 2 == 1 then .[length / 2 | floor]
		else (.[length / 2 - 1] + .[length / 2]) / 2 end;
	map(select(.schema == "gpud-pluginbench/1")) | map(.sizes[]) | group_by(.bytes)[] |
	[.[0].bytes, (map(.plugin.algbw_gbs) | med), (map(.raw_1.algbw_gbs) | med),
	 (map(.raw_n.algbw_gbs) | med), (map(.ratio_raw_1) | med), (map(.ratio_raw_n) | med),
	 length] | @tsv' "$@" > "$tmp/pb.dat"
if [ -s "$tmp/pb.dat" ]; then
	conns=$(cat "$@" | jq -r 'select(.schema == "gpud-pluginbench/1") | .config.nsocks' | head -1)
	op=$(cat "$@" | jq -r 'select(.schema == "gpud-pluginbench/1") | .op' | head -1)
	cat > "$tmp/pb.gp" <<EOF
set terminal pngcairo size 900,560 font "DejaVu Sans,11" noenhanced
set datafile separator "\t"
set datafile missing "NaN"
set logscale x 2
set format x "%.0b%B"
set xlabel "message size (bytes)"
set grid xtics ytics
set key below
set output "$out/pluginbench-algbw.png"
set title "$pbtitle: NCCL net plugin vs plain TCP, $op, 2 ranks\n(algbw = size / time; median of repeats)"
set ylabel "algbw GB/s"
set logscale y 10
plot "$tmp/pb.dat" using 1:2 with linespoints lw 2 title "plugin ($conns data sockets)", \
     "" using 1:3 with linespoints lw 2 title "raw TCP, 1 connection", \
     "" using 1:4 with linespoints lw 2 title "raw TCP, $conns connections"
set output "$out/pluginbench-ratio.png"
set title "$pbtitle: plugin algbw / raw TCP algbw per message size\n(1.0 = as fast as plain sockets)"
set ylabel "plugin / raw"
unset logscale y
set yrange [0:*]
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 2 lc rgb "black"
plot "$tmp/pb.dat" using 1:5 with linespoints lw 2 title "plugin / raw TCP, 1 connection", \
     "" using 1:6 with linespoints lw 2 title "plugin / raw TCP, $conns connections"
EOF
	gnuplot "$tmp/pb.gp"
fi
[ -s "$tmp/runs.tsv" ] || [ -s "$tmp/pb.dat" ] || {
	echo "plot.sh: no ok gpud-rxbench/1 or gpud-pluginbench/1 results in $*" >&2
	exit 1
}
ls -1 "$out"/*.png
