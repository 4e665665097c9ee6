"""Shared fixtures: the bundled incident ingested once per session.

The tests import the installed `mcp_forensics` (scripts/test.sh builds the
wheel with maturin and installs it into .venv before running them).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample-logs"
MANIFEST = json.loads((SAMPLES / "manifest.json").read_text())

try:
    import mcp_forensics  # noqa: F401
except ImportError as e:  # pragma: no cover - a message, not a skip
    raise SystemExit(f"mcp_forensics is not installed ({e}); run: bash scripts/test.sh (or maturin develop -m python/Cargo.toml)")


@pytest.fixture(scope="session")
def manifest() -> dict:
    return MANIFEST


@pytest.fixture(scope="session", autouse=True)
def at_repo_root():
    """Evidence paths are relative to where ingest ran: the repository root."""
    old = os.getcwd()
    os.chdir(ROOT)
    yield
    os.chdir(old)


@pytest.fixture(scope="session")
def incident(tmp_path_factory, at_repo_root):
    """A lake holding the bundled incident (Desktop log, Postfix log, Postmark export)."""
    import mcp_forensics as mf

    lake = mf.Lake(tmp_path_factory.mktemp("incident") / "lake")
    lake.ingest(["sample-logs/mcp", "sample-logs/postfix", "sample-logs/postmark"], year=MANIFEST["year"])
    return lake
