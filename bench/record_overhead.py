"""Benchmark: the overhead `mcp-forensics record` adds to MCP traffic.

    bash bench/run.sh record [--calls 2000] [--concurrency 8] [--repeat 3] [--json PATH]
    .venv/bin/python bench/record_overhead.py --bin PATH [options]     (no build)

An official MCP SDK client talks to an official SDK server (the `echo(text)`
tool of tests/harness/echo_mcp_server.py, which returns its input) in this one
run, for each transport and path:

    stdio  direct   the client spawns the server
    stdio  record   the client spawns `record --out DIR -- SERVER`
    stdio  sync     the same with `record --sync`
    http   direct   the client posts to the server's Streamable HTTP endpoint
    http   record   ... through `record --listen 127.0.0.1:P --upstream URL`
    http   sync     the same with `record --sync`

Each run starts fresh processes and a fresh `--out` directory, connects a
`ClientSession`, `initialize`s, lists the tools, warms up, then

1. latency: `--calls` sequential `call_tool("echo", {"text": payload})` round
   trips (payload `--payload-bytes` of UTF-8, unique per call, checked on the
   way back: a changed response is an error), p50/p99 in µs;
2. throughput: `--concurrency` callers on the same session sharing
   `--throughput-calls` calls, in calls/s.

`--repeat R` runs every configuration R times (interleaved) and reports the
median of p50, p99 and throughput across runs; "+p50"/"+p99" are the added
latency against `direct` on the same transport. `--json PATH` writes the
figures, every run, and the machine:
`{"machine", "settings", "results": [{"transport", "path", "p50_us", "p99_us",
"added_p50_us", "added_p99_us", "throughput_cps", "runs": [...]}], "failures"}`.

The client and the server share the machine with the recorder, so the figures
are the recorder's cost on a loaded host, not on an idle one; compare rows of
one run, not runs of different machines.
"""
from __future__ import annotations

import argparse
import atexit
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import anyio
import mcp.client.stdio as sdk_stdio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parents[1]
ECHO_SERVER = ROOT / "tests" / "harness" / "echo_mcp_server.py"
TRANSPORTS = ("stdio", "http")
PATHS = ("direct", "record", "sync")
PATH_LABEL = {"direct": "direct", "record": "record", "sync": "record --sync"}


# --------------------------------------------------------------------------
# Processes: every child is the leader of its own process group, killed (the
# whole group) when its run ends, on error, on SIGTERM/SIGINT and at exit.

_popen: list[subprocess.Popen] = []     # HTTP servers and recorders we start
_stdio_procs: list = []                  # what the SDK's stdio_client spawns

_sdk_spawn = getattr(sdk_stdio, "_create_platform_compatible_process", None)
if _sdk_spawn is not None:
    # stdio_client already spawns into a new session and kills its tree on
    # exit; keeping a handle adds the exit status and a last-resort kill.
    async def _tracked_spawn(*a, **kw):
        proc = await _sdk_spawn(*a, **kw)
        _stdio_procs.append(proc)
        return proc

    sdk_stdio._create_platform_compatible_process = _tracked_spawn


