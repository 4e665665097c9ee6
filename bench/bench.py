"""Benchmark: ingest throughput and memory, and rule queries against DuckDB.

    bash bench/run.sh [--messages 50000 200000] [--repeat 3]

1. Generates deterministic synthetic data shaped like the real logs the tests
   use (Postfix lines as `sample-logs/postfix/mail.log` writes them, interleaved
   across messages; JSON-RPC wire records of an agent's `sendEmail` calls whose
   results return the message id), at two sizes, with a constant Bcc on part of
   the agent's mail.
2. Times `mcp-forensics ingest` (release build) into a fresh lake: wall time,
   MB/s and peak RSS at both sizes (memory must not grow with input).
3. Runs every rule of the catalogue over the same lake twice: by
   `mcp-forensics detect --rule` (DataFusion over Delta) and by DuckDB
   executing the *same SQL text* with the same bound parameters over the same
   Parquet files (where DuckDB's dialect accepts it), then the whole catalogue
   in one `detect`. Medians of `--repeat` runs and the ratio are printed as a
   table.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ATTACKER = "drop@exfil.example"


def generate(out: Path, messages: int, seed: int = 1) -> dict:
    """Write out/postfix/mail.log and out/wire/agent.jsonl."""
    rng = random.Random(seed)
    (out / "postfix").mkdir(parents=True, exist_ok=True)
    (out / "wire").mkdir(parents=True, exist_ok=True)
    domains = [f"d{i}.example" for i in range(400)]
    people = [f"user{i}@{domains[i % len(domains)]}" for i in range(5000)]
    senders = [f"staff{i}@corp.example" for i in range(40)] + ["agent@corp.example"]
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    span = timedelta(days=90)
    agent_calls = 0
    with open(out / "postfix" / "mail.log", "w") as mail, open(out / "wire" / "agent.jsonl", "w") as wire:
        pending: list[list[str]] = []  # message blocks, emitted interleaved
        rpc = 0
        session = None

        def initialize(iso: str, sid: str, version: str) -> None:
            req = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "agent", "version": "1"}}}
            res = {"jsonrpc": "2.0", "id": 0, "result": {"protocolVersion": "2025-06-18", "capabilities": {}, "serverInfo": {"name": "mailer", "version": version}}}
            for d, m in (("client_to_server", req), ("server_to_client", res)):
                wire.write(json.dumps({"ts": iso, "direction": d, "server": "mailer", "session": sid, "message": m}, separators=(",", ":")) + "\n")

        for n in range(messages):
            t = start + span * (n / messages)
            stamp = f"{t:%b} {t.day:>2} {t:%H:%M:%S}"  # syslog pads the day with a space
            qid = f"{0x100000000 + n * 7919:X}"[-11:]
            mid = f"{n:08x}.{seed}@corp.example"
            sender = "agent@corp.example" if rng.random() < 0.2 else rng.choice(senders[:-1])
            rcpts = rng.sample(people, rng.choice([1, 1, 1, 2, 3]))
            real = list(rcpts)
            if sender == "agent@corp.example":
                if n > messages * 0.7:
                    real.append(ATTACKER)
                rpc += 1
                agent_calls += 1
                iso = t.strftime("%Y-%m-%dT%H:%M:%S.000Z")
                # The server is upgraded (serverInfo 1.0.15 -> 1.0.16) when the Bcc starts.
                want = "s2" if n > messages * 0.7 else "s1"
                if session != want:
                    session = want
                    initialize(iso, want, "1.0.16" if want == "s2" else "1.0.15")
                req = {"jsonrpc": "2.0", "id": rpc, "method": "tools/call", "params": {"name": "sendEmail", "arguments": {"to": ", ".join(rcpts), "subject": "s", "textBody": "b", "sender": sender}}}
                res = {"jsonrpc": "2.0", "id": rpc, "result": {"content": [{"type": "text", "text": f"Email sent successfully!\nMessageID: {mid}"}], "isError": False}}
                for d, m in (("client_to_server", req), ("server_to_client", res)):
                    wire.write(json.dumps({"ts": iso, "direction": d, "server": "mailer", "session": session, "message": m}, separators=(",", ":")) + "\n")
            pid = 1000 + n % 500
            block = [
                f"{stamp} mx1 postfix/smtpd[{pid}]: connect from client{n % 50}.corp.example[10.0.{n % 250}.{n % 200}]",
                f"{stamp} mx1 postfix/smtpd[{pid}]: {qid}: client=client{n % 50}.corp.example[10.0.{n % 250}.{n % 200}]",
                f"{stamp} mx1 postfix/cleanup[{pid + 1}]: {qid}: message-id=<{mid}>",
                f"{stamp} mx1 postfix/qmgr[99]: {qid}: from=<{sender}>, size={rng.randint(800, 90000)}, nrcpt={len(real)} (queue active)",
                f"{stamp} mx1 postfix/smtpd[{pid}]: disconnect from client{n % 50}.corp.example[10.0.{n % 250}.{n % 200}] ehlo=1 mail=1 rcpt={len(real)} data=1 quit=1 commands={4 + len(real)}",
            ]
            for r in real:
                block.append(f"{stamp} mx1 postfix/smtp[{pid + 2}]: {qid}: to=<{r}>, relay=mx.{r.split('@')[1]}[192.0.2.{n % 250}]:25, delay=0.4, delays=0.01/0.01/0.2/0.18, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as {n:X})")
            block.append(f"{stamp} mx1 postfix/qmgr[99]: {qid}: removed")
            pending.append(block)
            # Interleave: emit one line of each of the last few messages in turn.
            while len(pending) > 8 or (n == messages - 1 and pending):
                for b in list(pending):
                    mail.write(b.pop(0) + "\n")
                    if not b:
                        pending.remove(b)
                if n != messages - 1:
                    break
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {"messages": messages, "agent_calls": agent_calls, "bytes": size}


def peak_rss(cmd: list[str]) -> int:
    """Peak RSS in KiB of one command (rusage of that child alone, via wait4)."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{cmd} failed")
    return ru.ru_maxrss


