#!/usr/bin/env bash
# Benchmark: builds the release binary, creates .venv-bench with pinned DuckDB,
# and prints the table of bench/bench.py. Arguments go to bench.py.
# `bash bench/run.sh record [ARGS]` benchmarks `mcp-forensics record` instead
# (bench/record_overhead.py; ARGS go to it).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-forensics/target}"
# `bash bench/run.sh record [ARGS]`: the recorder's overhead instead, by
# bench/record_overhead.py in the main .venv (it has the MCP SDK).
if [ "${1:-}" = "record" ]; then
  shift
  if ! .venv/bin/python -c "import mcp" 2>/dev/null; then
    echo "bench/run.sh record: no .venv with the MCP SDK; run: bash scripts/setup.sh" >&2
    exit 1
  fi
  cargo build --release --locked -p mcp-forensics
  exec .venv/bin/python bench/record_overhead.py "$@"
fi
cargo build --release --locked -p mcp-forensics
if ! .venv-bench/bin/python -c "import duckdb, pytz" 2>/dev/null; then
  python3 -m venv .venv-bench
  .venv-bench/bin/python -m pip install -q --disable-pip-version-check duckdb==2.0.0 pytz==2026.6
fi
.venv-bench/bin/python bench/bench.py "$@"
