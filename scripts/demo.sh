#!/usr/bin/env bash
# Ingest the bundled sample incident (sample-logs/) into a temporary lake,
# run every rule and print the findings and a plain account. Needs only Rust.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-forensics/target}"
cargo run --locked -q -p mcp-forensics -- demo "$@"
