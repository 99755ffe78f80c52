#!/bin/bash
# SPDX-License-Identifier: MIT
# Everything that needs a GPU, in one command, on a machine with an NVIDIA GPU
# and no network (docs/setup.md, "GPU check"):
#   1. what the machine has: GPU, driver and BAR1 (nvidia-smi), kernel, open or
#      proprietary NVIDIA modules, whether CUDA can export a dma-buf
#      (CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED), toolkit, PyTorch and its NCCL,
#      network namespaces;
#   2. a build of what the gpu tier needs (its own build dir, -j$(nproc), CUDA
#      architecture from nvidia-smi), then gpudctl doctor;
#   3. ctest -L gpu: CUDA dma-buf export, the plugin's unpack kernel (exactness
#      and bandwidth), CUDA buffers through the plugin, gpud-rxbench into GPU
#      memory, real NCCL all-reduce and DDP training over the plugin vs Socket;
#   4. a summary table (step, result, key numbers), also as summary.json and
#      summary.txt in $OUT when set, else in <build>/gpu-check/.
# Exit 0 when nothing failed (skips are not failures, and say why), 1 when a
# step failed, 2 on a usage error. Without a GPU everything skips: exit 0.
#
# usage: scripts/gpu-check.sh [--build-dir DIR] [--no-build] [--jobs N]
#                             [--deps DIR] [--prepare-deps]
#   --build-dir DIR  build (or reuse the configured build) in DIR (default build-gpu)
#   --no-build       use DIR as it is (a build made elsewhere)
#   --deps DIR       a prefix with build dependencies this machine lacks (libmnl,
#                    pkgconf), unpacked from .debs; default .gpu-deps if present
#   --prepare-deps   (on a machine with apt) fetch and unpack those into
#                    .gpu-deps/ for a GPU machine that cannot install anything
set -u -o pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-gpu
nobuild=0
jobs=$(nproc 2>/dev/null || echo 4)
deps=
usage() { sed -n '/^# usage:/,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
	case $1 in
	--build-dir) build=$(realpath -m "${2:?--build-dir needs a directory}"); shift ;;
	--no-build) nobuild=1 ;;
	--jobs|-j) jobs=${2:?--jobs needs a number}; shift ;;
	--deps) deps=$(realpath -m "${2:?--deps needs a directory}"); shift ;;
	--prepare-deps) prepare=1 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "gpu-check: unknown argument $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done

# ---- --prepare-deps: here, with apt, for a GPU machine that has no network ----
if [ "${prepare:-0}" = 1 ]; then
	d=$root/.gpu-deps
	mkdir -p "$d/debs" "$d/root"
	grep -qx '/.gpu-deps/' "$root/.git/info/exclude" 2>/dev/null ||
		echo '/.gpu-deps/' >>"$root/.git/info/exclude"
	(cd "$d/debs" && apt-get download libmnl0 libmnl-dev pkgconf-bin libpkgconf3) || exit 1
	for f in "$d"/debs/*.deb; do dpkg -x "$f" "$d/root"; done
	echo "gpu-check: unpacked into $d/root; carry .gpu-deps to the GPU machine"
	exit 0
fi

t_start=$(date +%s)
sumdir=${OUT:-$build/gpu-check}
mkdir -p "$sumdir" "$build" || exit 1
work=$build/gpu-check
results=$work/results
rm -rf "$results"
mkdir -p "$work" "$results"
log=$sumdir/gpu-check.log
exec > >(tee "$log") 2>&1
facts=$work/machine.txt
steps=$work/steps.txt
: >"$facts"
: >"$steps"

fact() { printf '%s\t%s\n' "$1" "$2" >>"$facts"; }
step() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" >>"$steps"; }
hdr() { printf '\n===== %s =====\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }

echo "gpu-check: $(date -u +%FT%TZ) on $(hostname), repo $root ($(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "gpu-check: build dir $build, summary to $sumdir"

# ================= 1. the machine =================
hdr "GPU (nvidia-smi)"
gpu_seen=0 cc=
if have nvidia-smi; then
	if timeout 30 nvidia-smi; then
		q=$(timeout 20 nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total,pci.bus_id \
			--format=csv,noheader 2>/dev/null | head -1)
		echo "query: $q"
		timeout 20 nvidia-smi -q | grep -E "Driver Version|CUDA Version|Product Name|Bus Id|Persistence|Addressing Mode" | sed 's/^ *//' | sort -u
		bar1=$(timeout 20 nvidia-smi -q -d MEMORY | awk '/BAR1 Memory Usage/{b=1; next} b&&/Total|Used|Free/{gsub(/ +/," "); printf "%s;", $0} b&&/^ *[A-Z].*Usage/{b=0}')
		echo "BAR1: ${bar1:-not reported}"
		cc=$(echo "$q" | awk -F', ' '{print $3}')
		[ -n "$q" ] && gpu_seen=1
		fact gpu "${q:-nvidia-smi printed no GPU}"
		fact bar1 "${bar1:-not reported}"
	else
		echo "nvidia-smi failed"
		fact gpu "nvidia-smi failed (no GPU or driver not loaded)"
	fi
