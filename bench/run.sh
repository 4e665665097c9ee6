#!/usr/bin/env bash
# Benchmark: builds the release binary, creates .venv-bench with pinned DuckDB,
# and prints the table of bench/bench.py. Arguments go to bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-forensics/target}"
cargo build --release --locked -p mcp-forensics
if [ ! -x .venv-bench/bin/python ]; then
  python3 -m venv .venv-bench
  .venv-bench/bin/python -m pip install -q --disable-pip-version-check duckdb==2.0.0
fi
.venv-bench/bin/python bench/bench.py "$@"
