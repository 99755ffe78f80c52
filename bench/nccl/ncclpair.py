# SPDX-License-Identifier: MIT
"""Two NCCL ranks on one GPU, talking through the network.

NCCL refuses two ranks on one GPU only when they share the host hash and the
bus id ("Duplicate GPU detected"). NCCL_HOSTID replaces the host hash, so two
processes with different NCCL_HOSTID values look like two nodes with one GPU
each, and with NCCL_P2P_DISABLE=1 NCCL_SHM_DISABLE=1 their traffic has to go
through the network transport: NCCL_NET=devmem (our plugin, loaded from
NCCL_NET_PLUGIN=<path>; NCCL fails rather than fall back when the named net
is missing) or NCCL_NET=Socket (NCCL's own TCP transport, the baseline).

Both ranks talk over the loopback interface (NCCL_SOCKET_IFNAME=lo,
NCCL_DEVMEM_IFNAME=lo): the machine these checks run on may have no other
interface, and the two transports then cross the same path. Loopback has no
devmem, so the plugin runs in copy mode (NCCL_DEVMEM_MODE=copy unless the
caller set it). Rendezvous goes through a torch FileStore in a scratch
directory.

Used by allreduce.py and ddp_check.py: the parent process calls run_pair()
once per transport; each child re-runs the same script with --worker.
"""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

EXIT_PASS, EXIT_FAIL, EXIT_SKIP = 0, 1, 77
NETS = ("devmem", "Socket")

# GPUD_NCCL_SELFTEST=gloo: the same processes, data and checks with gloo on
# the CPU, to test these scripts where there is no GPU. Not NCCL, not the
# plugin: such a run says so on every line that matters and writes nothing
# to $GPUD_GPU_RESULTS. Never set by ctest or gpu-check.sh.
SELFTEST = os.environ.get("GPUD_NCCL_SELFTEST") == "gloo"


def skip(reason):
    print("SKIP: " + reason, flush=True)
    sys.exit(EXIT_SKIP)


def fail(reason):
    print("FAIL: " + reason, flush=True)
    sys.exit(EXIT_FAIL)


def require_torch_cuda():
    """Returns torch, or skips (77) saying what is missing."""
    if SELFTEST:
        import torch
        return torch
    try:
        import torch
        import torch.distributed as dist
    except Exception as e:  # ImportError, or a broken install
        skip("no PyTorch in %s: %s" % (sys.executable, e))
    if not torch.cuda.is_available():
        skip("PyTorch %s sees no CUDA device (torch.cuda.is_available() is False)"
             % torch.__version__)
    if not dist.is_available() or not dist.is_nccl_available():
        skip("PyTorch %s has no NCCL backend" % torch.__version__)
    return torch


def nccl_info(torch):
    """NCCL version PyTorch reports and the libnccl.so.2 its wheel ships."""
    try:
        v = torch.cuda.nccl.version()
        version = ".".join(str(x) for x in v) if isinstance(v, tuple) else str(v)
    except Exception as e:
        version = "unknown (%s)" % e
    lib = None
    try:
        import nvidia.nccl
        for d in list(getattr(nvidia.nccl, "__path__", [])):
            hits = glob.glob(os.path.join(d, "lib", "libnccl.so*"))
            if hits:
                lib = sorted(hits)[0]
                break
    except Exception:
        pass
    return version, lib


def selftest_end():
    """A SELFTEST that got here passed its checks, yet it is no GPU result: skip."""
    if SELFTEST:
        skip("SELFTEST (gloo on the CPU) passed its checks; this is no NCCL, plugin or "
             "GPU result")


def sync(torch):
    if not SELFTEST:
        torch.cuda.synchronize()


def device_name(torch):
    return "cpu (SELFTEST: gloo, no GPU)" if SELFTEST else torch.cuda.get_device_name(0)


def nccl_lib_check(lib):
    """Whether the libnccl the ranks mapped is the one GPUD_NCCL_LIB names (None: unset)."""
    want = os.environ.get("GPUD_NCCL_LIB")
    if not want or not lib:
        return None
    return os.path.realpath(want) == os.path.realpath(lib)


