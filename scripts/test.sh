#!/usr/bin/env bash
# Set-up, then the whole test suite (CPU; GPU and TensorRT tests skip with a reason).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${PYTHON:-python3}" -m pytest -q "$@"
