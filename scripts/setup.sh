#!/usr/bin/env bash
# Set up everything the tests need on a fresh Debian machine that has only the
# Rust toolchain and Python 3.11: Postfix (+ smtp-sink), an unpacked Exim, and a
# Python virtual environment with pinned packages. Idempotent: a second run does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v postfix >/dev/null 2>&1 || ! command -v smtp-sink >/dev/null 2>&1; then
  echo "setup: installing Postfix (Debian package 'postfix', no system configuration)" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postfix >/dev/null
fi

# A real Exim for the end-to-end tests, unpacked from Debian's package into a
# cache (never installed: exim4-daemon-light conflicts with postfix).
bash scripts/install_exim.sh
bash scripts/install_sendmail.sh  # the same for Sendmail (sendmail-bin + sendmail-cf + m4 + libwrap0)

if [ ! -x .venv/bin/python ] || ! cmp -s requirements-test.txt .venv/.requirements-installed; then
  echo "setup: creating .venv with the pinned packages of requirements-test.txt" >&2
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-test.txt
  cp requirements-test.txt .venv/.requirements-installed
fi

bash scripts/install_moto.sh  # a local S3-compatible server for the scale-out test

# cargo-deny reads `cargo metadata` offline: every platform's crates must be
# in the local registry, not only the host's (a no-op once they are).
cargo fetch --locked -q

# Real agent hosts for the end-to-end tests (tests/agents/package.json, exact
# versions and integrity hashes in its package-lock.json): npm ci into a cache
# outside the checkout, install scripts off (Claude Code's native binary is
# its platform package; nothing needs to run at install time).
agents_dir="${MCPF_AGENTS_DIR:-$HOME/.cache/mcp-forensics/agents}"
if ! cmp -s tests/agents/package-lock.json "$agents_dir/package-lock.json" || [ ! -d "$agents_dir/node_modules" ]; then
  echo "setup: installing the agent hosts of tests/agents/package-lock.json into $agents_dir" >&2
  mkdir -p "$agents_dir"
  cp tests/agents/package.json tests/agents/package-lock.json "$agents_dir/"
  (cd "$agents_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
