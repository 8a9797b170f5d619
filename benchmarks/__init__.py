"""What a user runs to measure edgegan, each as `python -m benchmarks.NAME` from the repository root after
scripts/setup.sh (edgegan itself comes from the installed package; sibling scripts are `benchmarks.NAME`).

The one-off measurements behind a design decision live in benchmarks/probes/ (README.md there: question, verdict,
result file); every script's figures are in benchmarks/results/.
"""
