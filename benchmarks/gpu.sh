#!/usr/bin/env bash
# The GPU benchmark: every stage's training throughput and peak memory at demo and real
# size, fp32 and AMP bf16, on the first visible CUDA device. Run as-is on a GPU machine
# from the repository root after `make venv`; results go to benchmarks/results/*_cuda.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export HF_HUB_OFFLINE=1
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device visible'; print(torch.cuda.get_device_name(0))"
for amp in none bf16; do
  "$PY" benchmarks/bench_rrg_detector_selector.py --device cuda --amp "$amp" --iters 10 --warmup 2
  "$PY" benchmarks/bench_rrg_generator.py --device cuda --amp "$amp" --iters 10 --warmup 2
  "$PY" benchmarks/bench_clip.py --device cuda --amp "$amp" --iters 10 --warmup 2
done
# back-translation needs the demo Marian pair (make demo builds it)
if [[ -d results/pretrained/marian_en_it ]]; then
  "$PY" benchmarks/bench_backtranslation.py --device cuda
fi
