#!/usr/bin/env bash
# Lint and type check, as CI runs them (after scripts/setup.sh, which installs the `lint` extra and edgegan in the
# strict editable mode that mypy reads): ruff's checks, ruff's formatting, mypy over the edgegan package.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -m ruff check .
"$PYTHON" -m ruff format --check .
"$PYTHON" -m mypy
