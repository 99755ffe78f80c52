#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A small PyTorch DDP training run over our plugin, compared with NCCL's Socket.

Two ranks on one GPU as two "hosts" (see ncclpair.py) train a 2-layer MLP
(float32, fixed seed, fixed synthetic data: each rank its own batch) for a
few SGD steps under DistributedDataParallel, once with NCCL_NET=devmem
(our plugin) and once with NCCL_NET=Socket. Each rank records its loss per
step and a SHA-256 of its final parameters.

The two runs must agree EXACTLY, no tolerance: with two ranks every element
of an all-reduce is one float addition a + b, which is commutative and
correctly rounded, so whatever algorithm (ring, tree) or protocol (LL, LL128,
Simple) NCCL picks for either transport, the sum is bit-identical; DDP's
division by the world size (2) is exact too. The model's own kernels run with
torch.use_deterministic_algorithms(True) (warn_only: an op without a
deterministic kernel warns in the log instead of stopping the run; the exact
comparison still catches any difference it makes). Any difference means a transport
delivered different bytes. Also required: both ranks end with the same
parameters (DDP keeps replicas in sync), and the loss goes down.

Exit: 0 pass, 1 fail, 77 skipped (no PyTorch, no CUDA device, no NCCL).
"""

import argparse
import ctypes
import hashlib
import os
import sys
import time

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ncclpair  # noqa: E402


def worker(args):
    torch = ncclpair.require_torch_cuda()
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel as DDP
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dist, dev = ncclpair.init_worker(torch, args)

    torch.manual_seed(1234)
    model = nn.Sequential(nn.Linear(args.features, args.hidden), nn.ReLU(),
                          nn.Linear(args.hidden, args.classes)).to(dev)
    ddp = DDP(model, device_ids=None if ncclpair.SELFTEST else [0])
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(99 + args.rank)   # each rank its own data
    x = torch.randn(args.batch, args.features, generator=g).to(dev)
    y = torch.randint(0, args.classes, (args.batch,), generator=g).to(dev)
    lossf = nn.CrossEntropyLoss()
    losses = []
    for _ in range(args.steps):
        opt.zero_grad(set_to_none=True)
        loss = lossf(ddp(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    ncclpair.sync(torch)
    h = hashlib.sha256()
    for p in model.parameters():
        t = p.detach().cpu().contiguous()   # raw bytes without needing numpy
        h.update(ctypes.string_at(t.data_ptr(), t.numel() * t.element_size()))
    out = {"rank": args.rank, "losses": losses, "loss_hex": [float.hex(v) for v in losses],
           "params_sha256": h.hexdigest(), "nccl_lib": ncclpair.loaded_nccl_lib()}
    ncclpair.write_json(args.out, out)
    dist.destroy_process_group()
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--plugin", help="path to libnccl-net-devmem.so")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--features", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--timeout", type=int, default=300, help="seconds per transport")
    ap.add_argument("--json-out")
    ap.add_argument("--keep", action="store_true", help="keep the scratch dir (logs)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rank", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    torch = ncclpair.require_torch_cuda()
    plugin = ncclpair.check_plugin_path(args.plugin)
    version, wheel_lib = ncclpair.nccl_info(torch)
    print("PyTorch %s, NCCL %s (wheel lib: %s); plugin %s" % (
        torch.__version__, version, wheel_lib, plugin), flush=True)
    workdir, cleanup = ncclpair.scratch_dir(args.keep)
    runs, problems, details = {}, [], []
    for net in ncclpair.NETS:
        t0 = time.monotonic()
        ok, info, results = ncclpair.run_pair(os.path.abspath(__file__), sys.argv[1:], net,
                                              plugin, workdir, args.timeout)
        if ok and not all(i["using_line"] for i in info):
            ok = False
            info[0]["warnings"].insert(0, "NCCL never logged 'Using network %s'" % net)
        runs[net] = {"ok": ok, "seconds": round(time.monotonic() - t0, 1),
                     "ranks": results if ok else None,
                     "evidence": [{k: i[k] for k in ("using_line", "loaded_line")}
                                  for i in info],
                     "nccl_lib": results[0]["nccl_lib"] if results[0] else None,
                     "nccl_lib_is_GPUD_NCCL_LIB": ncclpair.nccl_lib_check(
                         results[0]["nccl_lib"] if results[0] else None)}
        if not ok:
            runs[net]["error"] = ncclpair.explain_failure(net, info)
            problems.append("training over %s failed" % net)
            details.append(runs[net]["error"])
            args.keep = True
            continue
        for r in results:
            print("%-6s rank %d losses %s" % (net, r["rank"],
                                               " ".join("%.7f" % v for v in r["losses"])))
        if results[0]["params_sha256"] != results[1]["params_sha256"]:
            problems.append("%s: the two ranks ended with different parameters" % net)
        for r in results:
            if not r["losses"][-1] < r["losses"][0]:
                problems.append("%s rank %d: loss did not go down (%r)" % (
                    net, r["rank"], r["losses"]))

    identical = None
    if all(runs[n]["ok"] for n in ncclpair.NETS):
        a, b = runs["devmem"]["ranks"], runs["Socket"]["ranks"]
        identical = all(a[r]["loss_hex"] == b[r]["loss_hex"] and
                        a[r]["params_sha256"] == b[r]["params_sha256"] for r in range(2))
        if not identical:
            for r in range(2):
                for s, (u, v) in enumerate(zip(a[r]["losses"], b[r]["losses"])):
                    if u != v:
                        problems.append("rank %d step %d: loss devmem %s vs Socket %s" % (
                            r, s, float.hex(u), float.hex(v)))
                        break
            problems.append("devmem and Socket runs differ (they must be bit-identical)")
    summary = {"steps": args.steps, "model": "Linear(%d,%d)-ReLU-Linear(%d,%d) float32" % (
                   args.features, args.hidden, args.hidden, args.classes),
               "torch": torch.__version__, "nccl": version, "plugin": plugin,
               "identical": identical, "runs": runs, "problems": problems,
               "logs": workdir if args.keep else None}
    ncclpair.result_out("nccl_ddp_gpu", summary, args.json_out)
    if not args.keep:
        cleanup()
    else:
        print("logs kept in %s" % workdir)
    if problems:
        ncclpair.fail("; ".join(problems) + ("\n" + "\n".join(details) if details else ""))
    ncclpair.selftest_end()
    print("PASS: %d DDP steps, per-step losses and final parameters bit-identical over "
          "devmem and Socket" % args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
