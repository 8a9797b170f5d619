"""Evaluation behind `edgegan eval` and export's quality gate: datasets (IDX, folders, .npz, downloads), the
evaluator contract, FID/KID/precision/recall metrics and per-class figures. Torch-free; `import edgegan.runtime`
never loads it."""
