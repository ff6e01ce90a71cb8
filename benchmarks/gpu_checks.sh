#!/usr/bin/env bash
# The GPU checks of the issue "paper profile smoke and GPU throughput", as one prepared script for a lent GPU machine
# (the `run` device tool: it starts in the repository root with $OUT an empty folder whose contents come back).
#
#   bash benchmarks/gpu_checks.sh            # everything, logs under ${OUT:-gpu_checks}/
#   STEPS=5 bash benchmarks/gpu_checks.sh    # shorter timed loops
#
# Each check writes its own log and the script goes on when one fails (its exit status is listed at the end), so one
# broken benchmark never costs the others their device time. Order: what the issue asks first (PANN throughput
# against the authors' loop, bf16, channels-last, compile, the loader alone), then FixMatch (mu = 7), NPID
# (ResNet-50, batch 64), one SSL method, and last a chapter's --smoke run end to end on the GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_checks}
STEPS=${STEPS:-20}
mkdir -p "$OUT"
PY=${PYTHON:-python}
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export ESCLIB_CACHE=${ESCLIB_CACHE:-$PWD/.gpu_cache} ESCLIB_RESULTS=${ESCLIB_RESULTS:-$PWD/.gpu_cache/results}

declare -a SUMMARY
check() {  # check NAME COMMAND...: run, log to $OUT/NAME.log with its wall time, record the exit status
    local name=$1; shift
    local start=$SECONDS
    echo "== $name: $*" | tee "$OUT/$name.log"
    "$@" >>"$OUT/$name.log" 2>&1
    local rc=$?
    echo "== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$OUT/$name.log"
    SUMMARY+=("$name: exit $rc, $((SECONDS - start)) s")
}

{ nvidia-smi; $PY -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"; } >"$OUT/device.txt" 2>&1
$PY -c "import torchlibrosa" 2>/dev/null || $PY -m pip install --quiet -c constraints.txt torchlibrosa==0.1.0 \
    >>"$OUT/device.txt" 2>&1 || echo "torchlibrosa not installable: the authors' variant is skipped" >>"$OUT/device.txt"

check panns "$PY" benchmarks/bench_panns.py --arch Cnn14 --batch 32 --steps "$STEPS" --workers 8
check fixmatch "$PY" benchmarks/bench_fixmatch.py --arch Cnn14 --batch 8 --mu 7 --seconds 4 --repeats 3
check npid "$PY" benchmarks/bench_npid.py --arch resnet50 --batch 64 --steps "$STEPS"
check ssl "$PY" benchmarks/bench_ssl.py --steps "$STEPS"
check smoke "$PY" -m esclib.cli run 01_pann_transfer --smoke -p device cuda --no-progress

printf '%s\n' "${SUMMARY[@]}" | tee "$OUT/summary.txt"
