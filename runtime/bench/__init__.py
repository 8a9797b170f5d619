"""Benchmark harness behind `edgegan bench`, torch-free; `import edgegan.runtime` never loads it.

Modules:
    harness  run_bench(): cold start, warm-up and interleaved timed rounds over every configuration
    runners  what gets timed: onnxruntime generators, the machine-peak matmul, the Runner protocol
    rows     the result rows: latency percentiles, images/s, GFLOP/s, share of peak, torch ratios
    machine  the machine's description, memory high-water marks, CPU pinning
    macs     multiply-adds counted in an ONNX graph
    report   the table, markdown, JSON and plot of a result
    cli      the `edgegan bench` command
"""
