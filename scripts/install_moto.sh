#!/usr/bin/env bash
# moto's S3 server (a local S3-compatible store) for the scale-out test and
# scripts/scale-demo.sh, into .venv-s3 from the pins of requirements-s3.txt.
# Its own environment: botocore needs python-dateutil<3, the test packages 4.x.
# Idempotent: does nothing when the pins did not change.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-s3/bin/moto_server ] || ! cmp -s requirements-s3.txt .venv-s3/.requirements-installed; then
  echo "setup: creating .venv-s3 with the pinned packages of requirements-s3.txt (moto's S3 server)" >&2
  python3 -m venv .venv-s3
  .venv-s3/bin/python -m pip install -q --disable-pip-version-check -r requirements-s3.txt
  cp requirements-s3.txt .venv-s3/.requirements-installed
fi