def group_alive(pgid: int) -> list[int]:
    """PIDs of live (not zombie) processes in process group `pgid`."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        try:
            os.killpg(pgid, 0)
            return [pgid]
        except OSError:
            return []
    pids = []
    for e in entries:
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(e))
    return pids


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def spawn(cmd: list[str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as f:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                             start_new_session=True)
    _popen.append(p)
    return p


def stop(p: subprocess.Popen, grace: float = 5.0) -> dict:
    """SIGTERM the group, SIGKILL after `grace` s; the leader's exit status and
    whether it had to be killed."""
    killed = False
    if p.poll() is None:
        kill_group(p.pid, signal.SIGTERM)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            killed = True
            kill_group(p.pid, signal.SIGKILL)
            p.wait()
    kill_group(p.pid)  # stragglers the leader left in its group
    if p in _popen:
        _popen.remove(p)
    return {"exit": p.returncode, "sigkilled": killed}


def kill_all() -> None:
    for p in list(_popen):
        kill_group(p.pid)
        try:
            p.wait(2)
        except Exception:
            pass
    _popen.clear()
    for proc in _stdio_procs:
        kill_group(proc.pid)
    _stdio_procs.clear()


atexit.register(kill_all)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, n: int = 20) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    return "\n".join("    | " + line for line in lines[-n:]) if lines else "    (nothing)"


async def wait_port(port: int, proc: subprocess.Popen, what: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}) before listening on 127.0.0.1:{port}\n{tail(log)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not listening on 127.0.0.1:{port} after {timeout:.0f} s\n{tail(log)}")
        await anyio.sleep(0.05)


# --------------------------------------------------------------------------
# Measurement

def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


class Payloads:
    """`--payload-bytes` of UTF-8 per call, unique (the call's number first), with
    characters JSON escapes (quote, backslash, newline, tab) and non-ASCII ones,
    so a proxy that re-encodes what it forwards shows up as a changed echo."""

    FILLER = 'MCP echo \u00e9t\u00e9 "quoted" back\\slash\ttab\nline \u2713 lorem ipsum dolor sit amet; '

    def __init__(self, nbytes: int):
        prefix_len = len("#0000000 ")
        body, size = [], 0
        target = max(0, nbytes - prefix_len)
        while size < target:
            for ch in self.FILLER:
                b = len(ch.encode())
                if size + b > target:
                    break
                body.append(ch)
                size += b
            else:
                continue
            break
        self.body = "".join(body)

    def __call__(self, i: int) -> str:
        return f"#{i % 10_000_000:07d} {self.body}"


class ChangedResponse(RuntimeError):
    pass


def check(r, text: str) -> None:
    content = getattr(r, "content", None) or []
    got = getattr(content[0], "text", None) if content else None
    if getattr(r, "is_error", False) or got != text:
        what = "an error" if getattr(r, "is_error", False) else "changed"
        raise ChangedResponse(f"the echo of call {text[:8]} came back {what}\n    got      {got!r}\n"
                              f"    expected {text!r}\n    result   {r!r:.1000}")


async def echo(session: ClientSession, text: str, timeout: float) -> None:
    check(await session.call_tool("echo", {"text": text}, read_timeout_seconds=timeout), text)


async def exercise(session: ClientSession, a: argparse.Namespace) -> dict:
    phase = ["initialize"]
    try:
        return await _exercise(session, a, phase)
    except BaseException as e:
        e.add_note(f"(while {phase[0]})")
        raise


async def _exercise(session: ClientSession, a: argparse.Namespace, phase: list[str]) -> dict:
    payload = Payloads(a.payload_bytes)
    with anyio.fail_after(a.timeout):
        init = await session.initialize()
        tools = await session.list_tools()
    if "echo" not in [t.name for t in tools.tools]:
        raise RuntimeError(f"the server lists no echo tool: {[t.name for t in tools.tools]}")
    phase[0] = "warming up"
    n = 0
    for _ in range(a.warmup):
        phase[0] = f"warming up: call {n} of {a.warmup}"
        await echo(session, payload(n), a.timeout)
        n += 1

    lat_ns = []
    t_start = time.perf_counter()
    for k in range(a.calls):
        phase[0] = f"timing latency: call {k} of {a.calls} (#{n})"
        text = payload(n)
        n += 1
        t0 = time.perf_counter_ns()
        r = await session.call_tool("echo", {"text": text}, read_timeout_seconds=a.timeout)
        lat_ns.append(time.perf_counter_ns() - t0)
        check(r, text)
    latency_wall = time.perf_counter() - t_start

    total = a.throughput_calls
    next_i = [0]

    async def caller() -> None:
        while next_i[0] < total:
            i = next_i[0]
            next_i[0] += 1
            await echo(session, payload(n + i), a.timeout)

    phase[0] = f"timing throughput: {a.concurrency} callers, {total} calls from #{n}"
    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(a.concurrency):
            tg.start_soon(caller)
    elapsed = time.perf_counter() - t0

    us = sorted(x / 1000 for x in lat_ns)
    return {
        "protocol_version": getattr(init, "protocol_version", None),
        "p50_us": percentile(us, 0.50),
        "p99_us": percentile(us, 0.99),
        "mean_us": statistics.fmean(us),
        "min_us": us[0],
        "max_us": us[-1],
        "sequential_cps": a.calls / latency_wall,
        "throughput_cps": total / elapsed,
        "throughput_s": elapsed,
    }


def out_stats(outdir: Path) -> dict:
    files = [p for p in outdir.rglob("*") if p.is_file()]
    return {"out_files": len(files), "out_jsonl": sum(1 for p in files if p.suffix == ".jsonl"),
            "out_bytes": sum(p.stat().st_size for p in files)}


def record_args(a: argparse.Namespace, path: str, outdir: Path) -> list[str]:
    return [str(a.bin), "record", "--out", str(outdir), "--server-name", "echo"] + (["--sync"] if path == "sync" else [])


async def run_stdio(a: argparse.Namespace, path: str, work: Path, tag: str) -> dict:
    outdir = work / f"{tag}.out"
    outdir.mkdir()
    server = [sys.executable, str(ECHO_SERVER)]
    cmd = server if path == "direct" else record_args(a, path, outdir) + ["--"] + server
    errlog_path = work / f"{tag}.stderr"
    before = len(_stdio_procs)
    proc = None
    info: dict = {"command": cmd}
    try:
        with open(errlog_path, "w") as errlog:
            params = StdioServerParameters(command=cmd[0], args=cmd[1:], cwd=str(work))
            async with stdio_client(params, errlog=errlog) as (read, write):
                proc = _stdio_procs[before] if len(_stdio_procs) > before else None
                async with ClientSession(read, write) as session:
                    info.update(await exercise(session, a))
                t_close = time.perf_counter()
            # The client closed stdin and waited; the SDK kills after 2 s.
            info["close_s"] = time.perf_counter() - t_close
    except BaseException as e:
        e.add_note(f"{tag}: stderr of {cmd[0]}:\n{tail(errlog_path)}")
        raise
    finally:
        if proc is not None:
            # Anything the leader left running in its group once it is gone.
            deadline = time.monotonic() + 2
            while (left := group_alive(proc.pid)) and time.monotonic() < deadline:
                await anyio.sleep(0.05)
            info["exit"] = proc.returncode
            info["left_running"] = left
            kill_group(proc.pid)
    info.update(out_stats(outdir))
    return info


async def run_http(a: argparse.Namespace, path: str, work: Path, tag: str) -> dict:
    outdir = work / f"{tag}.out"
    outdir.mkdir()
    sport = free_port()
    server_cmd = [sys.executable, str(ECHO_SERVER), "--http", f"127.0.0.1:{sport}"] + (["--stateless"] if a.stateless else [])
    server_log, rec_log = work / f"{tag}.server.log", work / f"{tag}.record.log"
    info: dict = {"server_command": server_cmd}
    server = spawn(server_cmd, server_log)
    recorder = None
    try:
        await wait_port(sport, server, "the echo server", server_log, a.startup_timeout)
        url = f"http://127.0.0.1:{sport}/mcp"
        if path != "direct":
            pport = free_port()
            cmd = record_args(a, path, outdir) + ["--listen", f"127.0.0.1:{pport}", "--upstream", url]
            info["command"] = cmd
            recorder = spawn(cmd, rec_log)
            await wait_port(pport, recorder, "the recorder", rec_log, a.startup_timeout)
            url = f"http://127.0.0.1:{pport}/mcp"
        try:
            async with streamable_http_client(url) as (read, write):
                async with ClientSession(read, write) as session:
                    info.update(await exercise(session, a))
                t_close = time.perf_counter()
            info["close_s"] = time.perf_counter() - t_close
        except BaseException as e:
            if recorder is not None:
                e.add_note(f"{tag}: output of the recorder:\n{tail(rec_log)}")
            e.add_note(f"{tag}: output of the echo server:\n{tail(server_log)}")
            raise
    finally:
        if recorder is not None:
            st = stop(recorder)
            info["exit"], info["sigkilled"] = st["exit"], st["sigkilled"]
        stop(server)
    info.update(out_stats(outdir))
    return info


def leaves(e: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups."""
    if isinstance(e, BaseExceptionGroup):
        return [x for sub in e.exceptions for x in leaves(sub)]
    return [e]


def describe(e: BaseException) -> str:
    """What went wrong, one line per underlying exception, then the notes (the
    processes' output) once."""
    lines, notes = [], []
    for x in [e] + (leaves(e) if isinstance(e, BaseExceptionGroup) else []):
        notes += [n for n in getattr(x, "__notes__", []) if n not in notes]
        if isinstance(x, BaseExceptionGroup):
            continue
        text = f"{type(x).__name__}: {x}" if str(x) else (type(x).__name__ + f" (in {traceback.extract_tb(x.__traceback__)[-1].name})"
                                                          if x.__traceback__ else type(x).__name__)
        if text not in lines:
            lines.append(text)
    return "\n".join(lines + notes)


def warnings_of(path: str, run: dict) -> list[str]:
    w = []
    if path == "direct":
        return w
    if run.get("out_jsonl", 0) == 0:
        w.append(f"wrote no *.jsonl ({run.get('out_files', 0)} files, {run.get('out_bytes', 0)} bytes in --out)")
    if run.get("left_running"):
        w.append(f"processes left running in its group after it ended: {run['left_running']}")
    if run.get("sigkilled"):
        w.append("did not exit within 5 s of SIGTERM (killed)")
    if "exit" in run and run["exit"] not in (0, None) and not (run.get("transport") == "http" and run["exit"] in (-15, 143, 130, -2)):
        w.append(f"exit status {run['exit']}")
    if run.get("close_s", 0) > 1.5:
        w.append(f"closing took {run['close_s']:.1f} s")
    return w


# --------------------------------------------------------------------------
# Report

def fmt(v, spec: str = ".0f", sign: bool = False) -> str:
    if v is None or v != v:
        return "-"
    return format(v, ("+" if sign else "") + spec)


def summarize(results: dict, configs: list[tuple[str, str]]) -> list[dict]:
    rows = []
    for transport, path in configs:
        runs = results.get((transport, path), [])
        row = {"transport": transport, "path": path, "label": PATH_LABEL[path], "runs": runs}
        if runs:
            for k in ("p50_us", "p99_us", "mean_us", "throughput_cps", "sequential_cps"):
                row[k] = statistics.median(r[k] for r in runs)
        rows.append(row)
    for row in rows:
        base = next((r for r in rows if r["transport"] == row["transport"] and r["path"] == "direct"), None)
        ok = base is not None and "p50_us" in base and "p50_us" in row
        row["added_p50_us"] = row["p50_us"] - base["p50_us"] if ok and row["path"] != "direct" else None
        row["added_p99_us"] = row["p99_us"] - base["p99_us"] if ok and row["path"] != "direct" else None
        row["throughput_vs_direct"] = (row["throughput_cps"] / base["throughput_cps"] - 1) \
            if ok and row["path"] != "direct" else None
    return rows


def table(rows: list[dict], failures: dict) -> str:
    head = ["transport", "path", "p50 µs", "p99 µs", "+p50 µs", "+p99 µs", "calls/s", "vs direct", "runs"]
    body = []
    for r in rows:
        if "p50_us" not in r:
            err = failures.get((r["transport"], r["path"]), ["?"])[0].splitlines()[0]
            body.append([r["transport"], r["label"], "FAILED: " + err[:90]])
            continue
        body.append([r["transport"], r["label"], fmt(r["p50_us"]), fmt(r["p99_us"]),
                     fmt(r["added_p50_us"], sign=True), fmt(r["added_p99_us"], sign=True),
                     fmt(r["throughput_cps"]),
                     fmt(None if r["throughput_vs_direct"] is None else 100 * r["throughput_vs_direct"], "+.1f")
                     + ("%" if r["throughput_vs_direct"] is not None else ""),
                     str(len(r["runs"]))])
    full = [b for b in body if len(b) == len(head)]
    width = [max(len(x[i]) for x in [head] + full) for i in range(len(head))]
    for i in (0, 1):
        width[i] = max([width[i]] + [len(b[i]) for b in body])
    left = {0, 1}

    def line(cells):
        if len(cells) != len(head):
            return "  ".join([cells[0].ljust(width[0]), cells[1].ljust(width[1]), cells[2]])
        return "  ".join(c.ljust(width[i]) if i in left else c.rjust(width[i]) for i, c in enumerate(cells))

    out = [line(head), "  ".join("-" * w for w in width)]
    prev = None
    for b in body:
        if prev is not None and b[0] != prev:
            out.append("")
        out.append(line(b))
        prev = b[0]
    return "\n".join(out)


def machine(a: argparse.Namespace) -> dict:
    m = {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "mcp_sdk": importlib.metadata.version("mcp"),
        "anyio": importlib.metadata.version("anyio"),
        "bin": str(a.bin),
        "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    try:
        st = a.bin.stat()
        m["bin_size"] = st.st_size
        m["bin_mtime"] = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(st.st_mtime))
    except OSError:
        m["bin_size"] = None
    return m


def default_bin() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR") or str(Path.home() / ".cache" / "mcp-forensics" / "target")
    return Path(target) / "release" / "mcp-forensics"


def csv_choice(allowed: tuple[str, ...]):
    def parse(s: str) -> list[str]:
        vals = [v.strip() for v in s.split(",") if v.strip()]
        bad = [v for v in vals if v not in allowed]
        if bad or not vals:
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)}; got {s!r}")
        return vals
    return parse


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[2:]))
    ap.add_argument("--bin", type=Path, default=default_bin(),
                    help="the mcp-forensics binary (default $CARGO_TARGET_DIR/release/mcp-forensics, "
                         "CARGO_TARGET_DIR defaulting to ~/.cache/mcp-forensics/target)")
    ap.add_argument("--calls", type=int, default=2000, help="sequential calls timed for latency (default 2000)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed calls first (default min(200, calls/10), at least 20)")
    ap.add_argument("--concurrency", type=int, default=8, help="concurrent callers for throughput (default 8)")
    ap.add_argument("--throughput-calls", type=int, default=None, help="calls shared by the callers (default --calls)")
    ap.add_argument("--payload-bytes", type=int, default=200, help="UTF-8 bytes of echo text per call (default 200)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per configuration; medians are reported (default 1)")
    ap.add_argument("--transports", type=csv_choice(TRANSPORTS), default=list(TRANSPORTS), help="stdio,http (default both)")
    ap.add_argument("--paths", type=csv_choice(PATHS), default=list(PATHS), help="direct,record,sync (default all)")
    ap.add_argument("--stateless", action="store_true",
                    help="http: a stateless server with JSON responses (default: sessions, SSE responses)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds one call (or initialize) may take (default 30)")
    ap.add_argument("--startup-timeout", type=float, default=30.0, help="seconds for a port to open (default 30)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures, every run and the machine as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (recordings, logs)")
    a = ap.parse_args()
    if a.calls < 1 or a.concurrency < 1 or a.repeat < 1 or a.payload_bytes < 10:
        ap.error("--calls, --concurrency, --repeat must be >= 1 and --payload-bytes >= 10")
    if a.warmup is None:
        a.warmup = max(20, min(200, a.calls // 10))
    if a.throughput_calls is None:
        a.throughput_calls = a.calls
    a.bin = a.bin.expanduser().absolute()
    if any(p != "direct" for p in a.paths) and not os.access(a.bin, os.X_OK):
        ap.error(f"no executable recorder at {a.bin} (build it: cargo build --release -p mcp-forensics, "
                 f"or bash bench/run.sh record; or pass --bin, or --paths direct)")
    if any(p != "direct" for p in a.paths):
        try:
            probe = subprocess.run([str(a.bin), "record", "--help"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            ap.error(f"{a.bin} record --help: {e}")
        if probe.returncode != 0:
            ap.error(f"{a.bin} has no working `record` (stale build?): `record --help` exited {probe.returncode}: "
                     + (probe.stderr or probe.stdout).strip().splitlines()[0])

    # SIGTERM as SIGINT, and SIGINT handled even where it came in ignored (a
    # background job): the event loop cancels the run and every finally runs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))

    configs = [(t, p) for t in TRANSPORTS if t in a.transports for p in PATHS if p in a.paths]
    work = Path(tempfile.mkdtemp(prefix="mcpf-record-bench-"))
    results: dict = {}
    failures: dict = {}
    mach = machine(a)
    print(f"record overhead: {a.calls} calls + {a.throughput_calls} at concurrency {a.concurrency}, "
          f"{a.payload_bytes} B payload, {a.repeat} run(s) each; mcp {mach['mcp_sdk']}, "
          f"python {mach['python']}, {mach['cpu_count']} cpus; {a.bin}", file=sys.stderr)

    async def run_all() -> None:
        for rep in range(a.repeat):
            for transport, path in configs:
                tag = f"{transport}-{path}-{rep + 1}"
                label = f"{transport:5} {PATH_LABEL[path]:13} run {rep + 1}/{a.repeat}"
                runner = run_stdio if transport == "stdio" else run_http
                try:
                    r = await runner(a, path, work, tag)
                except Exception as e:  # noqa: BLE001 — reported, the other configurations still run
                    msg = describe(e)
                    failures.setdefault((transport, path), []).append(msg)
                    print(f"{label}: FAILED\n  {msg}", file=sys.stderr)
                    continue
                r["transport"], r["path"], r["run"] = transport, path, rep + 1
                r["warnings"] = warnings_of(path, r)
                results.setdefault((transport, path), []).append(r)
                print(f"{label}: p50 {r['p50_us']:.0f} µs  p99 {r['p99_us']:.0f} µs  "
                      f"{r['throughput_cps']:.0f} calls/s  ({r.get('out_bytes', 0)} B recorded)"
                      + "".join(f"\n  warning: {w}" for w in r["warnings"]), file=sys.stderr)

    try:
        anyio.run(run_all)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        kill_all()
        if a.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    rows = summarize(results, configs)
    print()
    print(table(rows, failures))
    warned = sorted({f"{t} {PATH_LABEL[p]}: {w}" for (t, p), runs in results.items() for r in runs for w in r["warnings"]})
    if warned:
        print("\nwarnings:\n" + "\n".join("  " + w for w in warned))
    if a.json:
        doc = {
            "machine": mach,
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items() if k != "json"},
            "results": [{k: v for k, v in r.items() if k != "label"} for r in rows],
            "failures": [{"transport": t, "path": p, "errors": errs} for (t, p), errs in failures.items()],
        }
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(doc, indent=2, default=str) + "\n")
        print(f"\nwrote {a.json}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
