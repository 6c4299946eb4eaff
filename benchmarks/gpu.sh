#!/usr/bin/env bash
# Every GPU measurement, as one command (~8 min on an H200), then the paper-run projection.
# Run from anywhere after `make venv`:  benchmarks/gpu.sh
# Results: benchmarks/results/*_cuda*.md and generation_batched.json; each bench also
# refreshes its entries of benchmarks/results/throughputs.json (measured_on = today, stale
# marks cleared), and project_paper_run.py rereads them at the end.
# Smoke test without a GPU (tiny sizes, results to a temp dir, throughputs.json untouched):
#   DEVICE=cpu benchmarks/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DEVICE=${DEVICE:-cuda}
export HF_HUB_OFFLINE=1
start=$SECONDS
failed=()

# step LIMIT_S CMD...: run one measurement with its own time limit; a failure is reported, not fatal
step() {
  local limit=$1
  shift
  echo "== [$((SECONDS - start)) s] $*"
  if ! timeout "$limit" "$@"; then
    echo "!! failed or over ${limit} s: $*"
    failed+=("$*")
  fi
}

if [[ $DEVICE == cuda ]]; then
  "$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device visible'"
  GPU=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0))")
  R=benchmarks/results
  DET=(--sizes real --iters 10 --warmup 3)
  GEN=(--cases gpt2-medium --iters 10 --gen-iters 2)
  GEN64=(--cases gpt2-medium --sentences 64 --gen-batch 64 --iters 5 --gen-iters 2)
  BATCHED=(--regions 512 --tokens 20 --repeats 2)
  CLIP=(--sizes real --iters 10 --warmup 3)
  PROJECT_OUT=()
else
  GPU="none (CPU smoke test)"
  R=$(mktemp -d)
  DET=(--sizes demo --iters 1 --warmup 0 --threads 1)
  GEN=(--cases demo --iters 1 --gen-iters 1 --gen-tokens 4 --threads 1)
  GEN64=(--cases demo --sentences 64 --gen-batch 64 --iters 1 --gen-iters 1 --gen-tokens 4 --threads 1)
  BATCHED=(--cases demo --demo-regions 24 --demo-tokens 4 --repeats 1)
  CLIP=(--sizes demo --iters 1 --warmup 0 --threads 1)
  PROJECT_OUT=(--out "$R/paper_run_projection")
  echo "CPU smoke test: results go to $R"
fi
echo "device: $DEVICE ($GPU)"

# 1. detector + selector, paper size: fp32, bf16 (rrg.detector_amp) and bf16 + channels-last
#    (rrg.detector_channels_last); each row also times the step with the old per-step .item() sync
step 200 "$PY" benchmarks/bench_rrg_detector_selector.py --device "$DEVICE" --amp bf16 --channels-last "${DET[@]}" \
  --out "$R/rrg_detector_selector_$DEVICE.md"
# 2. generator training + generation, GPT-2 medium, float32 (rrg.generator_amp none): batch 8 (one image) and 64
step 120 "$PY" benchmarks/bench_rrg_generator.py --device "$DEVICE" --amp none "${GEN[@]}" --out "$R/rrg_generator_${DEVICE}_b8.md"
step 120 "$PY" benchmarks/bench_rrg_generator.py --device "$DEVICE" --amp none "${GEN64[@]}" --out "$R/rrg_generator_${DEVICE}_b64.md"
# 3. generation per image vs batched across images (generate_for_pairs), outputs compared
step 150 "$PY" benchmarks/bench_generation_batched.py --device "$DEVICE" "${BATCHED[@]}" --out "$R/generation_batched_$DEVICE.json"
# 4. R-CLIP: bf16 as configured, + channels-last (rclip.channels_last), and at 128 tokens (real
#    batches are padded to their longest report, not to max_text_tokens)
step 90 "$PY" benchmarks/bench_clip.py --device "$DEVICE" --amp bf16 "${CLIP[@]}" --out "$R/clip_$DEVICE.md"
step 90 "$PY" benchmarks/bench_clip.py --device "$DEVICE" --amp bf16 --channels-last "${CLIP[@]}" --out "$R/clip_${DEVICE}_channels_last.md"
step 90 "$PY" benchmarks/bench_clip.py --device "$DEVICE" --amp bf16 --tokens 128 "${CLIP[@]}" --out "$R/clip_${DEVICE}_t128.md"
# 5. back-translation needs the demo Marian pair (make demo builds it)
if [[ $DEVICE == cuda && -d results/pretrained/marian_en_it ]]; then
  step 90 "$PY" benchmarks/bench_backtranslation.py --device cuda
fi
# 6. the projection from the refreshed table
step 60 "$PY" benchmarks/project_paper_run.py --gpu "${GPU#cuda:}" "${PROJECT_OUT[@]}"

# on the lent device machine (the `run` tool), only $OUT comes back: copy the results there
if [[ -n ${OUT:-} && $DEVICE == cuda ]]; then
  cp -r benchmarks/results "$OUT/"
fi
echo "== done in $((SECONDS - start)) s; ${#failed[@]} step(s) failed"
for f in "${failed[@]}"; do echo "   failed: $f"; done
[[ ${#failed[@]} -eq 0 ]]
