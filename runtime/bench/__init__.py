"""Benchmark harness behind `edgegan bench`: latency tables for generator files (runners per backend, machine
description, MAC counts, reports). Torch-free; `import edgegan.runtime` never loads it."""
