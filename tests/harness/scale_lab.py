"""A scale-out lab on loopback: a local S3-compatible server (moto's server
mode, from .venv-s3), a Ballista scheduler and two executors
(`mcp-forensics cluster ...`), each on a free port, stopped by pid when the
`with` block ends. Used by tests/e2e/test_scale_out.py and by
scripts/scale-demo.sh (`python3 tests/harness/scale_lab.py demo`).

The lab talks to S3 through the tool itself; it creates its bucket and
looks at the objects with boto3 from .venv-s3 (moto's own dependency).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MOTO = ROOT / ".venv-s3" / "bin" / "moto_server"
BIN = os.environ.get("MCPF_BIN") or str(Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/mcp-forensics/target")) / "debug" / "mcp-forensics")
BUCKET = "mcpf-lake"
# Dummy credentials of the local server; the tests check that they never
# reach the lake or an error message.
ACCESS_KEY = "AKIAMCPFLABKEY000001"
SECRET_KEY = "mcpf-lab-secret-Zq8u2XvN4w"


def available() -> str | None:
    """Why the lab cannot run here, or None."""
    if not MOTO.exists():
        return f"{MOTO} missing (scripts/setup.sh installs moto's S3 server into .venv-s3)"
    if not Path(BIN).exists():
        return f"{BIN} not built (cargo build --workspace --bins)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before it listened on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout} s")


class Lab:
    """S3 + scheduler + two executors. `env` is what a client process
    needs (the AWS variables of the local server); `engine` the --engine URL."""

    def __init__(self, workdir: Path, executors: int = 2):
        self.workdir = Path(workdir)
        self.executors = executors
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.s3_port = free_port()
        self.env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.s3_port}",
            "AWS_ALLOW_HTTP": "true",
        }
        self.env.pop("MCPF_ENGINE", None)
        self.engine = ""

    def _start(self, what: str, args: list[str], port: int) -> None:
        log = open(self.workdir / f"{what}.log", "wb")
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        self.procs.append((what, p))
        wait_for_port(port, p, what)

    def __enter__(self) -> "Lab":
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._start("s3", [str(MOTO), "-H", "127.0.0.1", "-p", str(self.s3_port)], self.s3_port)
            self._s3("s3.create_bucket(Bucket=sys.argv[1])", BUCKET)
            sched = free_port()
            self._start("scheduler", [BIN, "cluster", "scheduler", "--bind", f"127.0.0.1:{sched}"], sched)
            self.engine = f"ballista://127.0.0.1:{sched}"
            for i in range(self.executors):
                flight, grpc = free_port(), free_port()
                self._start(f"executor-{i + 1}", [BIN, "cluster", "executor", "--scheduler", self.engine, "--flight-port", str(flight), "--grpc-port", str(grpc), "--concurrent-tasks", "2", "--work-dir", str(self.workdir / f"executor-{i + 1}")], grpc)
            # Executors register with their first heartbeat; give it a moment
            # by running a query that needs them.
            self.wait_for_executors()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def wait_for_executors(self, timeout: float = 60) -> None:
        """Until the scheduler runs a query (it needs a registered executor)."""
        deadline = time.monotonic() + timeout
        probe = self.workdir / "probe-lake"
        if not probe.exists():
            subprocess.run([BIN, "-q", "ingest", "--lake", str(probe), str(ROOT / "sample-logs" / "postfix")], check=True, capture_output=True, env=self.env)
        while True:
            r = subprocess.run([BIN, "--engine", self.engine, "sql", "--lake", str(probe), "SELECT count(*) FROM mail_deliveries"], capture_output=True, text=True, env=self.env, timeout=120)
            if r.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster ran no query within {timeout} s: {r.stderr}")
            time.sleep(0.5)

    def __exit__(self, *exc) -> None:
        for what, p in reversed(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for what, p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.procs.clear()

    def cli(self, *args: str, engine: bool = False, ok: tuple[int, ...] | None = (0,)) -> subprocess.CompletedProcess:
        """Run the tool from the checkout's root (relative sample paths) with
        the lab's environment; fail unless it exits with one of `ok` (None:
        any code)."""
        cmd = [BIN, *(["--engine", self.engine] if engine else []), *args]
        r = subprocess.run(cmd, capture_output=True, text=True, env=self.env, cwd=ROOT, timeout=600)
        if ok is not None and r.returncode not in ok:
            raise AssertionError(f"{args} exited {r.returncode}: {r.stderr}")
        return r

    def _s3(self, code: str, *args: str) -> bytes:
        """Run boto3 (in .venv-s3, beside moto) against the local server."""
        prelude = (
            "import sys, boto3\n"
            f"s3 = boto3.client('s3', endpoint_url='http://127.0.0.1:{self.s3_port}', aws_access_key_id='{ACCESS_KEY}', aws_secret_access_key='{SECRET_KEY}', region_name='us-east-1')\n"
        )
        r = subprocess.run([str(MOTO.parent / "python"), "-c", prelude + code, *args], capture_output=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(r.stderr.decode(errors="replace"))
        return r.stdout

    def objects(self, prefix: str = "") -> list[str]:
        """Keys under the bucket."""
        code = "p = s3.get_paginator('list_objects_v2')\nfor page in p.paginate(Bucket=sys.argv[1], Prefix=sys.argv[2]):\n    for o in page.get('Contents', []): print(o['Key'])\n"
        return self._s3(code, BUCKET, prefix).decode().splitlines()

    def object_bytes(self, key: str) -> bytes:
        return self._s3("sys.stdout.buffer.write(s3.get_object(Bucket=sys.argv[1], Key=sys.argv[2])['Body'].read())", BUCKET, key)


def demo() -> int:
    """The scale-out demo: two concurrent ingests into S3, detect on Ballista."""
    if why := available():
        print(f"scale-demo: {why}", file=sys.stderr)
        return 2
    samples = ROOT / "sample-logs"
    with tempfile.TemporaryDirectory(prefix="mcpf-scale-") as tmp, Lab(Path(tmp)) as lab:
        lake = f"s3://{BUCKET}/lakes/incident"
        print(f"S3-compatible server (moto) on 127.0.0.1:{lab.s3_port}; Ballista scheduler {lab.engine} with {lab.executors} executors")
        print(f"ingesting {samples.relative_to(ROOT)}/ into {lake} with two concurrent ingest processes ...")
        first = [BIN, "-q", "ingest", "--lake", lake, str(samples / "postfix"), str(samples / "mcp"), str(samples / "postmark")]
        second = [BIN, "-q", "ingest", "--lake", lake, str(samples)]
        procs = [subprocess.Popen(c, env=lab.env, stderr=subprocess.PIPE, text=True) for c in (first, second)]
        for p in procs:
            _, err = p.communicate(timeout=600)
            if p.returncode not in (0, 3):
                print(err, file=sys.stderr)
                return 1
        local = Path(tmp) / "local-lake"
        lab.cli("-q", "ingest", "--lake", str(local), str(samples), ok=None)
        print("\nrow counts, S3 lake (two concurrent ingests) / local lake (one ingest):")
        remote_counts = _counts(lab, lake)
        local_counts = _counts(lab, str(local))
        for t in sorted(remote_counts):
            mark = "" if remote_counts[t] == local_counts.get(t) else "   <-- differs"
            print(f"  {t:<24} {remote_counts[t]:>7} / {local_counts.get(t, 0):<7}{mark}")
        print(f"\nfindings computed on Ballista ({lab.engine}) over {lake}:\n")
        r = lab.cli("detect", "--lake", lake, engine=True, ok=None)
        print(r.stdout)
        findings = json.loads(lab.cli("detect", "--lake", lake, "--format", "json", engine=True, ok=None).stdout or "[]")
        seed = {(f["rule_id"], f.get("address")) for f in findings}
        ok = ("mail.unintended_recipient", "phan@giftshop.club") in seed and ("mail.constant_bcc", "phan@giftshop.club") in seed
        same = remote_counts == local_counts
        print(("seed findings present" if ok else "SEED FINDINGS MISSING") + "; " + ("row counts equal a local ingest" if same else "ROW COUNTS DIFFER"))
        return 0 if ok and same else 1


def _counts(lab: Lab, lake: str) -> dict[str, int]:
    r = lab.cli("tables", "--lake", lake)
    out = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "rows" and parts[1].isdigit() and not parts[0].startswith("_"):
            out[parts[0]] = int(parts[1])
    return out


if __name__ == "__main__":
    if sys.argv[1:] == ["demo"]:
        sys.exit(demo())
    print("usage: scale_lab.py demo", file=sys.stderr)
    sys.exit(2)