def duckdb_rule(con, rule: dict) -> float:
    params = {k: v["default"] for k, v in rule.get("parameters", {}).items()}
    t0 = time.perf_counter()
    con.execute(rule["query"]["sql"], params).fetchall()
    return time.perf_counter() - t0


DUCK_TYPES = {"string": "VARCHAR", "long": "BIGINT", "double": "DOUBLE", "boolean": "BOOLEAN", "timestamp": "TIMESTAMPTZ"}


def duckdb_tables(con, lake: Path) -> None:
    """Every lake table as a DuckDB view over its Parquet files, or an empty
    table of the same columns (from the Delta log's schema) when it has none."""
    for t in sorted(p for p in lake.iterdir() if (p / "_delta_log").is_dir()):
        if any(t.glob("*/*.parquet")):
            con.execute(f"CREATE VIEW {t.name} AS SELECT * FROM read_parquet('{t}/*/*.parquet', hive_partitioning = true)")
            continue
        first = sorted((t / "_delta_log").glob("*.json"))[0]
        meta = next(json.loads(l)["metaData"] for l in first.read_text().splitlines() if "metaData" in l)
        cols = ", ".join(f'"{f["name"]}" {DUCK_TYPES[f["type"]]}' for f in json.loads(meta["schemaString"])["fields"])
        con.execute(f"CREATE TABLE {t.name} ({cols})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, nargs="+", default=[50_000, 200_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--bin", default=str(Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/mcp-forensics/target")) / "release/mcp-forensics"))
    a = ap.parse_args()
    import duckdb

    work = Path(tempfile.mkdtemp(prefix="mcpf-bench-"))
    rows = []
    try:
        for n in a.messages:
            data = work / f"data-{n}"
            meta = generate(data, n)
            walls, rss = [], []
            for i in range(a.repeat):
                lake = work / f"lake-{n}-{i}"
                t0 = time.perf_counter()
                rss.append(peak_rss([a.bin, "ingest", "--lake", str(lake), "--year", "2026", str(data)]))
                walls.append(time.perf_counter() - t0)
            lake = work / f"lake-{n}-0"
            mb = meta["bytes"] / 1e6
            print(f"  measured ingest of {n:,} messages", file=sys.stderr, flush=True)
            rows.append(("ingest", f"{n:,} msgs, {mb:.0f} MB", statistics.median(walls), f"{mb / statistics.median(walls):.1f} MB/s", f"peak RSS {max(rss) / 1024:.0f} MiB", ""))

            con = duckdb.connect()
            duckdb_tables(con, lake)
            rule_files = sorted((ROOT / "crates/detect/rules").glob("*.toml"))
            for rf in rule_files:
                rule = tomllib.loads(rf.read_text())
                for name in rule.get("lists", {}):
                    con.execute(f"CREATE TABLE IF NOT EXISTS list_{name} (value VARCHAR, raw VARCHAR, source_file VARCHAR, source_line BIGINT)")
            for rf in rule_files:
                rule = tomllib.loads(rf.read_text())
                rid = rule["id"]
                ours = []
                for _ in range(a.repeat):
                    t0 = time.perf_counter()
                    subprocess.run([a.bin, "detect", "--lake", str(lake), "--rule", rid, "--format", "jsonl"], check=True, stdout=subprocess.DEVNULL)
                    ours.append(time.perf_counter() - t0)
                try:
                    theirs = f"DuckDB {statistics.median([duckdb_rule(con, rule) for _ in range(a.repeat)]):.3f} s"
                    ratio = f"ratio {statistics.median(ours) / float(theirs.split()[1]):.2f}x"
                except duckdb.Error as e:
                    theirs, ratio = "DuckDB n/a", f"({type(e).__name__}: dialect)"
                found = subprocess.run([a.bin, "detect", "--lake", str(lake), "--rule", rid, "--format", "jsonl"], check=True, capture_output=True, text=True).stdout.count("\n")
                print(f"  measured {rid} on {n:,} messages: ours {statistics.median(ours):.3f} s, {theirs}", file=sys.stderr, flush=True)
                rows.append((rid, f"{n:,} msgs", statistics.median(ours), theirs, ratio, f"{found} finding(s)"))
            whole = []
            for _ in range(a.repeat):
                t0 = time.perf_counter()
                r = subprocess.run([a.bin, "detect", "--lake", str(lake), "--format", "jsonl"], check=True, capture_output=True, text=True)
                whole.append(time.perf_counter() - t0)
            rows.append(("whole catalogue (detect)", f"{n:,} msgs", statistics.median(whole), f"{len(rule_files)} rules", "", f"{r.stdout.count(chr(10))} finding(s)"))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nmcp-forensics bench ({a.repeat} runs each, medians; {os.cpu_count()} cores)\n")
    print(f"| {'what':<32} | {'data':<22} | {'median s':>9} | {'':<20} | {'':<20} | {'':<14} |")
    print(f"|{'-' * 34}|{'-' * 24}|{'-' * 11}|{'-' * 22}|{'-' * 22}|{'-' * 16}|")
    for r in rows:
        print(f"| {r[0]:<32} | {r[1]:<22} | {r[2]:>9.3f} | {r[3]:<20} | {r[4]:<20} | {r[5]:<14} |")
    print("\nmcp-forensics times are whole commands (process start, Delta log, query); DuckDB times are the query alone in-process, "
          "over the same Parquet files (read_parquet, which ignores the Delta log: equal for an append-only lake).")


if __name__ == "__main__":
    main()
