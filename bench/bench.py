"""Benchmark: ingest throughput and memory, and rule queries against DuckDB.

    bash bench/run.sh [--messages 50000 200000] [--repeat 3] [--days 180] [--json PATH]

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
4. Next to ingest, on the same files in the same run: the pipeline an analyst
   would write in DuckDB instead (the Postfix log read as lines, fields cut
   with `regexp_extract`, written as zstd Parquet; the wire log through
   `read_json`), and `wc -l` (the floor: reading the bytes once).
5. `detect --since` the last day of the data (what a nightly job runs), and
   the growth exponent of the whole catalogue between the two largest sizes
   (1.0 = linear).
6. `optimize --sort-by-time` (compaction) and the catalogue again after it.

The generated relay log spans `--days` days (default 180: six months of
partitions); its size is set by `--messages`.

`--json PATH` writes the same figures as JSON:
`{"machine", "sizes", "ingest": {SIZE: {"ours_s", "duckdb_s", "wc_l_s", "mb_per_s", "lines_per_s", "rss_mib"}},
"rules": {ID: {SIZE: {"ours_s", "duckdb_s"}}}, "catalogue_s": {SIZE: s}, "catalogue_exponent",
"since_1d_s": {SIZE: s}, "rss_mib": {"ingest": {SIZE: MiB}, "catalogue": {SIZE: MiB}}}`.
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


def generate(out: Path, messages: int, days: int = 180, seed: int = 1) -> dict:
    """Write out/postfix/mail.log and out/wire/agent.jsonl."""
    rng = random.Random(seed)
    (out / "postfix").mkdir(parents=True, exist_ok=True)
    (out / "wire").mkdir(parents=True, exist_ok=True)
    domains = [f"d{i}.example" for i in range(400)]
    people = [f"user{i}@{domains[i % len(domains)]}" for i in range(5000)]
    senders = [f"staff{i}@corp.example" for i in range(40)] + ["agent@corp.example"]
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    span = timedelta(days=days)
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


# Run from a fresh, small interpreter: a child's ru_maxrss starts from the
# high-water mark of the process that forked it, and this one holds DuckDB's
# memory, which would otherwise be reported as the command's.
RSS_PROBE = """
import os, subprocess, sys
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, status, ru = os.wait4(p.pid, 0)
print(ru.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_rss(cmd: list[str]) -> int:
    """Peak RSS in KiB of one command (rusage of that child alone, via wait4
    in a fresh interpreter)."""
    r = subprocess.run([sys.executable, "-c", RSS_PROBE, *cmd], capture_output=True, text=True)
    if r.returncode not in (0, 1):
        raise SystemExit(f"{cmd} failed")
    return int(r.stdout.strip())


def duckdb_ingest(data: Path, out: Path) -> float:
    """The DuckDB pipeline an analyst would write instead of `ingest`: the
    Postfix log as lines, the delivery fields cut with regexp_extract, zstd
    Parquet; the wire log through read_json. Two threads, as the machine has."""
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"SET threads = {os.cpu_count() or 2}")
    t0 = time.perf_counter()
    log = data / "postfix" / "mail.log"
    con.execute(f"""
        COPY (
          SELECT line,
                 regexp_extract(line, '^(\\w{{3}} +\\d+ [\\d:]+)', 1) AS stamp,
                 regexp_extract(line, ' ([0-9A-F]{{6,}}): ', 1) AS queue_id,
                 regexp_extract(line, ' to=<([^>]*)>', 1) AS recipient,
                 regexp_extract(line, ' from=<([^>]*)>', 1) AS sender,
                 regexp_extract(line, ' status=(\\w+)', 1) AS status,
                 regexp_extract(line, ' relay=([^,]+),', 1) AS relay,
                 regexp_extract(line, ' message-id=<([^>]*)>', 1) AS message_id
          FROM read_csv('{log}', columns = {{'line': 'VARCHAR'}}, delim = '\x01', quote = '', escape = '', header = false, auto_detect = false)
        ) TO '{out / "postfix.parquet"}' (FORMAT parquet, COMPRESSION zstd)""")
    con.execute(f"""COPY (SELECT * FROM read_json('{data / "wire" / "agent.jsonl"}', format = 'newline_delimited'))
                    TO '{out / "wire.parquet"}' (FORMAT parquet, COMPRESSION zstd)""")
    return time.perf_counter() - t0


