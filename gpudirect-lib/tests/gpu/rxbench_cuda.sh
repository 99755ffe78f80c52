#!/bin/bash
# SPDX-License-Identifier: MIT
# gpu tier: gpud-rxbench receiving into GPU memory (--mem cuda:0), copy mode,
# every byte validated, with the plain-TCP baselines (--compare: recv() alone,
# and recv() + host-to-device copy into the same GPU).
#   - as root where network namespaces work: --demo (a veth pair between two
#     namespaces, created and removed by the tool);
#   - otherwise over loopback: a receiver on 127.0.0.1 and a sender process.
# Skips (77) without a usable GPU (the cuda info test's verdict) or when
# neither path can run. Numbers: $GPUD_GPU_RESULTS/gpu_rxbench_cuda.json.
#
# usage: rxbench_cuda.sh GPUD-RXBENCH GPU-CUDA-INFO
set -u
rxbench=$1 cuinfo=$2
tmp=$(mktemp -d /tmp/gpud-rxbench-cuda.XXXXXX)
recv_pid=
cleanup() {
	[ -n "$recv_pid" ] && kill "$recv_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

# A usable GPU? The info test says so, or prints why not.
"$cuinfo" >"$tmp/cuinfo.txt" 2>&1
rc=$?
if [ $rc = 77 ]; then
	skip "$(sed -n 's/^SKIP: //p' "$tmp/cuinfo.txt" | head -1)"
elif [ $rc != 0 ]; then
	cat "$tmp/cuinfo.txt"
	fail "gpu_cuda_info failed (exit $rc)"
fi

netns_ok() {
	local ns=gpud-chk-$$
	[ "$(id -u)" = 0 ] && command -v ip >/dev/null || return 1
	ip netns add "$ns" 2>/dev/null || return 1
	ip netns del "$ns" 2>/dev/null
	return 0
}

common=(--mem cuda:0 --mode copy --compare -j)
if netns_ok; then
	path="veth pair between two namespaces (--demo)"
	echo "gpud-rxbench ${common[*]} --demo"
	"$rxbench" --demo "${common[@]}" --bytes 2G --duration 5 >"$tmp/out.json" 2>"$tmp/err.txt"
	rc=$?
else
	path="loopback 127.0.0.1 (network namespaces unavailable here)"
	port=$((20000 + $$ % 20000))
	echo "gpud-rxbench ${common[*]} --validate over loopback, port $port"
	"$rxbench" "${common[@]}" --validate --listen 127.0.0.1 --port "$port" --bytes 2G \
		>"$tmp/out.json" 2>"$tmp/err.txt" &
	recv_pid=$!
	# recv, plain, plain_h2d: three TCP runs (the receiver's hint says the same)
	"$rxbench" --send "127.0.0.1:$port" --runs 3 --bytes 2G >"$tmp/send.txt" 2>&1
	src=$?
	wait "$recv_pid"
	rc=$?
	recv_pid=
	if [ $src != 0 ]; then
		cat "$tmp/send.txt"
		[ $rc = 0 ] && rc=1
	fi
fi
cat "$tmp/err.txt" >&2
if [ $rc != 0 ]; then
	cat "$tmp/out.json"
	fail "gpud-rxbench over $path exited $rc"
fi

# Validate the JSON: every run validated, the gpud run in copy mode into cuda.
python3 - "$tmp/out.json" "$path" <<'EOF' || fail "gpud-rxbench's report does not hold up (above)"
import json, os, sys
doc = json.load(open(sys.argv[1]))
runs = doc["runs"]
names = [r["name"] for r in runs]
problems = []
if names[:1] != ["gpud"] or "plain" not in names or "plain_h2d" not in names:
    problems.append("runs %s, expected gpud, plain, plain_h2d" % names)
for r in runs:
    if not r.get("validated") or r.get("mismatch") is not None or not r.get("bytes"):
        problems.append("run %s: validated %s, mismatch %s, bytes %s" % (
            r["name"], r.get("validated"), r.get("mismatch"), r.get("bytes")))
if runs and runs[0].get("mode") != "copy":
    problems.append("gpud run mode %s, expected copy" % runs[0].get("mode"))
res = {"path": sys.argv[2], "mem": doc.get("config", {}).get("mem"),
       "runs": [{"name": r["name"], "mode": r.get("mode"), "gbps": r.get("gbps"),
                 "bytes": r.get("bytes"), "validated": r.get("validated")} for r in runs],
       "problems": problems}
for r in res["runs"]:
    print("%-10s %-6s %7.2f Gbit/s  %d bytes validated=%s" % (
        r["name"], r["mode"], r["gbps"] or 0, r["bytes"] or 0, r["validated"]))
print("RESULT gpu_rxbench_cuda " + json.dumps(res))
d = os.environ.get("GPUD_GPU_RESULTS")
if d:
    json.dump(res, open(os.path.join(d, "gpu_rxbench_cuda.json"), "w"))
for p in problems:
    print("problem: " + p)
sys.exit(1 if problems else 0)
EOF
echo "PASS: gpud-rxbench --mem cuda:0 copy mode over $path, every byte validated"
