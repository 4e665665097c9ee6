#!/usr/bin/env bash
# Run every test: Rust unit and integration tests, then the end-to-end tests
# that start a real Postfix (+ smtp-sink) and the MCP SDK client and server.
# Does its own set-up (scripts/setup.sh). Build cache: $CARGO_TARGET_DIR
# (default ~/.cache/mcp-forensics/target, outside the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-forensics/target}"
export CARGO_TERM_COLOR=never

echo "== cargo test (workspace)"
cargo test --workspace --locked 2>&1

echo "== end-to-end (real Postfix, MCP SDK)"
cargo build --locked -p mcp-forensics 2>&1
export MCPF_BIN="$CARGO_TARGET_DIR/debug/mcp-forensics"
.venv/bin/python -m pytest -q tests