def wc_l(data: Path) -> tuple[float, int]:
    """`wc -l` over every input file: (seconds, lines)."""
    files = sorted(str(f) for f in data.rglob("*") if f.is_file())
    t0 = time.perf_counter()
    out = subprocess.run(["wc", "-l", *files], check=True, capture_output=True, text=True).stdout
    took = time.perf_counter() - t0
    total = int(out.strip().splitlines()[-1].split()[0]) if len(files) > 1 else int(out.split()[0])
    return took, total


def timed(cmd: list[str], repeat: int) -> tuple[float, int]:
    """Median wall seconds of `repeat` runs of a command, and its peak RSS in KiB."""
    walls, rss = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        rss.append(peak_rss(cmd))
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls), max(rss)


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


def last_day(data: Path) -> str:
    """The start of the data's last day (UTC), for `detect --since`."""
    last = ""
    with open(data / "wire" / "agent.jsonl", "rb") as f:
        f.seek(max(0, f.seek(0, 2) - 4096))
        for line in f.read().decode(errors="replace").splitlines():
            if line.startswith("{"):
                last = json.loads(line)["ts"]
    return (datetime.fromisoformat(last.replace("Z", "+00:00")) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, nargs="+", default=[50_000, 200_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--days", type=int, default=180, help="days the generated relay log spans (default: six months)")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    ap.add_argument("--bin", default=str(Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/mcp-forensics/target")) / "release/mcp-forensics"))
    a = ap.parse_args()
    import duckdb

    work = Path(tempfile.mkdtemp(prefix="mcpf-bench-"))
    rows = []
    fig: dict = {"machine": {"cores": os.cpu_count(), "platform": sys.platform}, "repeat": a.repeat, "sizes": a.messages,
                 "ingest": {}, "rules": {}, "catalogue_s": {}, "since_1d_s": {}, "rss_mib": {"ingest": {}, "catalogue": {}}}
    try:
        for n in a.messages:
            data = work / f"data-{n}"
            meta = generate(data, n, a.days)
            walls, rss = [], []
            for i in range(a.repeat):
                lake = work / f"lake-{n}-{i}"
                t0 = time.perf_counter()
                rss.append(peak_rss([a.bin, "ingest", "--lake", str(lake), "--year", "2026", str(data)]))
                walls.append(time.perf_counter() - t0)
            lake = work / f"lake-{n}-0"
            mb = meta["bytes"] / 1e6
            ours = statistics.median(walls)
            duck = statistics.median([duckdb_ingest(data, work / f"duck-{n}-{i}") for i in range(a.repeat)])
            wc_s, lines = wc_l(data)
            print(f"  measured ingest of {n:,} messages", file=sys.stderr, flush=True)
            rows.append(("ingest", f"{n:,} msgs, {mb:.0f} MB", ours, f"{mb / ours:.1f} MB/s, {lines / ours / 1e6:.2f} M lines/s",
                         f"DuckDB {duck:.3f} s ({duck / ours:.2f}x ours)", f"peak RSS {max(rss) / 1024:.0f} MiB"))
            rows.append(("  wc -l (read the bytes once)", f"{lines:,} lines", wc_s, f"{mb / wc_s:.0f} MB/s", f"ours = {wc_s / ours:.2f} of wc -l", ""))
            fig["ingest"][str(n)] = {"ours_s": ours, "duckdb_s": duck, "wc_l_s": wc_s, "mb": mb, "lines": lines, "mb_per_s": mb / ours,
                                     "lines_per_s": lines / ours, "rss_mib": max(rss) / 1024}
            fig["rss_mib"]["ingest"][str(n)] = max(rss) / 1024

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
                ours_r, _ = timed([a.bin, "detect", "--lake", str(lake), "--rule", rid, "--format", "jsonl"], a.repeat)
                try:
                    duck_r = statistics.median([duckdb_rule(con, rule) for _ in range(a.repeat)])
                    theirs, ratio = f"DuckDB {duck_r:.3f} s", f"ratio {ours_r / duck_r:.2f}x"
                except duckdb.Error as e:
                    duck_r, theirs, ratio = None, "DuckDB n/a", f"({type(e).__name__}: dialect)"
                found = subprocess.run([a.bin, "detect", "--lake", str(lake), "--rule", rid, "--format", "jsonl"], check=True, capture_output=True, text=True).stdout.count("\n")
                print(f"  measured {rid} on {n:,} messages: ours {ours_r:.3f} s, {theirs}", file=sys.stderr, flush=True)
                rows.append((rid, f"{n:,} msgs", ours_r, theirs, ratio, f"{found} finding(s)"))
                fig["rules"].setdefault(rid, {})[str(n)] = {"ours_s": ours_r, "duckdb_s": duck_r}
            whole, whole_rss = timed([a.bin, "detect", "--lake", str(lake), "--format", "jsonl"], a.repeat)
            r = subprocess.run([a.bin, "detect", "--lake", str(lake), "--format", "jsonl"], check=True, capture_output=True, text=True)
            rows.append(("whole catalogue (detect)", f"{n:,} msgs", whole, f"{len(rule_files)} rules", f"peak RSS {whole_rss / 1024:.0f} MiB", f"{r.stdout.count(chr(10))} finding(s)"))
            fig["catalogue_s"][str(n)] = whole
            fig["rss_mib"]["catalogue"][str(n)] = whole_rss / 1024
            since = last_day(data)
            since_s, _ = timed([a.bin, "detect", "--lake", str(lake), "--since", since, "--format", "jsonl"], a.repeat)
            rows.append(("detect --since (last day)", f"{n:,} msgs", since_s, f"--since {since}", "", ""))
            fig["since_1d_s"][str(n)] = since_s
            opt_s, opt_rss = timed([a.bin, "optimize", "--lake", str(lake), "--sort-by-time"], 1)
            rows.append(("optimize --sort-by-time", f"{n:,} msgs", opt_s, "compaction, rows ordered by ts", f"peak RSS {opt_rss / 1024:.0f} MiB", ""))
            fig.setdefault("optimize_s", {})[str(n)] = opt_s
            whole_opt, _ = timed([a.bin, "detect", "--lake", str(lake), "--format", "jsonl"], a.repeat)
            rows.append(("  whole catalogue after optimize", f"{n:,} msgs", whole_opt, "", "", ""))
            fig.setdefault("catalogue_after_optimize_s", {})[str(n)] = whole_opt
    finally:
        shutil.rmtree(work, ignore_errors=True)

    if len(a.messages) >= 2:
        import math
        n1, n2 = sorted(a.messages)[-2:]
        t1, t2 = fig["catalogue_s"][str(n1)], fig["catalogue_s"][str(n2)]
        fig["catalogue_exponent"] = math.log(t2 / t1) / math.log(n2 / n1)
        rows.append(("catalogue growth exponent", f"{n1:,} -> {n2:,} msgs", fig["catalogue_exponent"], "1.0 = linear", "", ""))

    print(f"\nmcp-forensics bench ({a.repeat} runs each, medians; {os.cpu_count()} cores)\n")
    print(f"| {'what':<32} | {'data':<22} | {'median s':>9} | {'':<36} | {'':<26} | {'':<18} |")
    print(f"|{'-' * 34}|{'-' * 24}|{'-' * 11}|{'-' * 38}|{'-' * 28}|{'-' * 20}|")
    for r in rows:
        print(f"| {r[0]:<32} | {r[1]:<22} | {r[2]:>9.3f} | {r[3]:<36} | {r[4]:<26} | {r[5]:<18} |")
    print("\nmcp-forensics times are whole commands (process start, Delta log, query); DuckDB rule times are the query alone in-process, "
          "over the same Parquet files (read_parquet, which ignores the Delta log: equal for an append-only lake); DuckDB ingest is "
          "its pipeline from the same files to zstd Parquet.")
    if a.json:
        a.json.write_text(json.dumps(fig, indent=2) + "\n")
        print(f"figures written to {a.json}")


if __name__ == "__main__":
    main()
