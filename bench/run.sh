#!/usr/bin/env bash
# Benchmark: builds the release binary, creates .venv-bench with pinned DuckDB,
# and prints the table of bench/bench.py. Arguments go to bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-forensics/target}"
cargo build --release --locked -p mcp-forensics
if ! .venv-bench/bin/python -c "import duckdb, pytz" 2>/dev/null; then
  python3 -m venv .venv-bench
  .venv-bench/bin/python -m pip install -q --disable-pip-version-check duckdb==2.0.0 pytz==2026.6
fi
.venv-bench/bin/python bench/bench.py "$@"