def loaded_nccl_lib():
    """The libnccl this process mapped (call after NCCL was initialised)."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                if "libnccl.so" in line:
                    return line.split()[-1]
    except OSError:
        pass
    return None


def rank_env(rank, net, plugin):
    env = dict(os.environ)
    env["NCCL_HOSTID"] = "gpud-check-host%d" % rank
    env["NCCL_P2P_DISABLE"] = "1"
    env["NCCL_SHM_DISABLE"] = "1"
    env["NCCL_NET"] = net
    env["NCCL_DEBUG"] = "INFO"
    env.setdefault("NCCL_DEBUG_SUBSYS", "INIT,NET,ENV")
    env.setdefault("NCCL_SOCKET_IFNAME", "lo")
    env.setdefault("NCCL_IB_DISABLE", "1")
    if net == "devmem":
        env["NCCL_NET_PLUGIN"] = plugin
        env.setdefault("NCCL_DEVMEM_IFNAME", "lo")
        env.setdefault("NCCL_DEVMEM_MODE", "copy")
    else:
        # no external plugin at all: NCCL's internal Socket transport
        env["NCCL_NET_PLUGIN"] = "none"
    return env


# What NCCL 2.28 (and 2.29/2.30) log when a net is in use; the first must be
# there for the run to count as "over that net".
USING_RE = {net: re.compile(r"Using network %s\b" % re.escape(net)) for net in NETS}
LOADED_RE = re.compile(r"NET/Plugin: Loaded net plugin devmem \(v\d+\)")
PLUGIN_LINE_RE = re.compile(r"NET/devmem : .*")
WARN_RE = re.compile(r"(NCCL WARN .*|Duplicate GPU.*|ncclInternalError.*|ncclSystemError.*"
                     r"|ncclInvalidUsage.*|Traceback.*|\w+Error: .*|FAIL: .*)")


def scan_log(text, net):
    """Evidence that NCCL used @net, plus its warnings."""
    if SELFTEST:
        text += "\nUsing network %s (SELFTEST stand-in: gloo, not NCCL)\n" % net
    using = USING_RE[net].search(text)
    loaded = LOADED_RE.search(text) if net == "devmem" else None
    plugin = PLUGIN_LINE_RE.findall(text) if net == "devmem" else []
    return {
        "using_line": using.group(0) if using else None,
        "loaded_line": loaded.group(0) if loaded else None,
        "plugin_lines": plugin[:6],
        "warnings": sorted(set(WARN_RE.findall(text)))[:12],
    }


def run_pair(script, worker_args, net, plugin, workdir, timeout):
    """Starts rank 0 and 1 of @script --worker; returns (ok, per-rank info, results).

    Each rank writes its results as JSON to <workdir>/<net>-rank<r>.json.
    """
    store = os.path.join(workdir, "store-%s" % net)
    procs, logs = [], []
    for rank in range(2):
        log = open(os.path.join(workdir, "%s-rank%d.log" % (net, rank)), "w+")
        out = os.path.join(workdir, "%s-rank%d.json" % (net, rank))
        cmd = [sys.executable, script, "--worker", "--rank", str(rank), "--store", store,
               "--out", out] + worker_args
        procs.append(subprocess.Popen(cmd, env=rank_env(rank, net, plugin), stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True))
        logs.append(log)
    deadline = time.monotonic() + timeout
    rcs = [None, None]
    while None in rcs:
        for i, p in enumerate(procs):
            if rcs[i] is None:
                rcs[i] = p.poll()
        if None in rcs and time.monotonic() > deadline:
            for i, p in enumerate(procs):
                if rcs[i] is None:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
                    rcs[i] = "timeout after %d s" % timeout
        # one rank dead: give the other a moment, then stop it (it may hang in NCCL)
        if None in rcs and any(isinstance(r, int) and r != 0 for r in rcs):
            deadline = min(deadline, time.monotonic() + 20)
        time.sleep(0.2)
    info, results = [], []
    for rank in range(2):
        logs[rank].seek(0)
        text = logs[rank].read()
        logs[rank].close()
        i = scan_log(text, net)
        i["rc"] = rcs[rank]
        i["log"] = os.path.join(workdir, "%s-rank%d.log" % (net, rank))
        info.append(i)
        try:
            with open(os.path.join(workdir, "%s-rank%d.json" % (net, rank))) as f:
                results.append(json.load(f))
        except (OSError, ValueError):
            results.append(None)
    ok = all(i["rc"] == 0 for i in info) and all(r is not None for r in results)
    return ok, info, results


def explain_failure(net, info):
    """A few lines saying why a pair failed: exit codes and NCCL's warnings."""
    lines = []
    for rank, i in enumerate(info):
        lines.append("  %s rank %d: exit %s (log %s)" % (net, rank, i["rc"], i["log"]))
        for w in i["warnings"][:6]:
            lines.append("    " + w)
        if net == "devmem" and not i["loaded_line"]:
            lines.append("    NCCL did not log 'NET/Plugin: Loaded net plugin devmem'")
        try:
            with open(i["log"]) as f:
                tail = f.read().splitlines()[-25:]
            lines.append("    --- last lines of the log ---")
            lines += ["    " + t for t in tail]
        except OSError:
            pass
    return "\n".join(lines)


def init_worker(torch, args):
    """In a child: joins the two-rank NCCL group on cuda:0. Returns (dist, device)."""
    import datetime
    import torch.distributed as dist
    store = dist.FileStore(args.store, 2)
    timeout = datetime.timedelta(seconds=120)
    if SELFTEST:
        dev = torch.device("cpu")
        dist.init_process_group("gloo", store=store, rank=args.rank, world_size=2,
                                timeout=timeout)
    else:
        torch.cuda.set_device(0)
        dev = torch.device("cuda", 0)
        dist.init_process_group("nccl", store=store, rank=args.rank, world_size=2,
                                timeout=timeout, device_id=dev)
    # a first collective makes NCCL build its communicator (and log its net) now
    t = torch.ones(1, device=dev)
    dist.all_reduce(t)
    sync(torch)
    if t.item() != 2.0:
        fail("warm-up all_reduce gave %r, expected 2.0" % t.item())
    return dist, dev


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def result_out(name, obj, json_out):
    """Prints RESULT <name> <json>; writes it to @json_out and $GPUD_GPU_RESULTS."""
    if SELFTEST:
        obj = dict(obj, selftest="gloo on the CPU: not NCCL, not the plugin, no GPU")
    text = json.dumps(obj)
    paths = [json_out] if json_out else []
    d = os.environ.get("GPUD_GPU_RESULTS")
    if d and not SELFTEST:
        paths.append(os.path.join(d, name + ".json"))
    for p in paths:
        write_json(p, obj)
    if len(text) > 1500:
        text = "(%d bytes of JSON%s)" % (len(text), ": " + ", ".join(paths) if paths else
                                         "; pass --json-out FILE to keep it")
    print("RESULT %s %s" % (name, text), flush=True)


def scratch_dir(keep):
    d = tempfile.mkdtemp(prefix="gpud-nccl-")
    return d, (lambda: None) if keep else (lambda: shutil.rmtree(d, ignore_errors=True))


def check_plugin_path(plugin):
    if not plugin or not os.path.isfile(plugin):
        fail("plugin %r not found (build the nccl-net-devmem target, or pass --plugin)"
             % plugin)
    return os.path.abspath(plugin)
