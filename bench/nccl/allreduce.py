#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Real NCCL all-reduce through our plugin vs NCCL's Socket transport, one GPU.

Two ranks on one GPU, each its own "host" (NCCL_HOSTID; see ncclpair.py), run
torch.distributed.all_reduce (float32 sum) over sizes 8 B .. 256 MiB, twice in
one invocation: NCCL_NET=devmem with NCCL_NET_PLUGIN=<libnccl-net-devmem.so>,
then NCCL_NET=Socket. Every size is checked, twice:
  - fresh data, rank r holding (r + 1) * p with p[i] = i % 251 + 1: the sum
    must be 3 * p exactly;
  - the timed buffer, p on rank 0 and 0 on rank 1, reduced in place k times
    (warm-up plus timed): it must end as p * 2^(k-1) exactly (powers of two
    times small integers stay exact in float32 for k <= 100).
Bandwidth as nccl-tests computes it: algbw = bytes / time per op, busbw =
algbw * 2 (n - 1) / n (n = 2 ranks: busbw = algbw). Prints a table and JSON
with the devmem/Socket busbw ratio per size (goal: >= 1.0 from 1 MiB up;
reported, enforced only with --require-goal).

The devmem run counts only if NCCL logged "Using network devmem" in both
ranks (NCCL_NET=devmem already makes NCCL fail instead of falling back).

Exit: 0 pass, 1 fail, 77 skipped (no PyTorch, no CUDA device, no NCCL).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ncclpair  # noqa: E402

GOAL_RATIO, GOAL_FROM = 1.0, 1 << 20


def parse_size(s):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    s = s.strip().upper().rstrip("B")
    if s and s[-1] in mult:
        return int(float(s[:-1]) * mult[s[-1]])
    return int(s)


def sizes_from(args):
    out, s = [], args.min_bytes
    while s < args.max_bytes:
        out.append(s)
        s *= args.factor
    out.append(args.max_bytes)
    return out


