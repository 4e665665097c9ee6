"""The built wheel works in a fresh virtual environment: install, import,
ingest the bundled incident, read the findings with pyarrow."""
from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def the_wheel() -> Path:
    d = Path(os.environ.get("MCPF_WHEEL_DIR", Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/mcp-forensics/target")) / "wheels"))
    wheels = sorted(d.glob("mcp_forensics-*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        pytest.fail(f"no wheel in {d}: build it with: maturin build -m python/Cargo.toml -o {d} (scripts/test.sh does)")
    return wheels[-1]


def pinned(name: str) -> str:
    for line in (ROOT / "requirements-test.txt").read_text().splitlines():
        if line.lower().startswith(name + "=="):
            return line.strip()
    raise AssertionError(f"{name} is not pinned in requirements-test.txt")


SCRIPT = r"""
import json, sys, tempfile, pyarrow
import mcp_forensics
root, attacker, year = sys.argv[1], sys.argv[2], int(sys.argv[3])
assert mcp_forensics.__file__.startswith(sys.prefix), mcp_forensics.__file__
lake = mcp_forensics.Lake(tempfile.mkdtemp() + "/lake")
lake.ingest([root + "/sample-logs/mcp", root + "/sample-logs/postfix", root + "/sample-logs/postmark"], year=year)
t = pyarrow.table(lake.detect())
print(json.dumps({"rules": sorted(set(t["rule_id"].to_pylist())), "addresses": sorted({a for a in t["address"].to_pylist() if a})}))
"""


def test_installed_wheel_in_a_fresh_venv(tmp_path, manifest):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    py = env_dir / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run(pip + [str(the_wheel()), pinned("pyarrow")], check=True)
    out = subprocess.run([str(py), "-c", SCRIPT, str(ROOT), manifest["attacker"], str(manifest["year"])], check=True, capture_output=True, text=True, cwd=tmp_path)
    import json

    got = json.loads(out.stdout)
    assert {"mail.constant_bcc", "mail.unintended_recipient", "mcp.server_version_change"} <= set(got["rules"]), got
    assert got["addresses"] == [manifest["attacker"]], got
