#!/usr/bin/env bash
# The GPU list of benchmarks/README.md in one call, for whoever is lent a GPU: the CUDA equivalence tests, the
# paper grid at full size (Fashion-MNIST where its files are found, full MNIST too where present, else a
# synthetic set of MNIST's shape), the width grid and the peers, all on CUDA; one summary at the end. Every step
# has its own time limit so that the whole fits in 8 minutes; a step that fails or runs out of time is named in
# the summary and the others still run. Needs torch, numpy and scipy (pytest only for the tests).
#
#   bash benchmarks/gpu.sh            # from the repository root; results in benchmarks/RESULTS.md (and $OUT)
#
# Data: $UNDERSPEC_DATA (or ~/.cache/underspec) may hold FashionMNIST/raw and MNIST/raw (torchvision's files);
# Debian's /usr/share/datasets/fashion-mnist is read too.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD OMP_WAIT_POLICY=PASSIVE
PY=${PYTHON:-python}
summary=()
step() {  # step SECONDS NAME COMMAND...: run with a limit, note how it ended
  local limit=$1 name=$2; shift 2
  local started=$SECONDS
  echo "=== $name (limit ${limit}s)"
  timeout "$limit" "$@"
  local rc=$?
  local took=$((SECONDS - started))
  case $rc in
    0) summary+=("ok       ${took}s  $name") ;;
    124) summary+=("TIMEOUT  ${took}s  $name") ;;
    *) summary+=("FAILED   ${took}s  $name (exit $rc)") ;;
  esac
}

if ! $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA device visible: nothing to measure here (run this where a GPU is lent)"
  exit 1
fi
$PY -c "import torch; print('device:', torch.cuda.get_device_name(), '| torch', torch.__version__)"

data=$($PY - <<'EOF'
import underspec
for name in ("fashion-mnist", "mnist"):
    try:
        underspec.load_dataset(name, download=False)
        print(name)
    except Exception:
        pass
EOF
)
[ -n "$data" ] || data="synthetic-60k"
echo "full-size data: $data"

if $PY -c "import pytest" 2>/dev/null; then
  step 90 "CUDA equivalence tests" $PY -m pytest -q -p no:cacheprovider tests/test_engine.py tests/test_matching.py -k cuda
else
  summary+=("SKIPPED  0s  CUDA equivalence tests (no pytest in this image)")
fi
cd benchmarks
for d in $data; do
  step 90 "paper grid, $d, 50 epochs (46,900 steps)" $PY paper_grid.py --dataset "$d" --device cuda
done
step 60 "paper grid against the loop, synthetic-60k" $PY train_speed.py --paper --device cuda --dataset synthetic-60k --reference-networks 4 --epochs 2
step 100 "width grid (16-1024, depth 1-3, SGD and Adam)" $PY width_depth.py --device cuda --seeds 3
step 90 "peers: torch.func and bmm + autograd, paper grid" $PY peers.py --device cuda --repeats 1
step 60 "peers at widths 256-4096" $PY peers.py --device cuda --widths 256 1024 4096 --depths 1 3 --optimizers sgd adam --seeds 3 --repeats 1
cd ..
[ -n "${OUT:-}" ] && cp benchmarks/RESULTS.md "$OUT/"

echo
echo "=== summary (results appended to benchmarks/RESULTS.md)"
printf '%s\n' "${summary[@]}"
