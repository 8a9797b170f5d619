#!/usr/bin/env bash
# The lower bounds pyproject.toml declares, tested: a fresh venv gets the OLDEST version each bound allows (exact
# `==floor` pins read from pyproject.toml for this Python, so the bounds and this test cannot drift apart), and
# edgegan installed editable with --no-deps (nothing of its own resolution sneaks newer versions in). Then:
#   1. the runtime floors (numpy, onnxruntime, pillow, click, tqdm) with onnx, matplotlib and pytest at theirs,
#      and no torch: tests/runtime minus the modules using the `evaluator_onnx` fixture (it trains with torch);
#   2. the same venv plus the export extra's floors (onnx, onnxscript) and torch: the torch-side runtime tests,
#      tests/export (the int8 tests included: test_int8*.py on the trained tests/fixtures) and tests/trainer's fast
#      tests (-m "not integration");
#   3. older onnxruntime releases than the 3.11 floor (EDGEGAN_OLD_ORT, default 1.17.3, the floor on Python 3.10,
#      and 1.23.2, the last before 1.24 began refusing escaping paths itself), each in its own plain venv (a
#      --system-site-packages venv would import the system's onnxruntime instead) with the runtime floors and
#      numpy < 2 for 1.17 (built against numpy 1.x): the external-data tests, which build hostile models that
#      those releases do load (issue 19). ~25 s each; a release this index cannot serve is reported and skipped.
# torch is never left for pip to resolve (an unpinned torch is a CUDA build of several GB): it is
# EDGEGAN_TORCH (default torch==2.13.0, scripts/setup.sh's pin), not pyproject's floor 2.10, which is a security
# floor (trainer/checkpoint.py refuses older torch) whose CPU build this CI's package index does not hold.
# Binary wheels only (--only-binary): a floor without a wheel for this Python fails here instead of compiling.
# Usage: bash scripts/min_versions.sh [pytest args]; PYTHON=python3.X picks the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH=${EDGEGAN_TORCH:-torch==2.13.0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$SECONDS

# floors GROUP...: "name==floor" for each requirement of [project] dependencies ("base") or of the named extras,
# markers evaluated for $PYTHON; a requirement without a ">=" floor is an error (every bound must be testable).
floors() {
  "$PYTHON" - "$@" <<'EOF'
import sys, tomllib
try:
    from packaging.requirements import Requirement
except ImportError:  # a bare interpreter: pip's own copy
    from pip._vendor.packaging.requirements import Requirement
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
for group in sys.argv[1:]:
    for line in project["dependencies"] if group == "base" else project["optional-dependencies"][group]:
        req = Requirement(line)
        if req.name == "edgegan" or (req.marker and not req.marker.evaluate()):
            continue
        floor = [s.version for s in req.specifier if s.operator == ">="]
        if len(floor) != 1:
            sys.exit(f"min_versions: {line!r} declares no single >= floor")
        print(f"{req.name}=={floor[0]}")
EOF
}

base=$(floors base)
plot=$(floors plot)
export_floors=$(floors export | grep -v '^torch==')
onnx=$(grep '^onnx==' <<<"$export_floors")
pytest=$(floors test | grep '^pytest==')
echo "min_versions: $("$PYTHON" --version), floors:" $base $onnx $plot $pytest
"$PYTHON" -m venv "$work/venv"
py="$work/venv/bin/python"
pip_install() { "$py" -m pip install -q --only-binary=:all: "$@"; }

# shellcheck disable=SC2086  # one pin per word
pip_install $base $onnx $plot $pytest
"$py" -m pip install -q --no-deps -e .
"$py" -m pip check
if "$py" -c "import torch" 2>/dev/null; then echo "min_versions: torch got installed in the runtime stage" >&2; exit 1; fi
echo "min_versions: runtime stage installed in $((SECONDS - start)) s"
mapfile -t torch_side < <(grep -l "evaluator_onnx" tests/runtime/test_*.py)
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$py" -m pytest -q -p no:cacheprovider tests/runtime \
  "${torch_side[@]/#/--ignore=}" "$@"
echo "min_versions: runtime stage passed at $((SECONDS - start)) s"

# shellcheck disable=SC2086
pip_install $base $plot $export_floors "$TORCH"  # the runtime pins again, so nothing upgrades them
"$py" -m pip check
echo "min_versions: torch stage installed at $((SECONDS - start)) s:" $export_floors "$TORCH"
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$py" -m pytest -q -p no:cacheprovider -m "not integration" \
  "${torch_side[@]}" tests/runtime/test_seed_parity.py tests/runtime/test_bench.py tests/export tests/trainer "$@"

# 3. the external-data refusals under older onnxruntime (the runtime floors, onnxruntime swapped)
old_base=$(grep -v -e '^onnxruntime==' -e '^numpy==' <<<"$base")  # numpy: what that onnxruntime asks for
for ort_version in ${EDGEGAN_OLD_ORT-1.17.3 1.23.2}; do
  "$PYTHON" -m venv "$work/ort-$ort_version"
  oldpy="$work/ort-$ort_version/bin/python"
  numpy="numpy>=1.24"
  [[ $ort_version == 1.1[0-8].* ]] && numpy="numpy>=1.24,<2"  # built against numpy 1.x
  # shellcheck disable=SC2086
  if ! "$oldpy" -m pip install -q --only-binary=:all: $old_base "$numpy" $onnx $pytest "onnxruntime==$ort_version"; then
    echo "min_versions: onnxruntime==$ort_version cannot be installed here: its external-data stage is skipped" >&2
    continue
  fi
  "$oldpy" -m pip install -q --no-deps -e .
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$oldpy" -m pytest -q -p no:cacheprovider \
    tests/runtime/test_external_data_reliability.py tests/runtime/test_runtime_reliability.py -k "external or ortm \
    or crafted or location or format" "$@"
  echo "min_versions: onnxruntime $ort_version external-data stage passed at $((SECONDS - start)) s"
done
echo "min_versions: all stages passed in $((SECONDS - start)) s"