else
	echo "no nvidia-smi: no NVIDIA driver here"
	fact gpu "no nvidia-smi (no NVIDIA driver)"
fi

hdr "kernel"
uname -a
k=$(uname -r)
case $k in 4.4.0*) k="$k (gVisor reports this; netlink families and namespaces may be missing)" ;; esac
fact kernel "$k"

hdr "NVIDIA kernel modules"
mods="unknown"
if [ -r /proc/driver/nvidia/version ]; then
	cat /proc/driver/nvidia/version
	if grep -q "Open Kernel Module" /proc/driver/nvidia/version; then
		mods="open (/proc/driver/nvidia/version)"
	else
		mods="proprietary (/proc/driver/nvidia/version): no dma-buf export"
	fi
elif have modinfo && lic=$(modinfo -F license nvidia 2>/dev/null) && [ -n "$lic" ]; then
	echo "modinfo nvidia: license $lic"
	case $lic in *MIT*) mods="open (modinfo license: $lic)" ;; *) mods="proprietary (modinfo license: $lic)" ;; esac
else
	mods="unknown: no /proc/driver/nvidia/version and no modinfo (sandboxed kernel?)"
fi
echo "modules: $mods"
fact modules "$mods"

# Which python holds PyTorch: the tests need that one.
py=
for p in ${GPUD_PYTHON3:-} python3 python; do
	if have "$p" && "$p" -c 'import torch' >/dev/null 2>&1; then py=$(command -v "$p"); break; fi
done
anypy=${py:-$(command -v python3 || true)}

hdr "CUDA dma-buf export (CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED = 124)"
dmabuf="unknown (no python3 to ask the driver)"
if [ -n "$anypy" ]; then
	dmabuf=$(timeout 60 "$anypy" - <<'EOF' 2>&1 | tail -1
import ctypes
try:
    cu = ctypes.CDLL("libcuda.so.1")
except OSError as e:
    print("unknown: libcuda.so.1 does not load (%s)" % e); raise SystemExit
r = cu.cuInit(0)
if r:
    print("unknown: cuInit failed (CUresult %d)" % r); raise SystemExit
n = ctypes.c_int(0)
cu.cuDeviceGetCount(ctypes.byref(n))
out = []
for i in range(n.value):
    d, v, name = ctypes.c_int(), ctypes.c_int(-1), ctypes.create_string_buffer(128)
    cu.cuDeviceGet(ctypes.byref(d), i)
    cu.cuDeviceGetName(name, 128, d)
    r = cu.cuDeviceGetAttribute(ctypes.byref(v), 124, d)
    out.append("gpu %d %s: %s" % (i, name.value.decode(), "error %d" % r if r else
               "1 (dma-buf export possible)" if v.value == 1 else "%d (no dma-buf export)" % v.value))
print("; ".join(out) if out else "unknown: the driver sees no device")
EOF
)
fi
echo "$dmabuf"
fact dmabuf "$dmabuf"

hdr "toolkit"
nvcc_v=$( (have nvcc && nvcc --version | tail -2 | head -1) || ([ -x /usr/local/cuda/bin/nvcc ] && /usr/local/cuda/bin/nvcc --version | tail -2 | head -1) || echo "no nvcc")
echo "nvcc: $nvcc_v"
echo "cmake: $(cmake --version 2>/dev/null | head -1)"
fact toolkit "nvcc: $nvcc_v; $(cmake --version 2>/dev/null | head -1 || echo 'no cmake')"

