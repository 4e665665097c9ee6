#!/usr/bin/env bash
# Ingest the bundled sample incident (sample-logs/) into a temporary lake,
# run every rule and print the findings and a plain account. Needs only Rust.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-forensics/target}"
# The same selection as scripts/test.sh (--workspace, the Python extension's
# crate included): cargo unifies features over the selected packages, and
# `-p mcp-forensics` alone would turn off features the extension enables
# (half/num-* "std"), so DataFusion and arrow would be compiled twice on a
# fresh machine, once per command.
cargo build --locked -q --workspace --bins
exec "$CARGO_TARGET_DIR/debug/mcp-forensics" demo "$@"
