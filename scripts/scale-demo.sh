#!/usr/bin/env bash
# The scale-out path on one machine: a local S3-compatible server (moto), a
# Ballista scheduler and two executors on loopback; sample-logs/ ingested into
# s3://mcpf-lake/lakes/incident by two concurrent ingest processes; detect run
# on the cluster; the findings and the row counts (against a local ingest)
# printed; everything it started stopped again by pid.
# Set-up: builds the tool and installs moto's server (pinned, .venv-s3).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-forensics/target}"
bash scripts/install_moto.sh
cargo build --locked --workspace --bins -q
export MCPF_BIN="$CARGO_TARGET_DIR/debug/mcp-forensics"
exec python3 tests/harness/scale_lab.py demo