hdr "PyTorch and NCCL"
nccl_lib=
if [ -n "$py" ]; then
	tinfo=$(timeout 120 "$py" - <<'EOF' 2>&1
import glob, os, torch
try:
    v = torch.cuda.nccl.version()
    v = ".".join(map(str, v)) if isinstance(v, tuple) else str(v)
except Exception as e:
    v = "unknown (%s)" % e
lib = ""
try:
    import nvidia.nccl
    for d in nvidia.nccl.__path__:
        hits = sorted(glob.glob(os.path.join(d, "lib", "libnccl.so*")))
        if hits:
            lib = hits[0]; break
except Exception as e:
    lib = ""
print("torch %s (CUDA %s, GPU visible: %s), NCCL %s" % (torch.__version__, torch.version.cuda,
      torch.cuda.is_available(), v))
print("LIB=" + lib)
EOF
)
	echo "python: $py"
	echo "$tinfo"
	nccl_lib=$(echo "$tinfo" | sed -n 's/^LIB=//p')
	fact torch "$(echo "$tinfo" | grep -v '^LIB=' | tail -1); wheel libnccl: ${nccl_lib:-none found}"
else
	echo "no python with torch (tried ${GPUD_PYTHON3:-} python3 python)"
	fact torch "no python with PyTorch: the NCCL steps will skip"
fi

hdr "network namespaces"
netns="no"
if [ "$(id -u)" != 0 ]; then
	netns="no: not root"
elif ! have ip; then
	netns="no: no ip tool (iproute2)"
else
	ns=gpudck$$
	if err=$(ip netns add "$ns" 2>&1); then
		if err=$(ip link add "${ns}a" type veth peer name "${ns}b" 2>&1); then
			ip link del "${ns}a" 2>/dev/null
			netns="yes (ip netns add and veth work)"
		else
			netns="namespaces yes, veth no: $err"
		fi
		ip netns del "$ns" 2>/dev/null
	else
		netns="no: ip netns add: $err"
	fi
fi
echo "$netns"
fact netns "$netns"

