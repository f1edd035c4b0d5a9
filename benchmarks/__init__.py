"""vglab's benchmarks: the engine against PyTorch eager, NumPy with hand-written backprop and JAX without jit,
and against this machine's measured floor (float32 matmul rate, memory bandwidth).

Run everything with ``make bench`` (= ``python benchmarks/run.py``); results go to ``benchmarks/README.md``.
Benchmark-only dependencies are in ``benchmarks/requirements.txt``; the lab and its tests do not need them.
"""
