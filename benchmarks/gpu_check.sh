#!/usr/bin/env bash
# vglab on a GPU: the device JAX sees, the benchmark, then the numerical tests against their float64 references.
#   bash benchmarks/gpu_check.sh [LOG_DIR]      (needs a CUDA build of jax: pip install -e ".[cuda]"; PYTHON defaults
#   to .venv/bin/python when it exists, else python3)
# JAX_PLATFORMS=cuda makes JAX fail instead of falling back to the CPU.  Each step has its own time limit
# (BENCH_S, TESTS_S seconds; an H100 needed > 330 s for the whole benchmark at the default budget 1.5 and ran
# 75 of these tests in 200 s) so one slow step cannot take the other's time; the logs go to LOG_DIR.
set -u
cd "$(dirname "$0")/.."
LOG_DIR=${1:-test-artifacts/gpu}
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
mkdir -p "$LOG_DIR"
export JAX_PLATFORMS=${JAX_PLATFORMS:-cuda} PYTHONUNBUFFERED=1

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 | tee "$LOG_DIR/device.txt"
$PYTHON - <<'EOF' 2>&1 | tee -a "$LOG_DIR/device.txt"
import jax, numpy, vglab
print("jax", jax.__version__, "backend", jax.default_backend(), "devices", jax.devices(), "numpy", numpy.__version__)
print("vglab gradient norms, depth 100 sigmoid:", vglab.gradient_norms(vglab.MLP(depth=100, width=64,
      activation="sigmoid")).log10_activation_grad[0, [0, -1]], "(log10; on", jax.devices()[0].device_kind + ")")
EOF

timeout "${BENCH_S:-1200}" $PYTHON benchmarks/run.py --budget "${BENCH_BUDGET:-1.5}" ${BENCH_ARGS:-} 2>&1 | tee "$LOG_DIR/bench.log"
echo "benchmark exit: ${PIPESTATUS[0]}"

timeout "${TESTS_S:-900}" $PYTHON -m pytest -q -p no:cacheprovider -rfE --timeout 120 \
    --junitxml="$LOG_DIR/tests.xml" ${GPU_TESTS:-tests/test_compilation.py tests/test_gradients.py \
    tests/test_spectrum.py tests/test_benchmarks_smoke.py tests/test_recurrent.py tests/test_transformer.py} \
    2>&1 | tee "$LOG_DIR/tests.log" | tail -25
echo "tests exit: ${PIPESTATUS[0]}"