# ================= 2. build =================
if [ -z "$deps" ] && [ -d "$root/.gpu-deps/root" ]; then deps=$root/.gpu-deps; fi
cmake_extra=()
if [ -n "$deps" ]; then
	# .debs unpacked elsewhere: point pkg-config, the compiler and the loader at them
	dr=$deps/root
	multi=$(ls -d "$dr"/usr/lib/*-linux-gnu 2>/dev/null | head -1)
	mkdir -p "$work/pkgconfig"
	for pc in "$multi"/pkgconfig/*.pc; do
		[ -f "$pc" ] && sed "s|^prefix=.*|prefix=$dr/usr|; s|^libdir=.*|libdir=$multi|" "$pc" >"$work/pkgconfig/$(basename "$pc")"
	done
	export PKG_CONFIG_PATH=$work/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
	export LD_LIBRARY_PATH=$multi${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	export LIBRARY_PATH=$multi${LIBRARY_PATH:+:$LIBRARY_PATH}
	export CPATH=$dr/usr/include${CPATH:+:$CPATH}
	if ! have pkg-config && [ -x "$dr/usr/bin/pkgconf" ]; then
		cmake_extra+=(-DPKG_CONFIG_EXECUTABLE="$dr/usr/bin/pkgconf")
	fi
	echo "gpu-check: using build dependencies from $deps"
fi
case $cc in
	*.*) arch=${cc/./} ;;
	*) arch= ;;
esac
[ -n "$arch" ] && cmake_extra+=(-DCMAKE_CUDA_ARCHITECTURES="$arch")
[ -n "$py" ] && cmake_extra+=(-DGPUD_PYTHON3="$py")
[ -x /usr/local/cuda/bin/nvcc ] || { have nvcc && cmake_extra+=(-DCMAKE_CUDA_COMPILER="$(command -v nvcc)"); }

built=0
if [ $nobuild = 1 ]; then
	if [ -f "$build/CTestTestfile.cmake" ]; then
		step build skip "--no-build: using $build as it is"
		built=1
	else
		step build fail "--no-build, but $build has no configured build"
	fi
else
	hdr "configure"
	t0=$(date +%s)
	if [ -f "$build/CMakeCache.txt" ] && ! grep -q "CMAKE_HOME_DIRECTORY:INTERNAL=$root\$" "$build/CMakeCache.txt"; then
		echo "gpu-check: $build was configured for another source tree: use --no-build to reuse it as it is"
		step configure fail "$build belongs to another source tree"
	elif cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGPUD_BUILD_TESTS=ON \
		"${cmake_extra[@]}" >"$work/configure.log" 2>&1; then
		grep -E "gpudirect:|gpu tests|CUDA" "$work/configure.log"
		step configure pass "$(grep -o 'CUDA kernels [A-Z]*' "$work/configure.log" | head -1)${arch:+, sm_$arch}" $(( $(date +%s) - t0 ))
		hdr "build (-j$jobs)"
		t0=$(date +%s)
		want="gpudctl nccl-net-devmem gpud-rxbench mem_cuda_gpu_test plugin_cuda gpu_cuda_info unpack_kernel_test"
		if have ninja && [ -f "$build/build.ninja" ]; then
			avail=$(ninja -C "$build" -t targets all 2>/dev/null | sed 's/:.*//')
		else
			avail=$(cmake --build "$build" --target help 2>/dev/null | sed -n 's/^\.\.\. \([^ ]*\).*/\1/p')
		fi
		targets=()
		for t in $want; do echo "$avail" | grep -qx "$t" && targets+=("$t"); done
		echo "targets: ${targets[*]:-all}"
		targs=()
		[ ${#targets[@]} -gt 0 ] && targs=(--target "${targets[@]}")
		if cmake --build "$build" -j"$jobs" "${targs[@]}" >"$work/build.log" 2>&1; then
			step build pass "${#targets[@]} targets: ${targets[*]}" $(( $(date +%s) - t0 ))
			built=1
		else
			tail -40 "$work/build.log"
			step build fail "see $work/build.log: $(grep -m1 -E 'error|Error' "$work/build.log" | cut -c1-160)" $(( $(date +%s) - t0 ))
		fi
	else
		tail -30 "$work/configure.log"
		step configure fail "$(grep -m1 -A2 'CMake Error' "$work/configure.log" | tr '\n' ' ' | cut -c1-200)" $(( $(date +%s) - t0 ))
	fi
fi

if [ $built = 1 ] && [ -x "$build/gpudirect-lib/tools/gpudctl" ]; then
	hdr "gpudctl doctor --no-trial"
	timeout 60 "$build/gpudirect-lib/tools/gpudctl" doctor --no-trial >"$work/doctor.txt" 2>&1
	echo "(exit $?)" >>"$work/doctor.txt"
	cat "$work/doctor.txt"
	fact doctor_gpu "$(grep -m1 -i 'cuda' "$work/doctor.txt" | sed 's/^ *//' | cut -c1-220)"
fi

# ================= 3. ctest -L gpu =================
junit=$work/ctest-gpu.xml
rm -f "$junit"
if [ $built = 1 ]; then
	hdr "ctest -L gpu"
	export GPUD_GPU_RESULTS=$results
	export PYTHONUNBUFFERED=1
	[ -n "$nccl_lib" ] && export GPUD_NCCL_LIB=$nccl_lib
	export NCCL_DEVMEM_MODE=${NCCL_DEVMEM_MODE:-copy}
	t0=$(date +%s)
	(cd "$build" && ctest -L gpu --output-on-failure -V --output-junit "$junit") >"$work/ctest.log" 2>&1
	ctest_rc=$?
	grep -E '^ *[0-9]+/[0-9]+ Test|^[0-9]+: (SKIP|FAIL|PASS|RESULT|ok)|tests passed|tests failed' "$work/ctest.log"
	step ctest "$([ $ctest_rc = 0 ] && echo pass || echo fail)" "ctest -L gpu exit $ctest_rc, log $work/ctest.log" $(( $(date +%s) - t0 ))
fi

# ================= 4. summary =================
summarize() {
	"$anypy" - "$facts" "$steps" "$junit" "$results" "$sumdir" "$gpu_seen" $(( $(date +%s) - t_start )) <<'EOF'
import glob, json, os, re, sys
import xml.etree.ElementTree as ET
facts_f, steps_f, junit, results, sumdir, gpu_seen, elapsed = sys.argv[1:8]
EXPECTED = ["gpu_cuda_info", "mem_cuda_gpu_test", "plugin_unpack_kernel_gpu",
            "plugin_unpack_bench_gpu", "plugin_cuda", "gpu_rxbench_cuda",
            "nccl_allreduce_gpu", "nccl_ddp_gpu"]
facts = [l.rstrip("\n").split("\t", 1) for l in open(facts_f) if "\t" in l]
rows = [{"step": k, "result": "info", "detail": v} for k, v in facts]
for l in open(steps_f):
    p = l.rstrip("\n").split("\t")
    rows.append({"step": p[0], "result": p[1], "detail": p[2],
                 "seconds": float(p[3]) if len(p) > 3 and p[3] else None})
data = {}
for f in glob.glob(os.path.join(results, "*.json")):
    try:
        data[os.path.basename(f)[:-5]] = json.load(open(f))
    except ValueError as e:
        data[os.path.basename(f)[:-5]] = {"unreadable": str(e)}

def key_numbers(name, d, out):
    if name == "gpu_cuda_info":
        return "%s cc %s, DMA_BUF_SUPPORTED %s, probe rc %s" % (
            d["name"], d["compute_capability"], d["dma_buf_supported"], d["gpud_probe_rc"])
    if name == "mem_cuda_gpu_test":
        bar1 = re.search(r"BAR1[^;]*", d.get("probe", ""))
        return "exp_name %s, %s, SYNC start/end rc %s/%s, mmap errno %s; %s" % (
            d["exp_name"], d["link"], d["sync_start_rc"], d["sync_end_rc"], d["mmap_errno"],
            bar1.group(0)[:90] if bar1 else "no BAR1 text")
    if name == "plugin_unpack_kernel_gpu":
        return "%d rounds, %d fragments, %d bytes byte-exact (seed %d)" % (
            d["rounds"], d["fragments"], d["bytes"], d["seed"])
    if name == "plugin_unpack_bench_gpu":
        return "; ".join("%s %.0f/%.0f GB/s = %.2f%s" % (
            k, d[k]["kernel_GBps"], d[k]["memcpy_GBps"], d[k]["ratio"],
            "" if k.endswith("devmeta") else " ok" if d[k]["goal_met"] else " BELOW 0.9")
            for k in ("bulk", "per_receive", "bulk_devmeta") if k in d)
    if name == "gpu_rxbench_cuda":
        return "%s: " % d["path"].split(" (")[0] + ", ".join(
            "%s %.1f Gbit/s" % (r["name"], r["gbps"] or 0) for r in d["runs"])
    if name == "nccl_allreduce_gpu":
        t = d.get("table") or []
        big = [r for r in t if r["bytes"] >= (1 << 20) and "ratio" in r]
        if not big:
            return "no table"
        last = t[-1]
        return "busbw at %d MiB: devmem %.2f, Socket %.2f GB/s; ratio >= 1 MiB min %.2f max %.2f (goal 1.0 %s); mode %s" % (
            last["bytes"] >> 20, last["devmem_busbw_GBps"], last["Socket_busbw_GBps"],
            min(r["ratio"] for r in big), max(r["ratio"] for r in big),
            "met" if d["goal"]["met"] else "NOT met", d.get("mode"))
    if name == "nccl_ddp_gpu":
        r = (d.get("runs", {}).get("devmem") or {}).get("ranks") or []
        return "%d steps, devmem vs Socket bit-identical: %s%s" % (
            d["steps"], d["identical"], ", rank 0 loss %.5f -> %.5f" % (
                r[0]["losses"][0], r[0]["losses"][-1]) if r else "")
    return None

seen = set()
if os.path.exists(junit):
    for tc in ET.parse(junit).getroot().iter("testcase"):
        name = tc.get("name")
        seen.add(name)
        out = (tc.findtext("system-out") or "")
        status = tc.get("status")
        result = {"run": "pass", "fail": "fail", "notrun": "skip"}.get(status, status)
        if tc.find("skipped") is not None:
            result = "skip"
        if tc.find("failure") is not None:
            result = "fail"
        lines = [l for l in out.splitlines() if l.strip()]
        reason = None
        for pref in (("SKIP: ",) if result == "skip" else ("FAIL: ", "FAIL ", "assert") if result == "fail" else ()):
            hits = [l for l in lines if pref in l]
            if hits:
                reason = hits[-1].split(pref, 1)[-1] if pref.endswith(": ") else hits[-1]
                break
        if result == "fail" and not reason:
            reason = lines[-1] if lines else "failed with no output"
        detail = reason
        if result == "pass":
            d = data.get(name)
            try:
                detail = key_numbers(name, d, out) if d else None
            except (KeyError, TypeError, ValueError, IndexError) as e:
                detail = "numbers unreadable (%s)" % e
            if not detail:
                passes = [l for l in lines if "PASS" in l or l.startswith("ok")]
                detail = passes[-1] if passes else "passed"
        rows.append({"step": name, "result": result, "detail": (detail or "")[:400],
                     "seconds": float(tc.get("time") or 0), "data": data.get(name)})
for name in EXPECTED:
    if name not in seen and os.path.exists(junit):
        rows.append({"step": name, "result": "skip",
                     "detail": "not registered in this build (no CUDA toolkit at configure time?)"})
tests = [r for r in rows if r["step"] in seen]
counts = {k: sum(r["result"] == k for r in tests) for k in ("pass", "skip", "fail")}
for r in rows:
    if r["step"] == "ctest":
        r["detail"] = "%d tests: %d passed, %d skipped, %d failed; %s" % (
            len(tests), counts["pass"], counts["skip"], counts["fail"], r["detail"])
failed = [r["step"] for r in rows if r["result"] == "fail"]
gpu_skips = [r["step"] for r in rows if r["result"] == "skip" and r["step"] in EXPECTED]
notes = []
if gpu_seen == "1" and gpu_skips:
    notes.append("ATTENTION: nvidia-smi sees a GPU, yet %s skipped: read the reasons" %
                 ", ".join(gpu_skips))
if not os.path.exists(junit):
    notes.append("ctest did not run (the build did not complete)")
w = max(len(r["step"]) for r in rows) + 2
text = ["", "===== gpu-check summary (%s s) =====" % elapsed,
        "%-*s %-6s %s" % (w, "step", "result", "details")]
for r in rows:
    det = r["detail"] or ""
    if r.get("seconds"):
        det += " [%.0f s]" % r["seconds"]
    text.append("%-*s %-6s %s" % (w, r["step"], r["result"], det))
text += notes
if failed:
    verdict = "FAIL (%s)" % ", ".join(failed)
elif counts["pass"]:
    verdict = "OK: %d passed, %d skipped, 0 failed" % (counts["pass"], counts["skip"])
else:
    verdict = "OK (nothing failed) but NOTHING RAN ON A GPU: %d skipped" % counts["skip"]
text.append("RESULT: " + verdict)
print("\n".join(text))
json.dump({"elapsed_s": int(elapsed), "rows": rows, "failed": failed, "notes": notes},
          open(os.path.join(sumdir, "summary.json"), "w"), indent=1)
open(os.path.join(sumdir, "summary.txt"), "w").write("\n".join(text) + "\n")
sys.exit(10 if failed else 0)
EOF
}

raw_summary() {
	hdr "summary (raw: $1)"
	cat "$facts" "$steps"
	[ -f "$junit" ] && grep -o '<testcase name="[^"]*"[^>]*status="[^"]*"' "$junit"
	rc=0
	grep -q $'\tfail\t' "$steps" && rc=1
	[ -f "$junit" ] && grep -q 'status="fail"' "$junit" && rc=1
}

if [ -n "$anypy" ]; then
	summarize
	case $? in
	0) rc=0 ;;
	10) rc=1 ;;
	*) raw_summary "the summary script failed" ;;
	esac
else
	raw_summary "no python3"
fi
[ -f "$junit" ] && cp "$junit" "$sumdir/" 2>/dev/null
[ -f "$work/ctest.log" ] && [ "$sumdir" != "$work" ] && cp "$work/ctest.log" "$sumdir/" 2>/dev/null
exit $rc