def iters_for(size, args):
    if args.iters:
        return args.iters
    # ~1 GB moved per size, 5..90 ops (90 + warm-up keeps 2^k exact in float32)
    return max(5, min(90, (1 << 30) // max(size, 1)))


def worker(args):
    torch = ncclpair.require_torch_cuda()
    dist, dev = ncclpair.init_worker(torch, args)
    res = []
    for size in sizes_from(args):
        n = max(1, size // 4)
        p = (torch.arange(n, device=dev, dtype=torch.int64) % 251 + 1).to(torch.float32)
        x = p * float(args.rank + 1)
        dist.all_reduce(x)
        ncclpair.sync(torch)
        fresh_ok = bool(torch.equal(x, p * 3.0))
        del x

        iters, warm = iters_for(size, args), args.warmup
        y = p.clone() if args.rank == 0 else torch.zeros_like(p)
        for _ in range(warm):
            dist.all_reduce(y)
        ncclpair.sync(torch)
        t0 = time.perf_counter()
        for _ in range(iters):
            dist.all_reduce(y)
        ncclpair.sync(torch)
        dt = (time.perf_counter() - t0) / iters
        timed_ok = bool(torch.equal(y, p * float(2 ** (warm + iters - 1))))
        nbytes = n * 4
        algbw = nbytes / dt / 1e9
        res.append({"bytes": nbytes, "iters": iters, "time_us": dt * 1e6,
                    "algbw_GBps": algbw, "busbw_GBps": algbw * 2 * (2 - 1) / 2,
                    "checked": fresh_ok and timed_ok, "fresh_ok": fresh_ok,
                    "timed_ok": timed_ok})
        del y, p
        if not (fresh_ok and timed_ok):
            break
    out = {"rank": args.rank, "results": res, "nccl_lib": ncclpair.loaded_nccl_lib()}
    ncclpair.write_json(args.out, out)
    dist.destroy_process_group()
    bad = [r["bytes"] for r in res if not r["checked"]]
    if bad:
        ncclpair.fail("rank %d: wrong all_reduce result at %d bytes" % (args.rank, bad[0]))
    return 0


def fmt_bytes(b):
    for unit, div in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if b >= div and b % div == 0:
            return "%d%s" % (b // div, unit)
    return str(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--plugin", help="path to libnccl-net-devmem.so")
    ap.add_argument("--min-bytes", type=parse_size, default=8)
    ap.add_argument("--max-bytes", type=parse_size, default=256 << 20)
    ap.add_argument("--factor", type=int, default=4)
    ap.add_argument("--iters", type=int, default=0, help="timed ops per size (default: by size)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--nets", default="devmem,Socket")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per transport")
    ap.add_argument("--json-out")
    ap.add_argument("--keep", action="store_true", help="keep the scratch dir (logs)")
    ap.add_argument("--require-goal", action="store_true")
    # worker side
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rank", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.factor < 2 or args.min_bytes < 4 or args.max_bytes < args.min_bytes:
        ap.error("need --factor >= 2 and 4 <= --min-bytes <= --max-bytes")
    if args.iters and args.iters + args.warmup > 100:
        ap.error("--iters + --warmup must stay <= 100 (the timed check stays exact)")
    if args.worker:
        return worker(args)

    torch = ncclpair.require_torch_cuda()
    nets = [n for n in args.nets.split(",") if n]
    for n in nets:
        if n not in ncclpair.NETS:
            ap.error("--nets: %s is not one of %s" % (n, ",".join(ncclpair.NETS)))
    plugin = ncclpair.check_plugin_path(args.plugin) if "devmem" in nets else None
    version, wheel_lib = ncclpair.nccl_info(torch)
    print("PyTorch %s, NCCL %s (wheel lib: %s), GPU: %s" % (
        torch.__version__, version, wheel_lib, ncclpair.device_name(torch)), flush=True)
    if plugin:
        print("plugin: %s" % plugin, flush=True)

    workdir, cleanup = ncclpair.scratch_dir(args.keep)
    runs, failures = {}, []
    for net in nets:
        t0 = time.monotonic()
        ok, info, results = ncclpair.run_pair(os.path.abspath(__file__), sys.argv[1:], net,
                                              plugin, workdir, args.timeout)
        secs = time.monotonic() - t0
        if ok and not all(i["using_line"] for i in info):
            ok = False
            info[0]["warnings"].insert(0, "NCCL never logged 'Using network %s'" % net)
        runs[net] = {"ok": ok, "seconds": round(secs, 1), "results": results[0] if ok else None,
                     "evidence": [{k: i[k] for k in ("using_line", "loaded_line",
                                                      "plugin_lines")} for i in info],
                     "nccl_lib": results[0]["nccl_lib"] if results[0] else None,
                     "nccl_lib_is_GPUD_NCCL_LIB": ncclpair.nccl_lib_check(
                         results[0]["nccl_lib"] if results[0] else None)}
        if ok:
            print("%s: %d sizes checked in %.0f s; %s" % (
                net, len(results[0]["results"]), secs, info[0]["using_line"]), flush=True)
            if info[0]["loaded_line"]:
                print("  " + info[0]["loaded_line"], flush=True)
        else:
            failures.append(net)
            print("%s: FAILED\n%s" % (net, ncclpair.explain_failure(net, info)), flush=True)
            runs[net]["error"] = ncclpair.explain_failure(net, info)
            args.keep = True

    table, goal_ok = [], True
    if all(runs.get(n, {}).get("ok") for n in nets):
        per = {n: {r["bytes"]: r for r in runs[n]["results"]["results"]} for n in nets}
        print("\n%10s %6s" % ("bytes", "iters") +
              "".join(" %14s" % ("%s busbw GB/s" % n) for n in nets) +
              ("  %7s %s" % ("ratio", "goal") if len(nets) == 2 else ""))
        for b in sorted(per[nets[0]]):
            row = {"bytes": b}
            line = "%10s %6d" % (fmt_bytes(b), per[nets[0]][b]["iters"])
            for n in nets:
                row["%s_busbw_GBps" % n] = per[n][b]["busbw_GBps"]
                row["%s_time_us" % n] = per[n][b]["time_us"]
                line += " %14.3f" % per[n][b]["busbw_GBps"]
            if nets == ["devmem", "Socket"]:
                ratio = per["devmem"][b]["busbw_GBps"] / per["Socket"][b]["busbw_GBps"]
                row["ratio"] = ratio
                judged = b >= GOAL_FROM
                row["goal_met"] = (ratio >= GOAL_RATIO) if judged else None
                goal_ok &= (not judged) or ratio >= GOAL_RATIO
                line += "  %7.2f %s" % (ratio, "-" if not judged else
                                         "ok" if ratio >= GOAL_RATIO else "BELOW")
            table.append(row)
            print(line)
    summary = {"world_size": 2, "gpu": ncclpair.device_name(torch),
               "torch": torch.__version__, "nccl": version, "wheel_nccl_lib": wheel_lib,
               "plugin": plugin, "nets": nets, "runs": runs, "table": table,
               "goal": {"ratio": GOAL_RATIO, "from_bytes": GOAL_FROM,
                        "met": goal_ok if table and len(nets) == 2 else None},
               "mode": os.environ.get("NCCL_DEVMEM_MODE", "copy"),
               "logs": workdir if args.keep else None}
    ncclpair.result_out(os.environ.get("GPUD_RESULT_NAME", "nccl_allreduce_gpu"), summary,
                        args.json_out)
    if not args.keep:
        cleanup()
    else:
        print("logs kept in %s" % workdir)
    if failures:
        ncclpair.fail("all_reduce over %s failed (details above)" % ", ".join(failures))
    if args.require_goal and not goal_ok:
        ncclpair.fail("devmem/Socket busbw ratio below %.1f at >= 1 MiB" % GOAL_RATIO)
    ncclpair.selftest_end()
    print("PASS: every all_reduce result checked over %s%s" % (
        " and ".join(nets), "" if goal_ok else "; busbw goal NOT met (see table)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
