"""RRG generator speed and memory: training sentences/s and generation sentences/s.

--amp bf16 means what the rules do with rrg.generator_amp = bf16 on CUDA: training under
bf16 autocast, generation with the weights cast to bf16 once.

Two sizes in the same run: the demo GPT-2 (config.yaml's demo_models.gpt2, GPT-2 trainable
as in the demo) and GPT-2 medium (healx/gpt-2-pubmed-medium's dimensions, random weights,
GPT-2 frozen as in paper.yaml). The ratio medium/demo is the number to compare across
machines. Peak memory: CUDA max_memory_allocated per case; on CPU the process's peak RSS
after each case (monotone, so the medium row includes the demo's).

Usage:
  python benchmarks/bench_rrg_generator.py --device cpu --iters 3
  python benchmarks/bench_rrg_generator.py --device cuda --amp bf16 --iters 20
Writes benchmarks/results/rrg_generator_<device>.md.
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from pathlib import Path

import torch

from crrg_clip.generate import autocast, inference_precision
from crrg_clip.models.demo_gpt2 import train_tokenizer
from crrg_clip.models.generator import (ConditioningConfig, LanguageModelLoss, PseudoSelfAttentionConditioning,
                                        RegionGenerator, collate_targets)

SIZES = {
    "demo": {"n_layer": 2, "n_embd": 64, "n_head": 2, "vocab_size": 1000, "n_positions": 256, "freeze": False,
             "feature_dim": 128},
    "gpt2-medium": {"n_layer": 24, "n_embd": 1024, "n_head": 16, "vocab_size": 50257, "n_positions": 1024,
                    "freeze": True, "feature_dim": 1024},
}


def make_generator(size: dict, device: torch.device) -> RegionGenerator:
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = train_tokenizer(["the lungs are clear.", "no pleural effusion."], vocab_size=300)
    eos = tokenizer.eos_token_id
    config = GPT2Config(n_layer=size["n_layer"], n_embd=size["n_embd"], n_head=size["n_head"],
                        vocab_size=size["vocab_size"], n_positions=size["n_positions"], bos_token_id=eos,
                        eos_token_id=eos)
    conditioning = PseudoSelfAttentionConditioning(ConditioningConfig(
        feature_dim=size["feature_dim"], hidden_dim=1024, n_layer=size["n_layer"], n_head=size["n_head"],
        n_embd=size["n_embd"]))
    generator = RegionGenerator(GPT2LMHeadModel(config), conditioning, tokenizer).to(device)
    generator.freeze_gpt2(size["freeze"])
    return generator


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_memory_mib(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def bench_case(name: str, size: dict, args, device) -> dict:
    torch.manual_seed(0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    generator = make_generator(size, device)
    trainable = generator.conditioning if size["freeze"] else generator
    optimizer = torch.optim.AdamW([p for p in trainable.parameters() if p.requires_grad], lr=1e-4)
    loss_fn = LanguageModelLoss()
    eos = generator.eos_token_id
    sequences = [[eos, *torch.randint(1, 300, (args.tokens,)).tolist(), eos] for _ in range(args.sentences)]
    batch = {k: v.to(device) for k, v in collate_targets(sequences, eos).items()}
    features = torch.randn(args.sentences, size["feature_dim"], device=device)

    def step():
        with autocast(device, args.amp):
            logits = generator(features, batch["input_ids"], batch["attention_mask"])
        loss = loss_fn(logits, batch["labels"])["lm"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    generator.train()
    for _ in range(args.warmup):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(args.iters):
        step()
    sync(device)
    train_seconds = time.perf_counter() - start

    generator.eval()
    generator = inference_precision(generator, device, args.amp)  # as generate_reports does
    dtype = generator.conditioning.mlp[0].weight.dtype
    gen_features = torch.randn(args.gen_batch, size["feature_dim"], device=device, dtype=dtype)
    with torch.no_grad():
        generator.generate(gen_features, num_beams=args.beams, max_new_tokens=2)  # warm-up
        generator.gpt2.generation_config.min_new_tokens = args.gen_tokens  # fixed length: comparable work
        sync(device)
        start = time.perf_counter()
        for _ in range(args.gen_iters):
            generator.generate(gen_features, num_beams=args.beams, max_new_tokens=args.gen_tokens)
        sync(device)
        gen_seconds = time.perf_counter() - start
    result = {
        "case": name,
        "gpt2": "frozen" if size["freeze"] else "trainable",
        "params_m": sum(p.numel() for p in generator.parameters()) / 1e6,
        "trainable_m": sum(p.numel() for p in generator.parameters() if p.requires_grad) / 1e6,
        "train_sent_s": args.iters * args.sentences / train_seconds,
        "gen_sent_s": args.gen_iters * args.gen_batch / gen_seconds,
        "peak_mib": peak_memory_mib(device),
    }
    print(result, flush=True)
    del generator, optimizer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--amp", choices=["none", "bf16"], default="none")
    parser.add_argument("--iters", type=int, default=3, help="timed training steps per case")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--sentences", type=int, default=8, help="sentences per training batch (~1 image)")
    parser.add_argument("--tokens", type=int, default=24, help="tokens per sentence")
    parser.add_argument("--gen-batch", type=int, default=8)
    parser.add_argument("--gen-tokens", type=int, default=20)
    parser.add_argument("--gen-iters", type=int, default=1)
    parser.add_argument("--beams", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--cases", default="demo,gpt2-medium")
    parser.add_argument("--out", default=None, help="default benchmarks/results/rrg_generator_<device>.md")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device visible")
    results = [bench_case(name, SIZES[name], args, device) for name in args.cases.split(",")]

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.machine()}, {torch.get_num_threads()} threads"
    lines = [
        f"# RRG generator: training and generation throughput ({args.device})",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_rrg_generator.py {' '.join(sys.argv[1:])}`",
        f"Machine: {name}; torch {torch.__version__}; amp {args.amp}",
        f"Training batch: {args.sentences} sentences x {args.tokens + 2} tokens, AdamW, {args.iters} timed steps "
        f"after {args.warmup} warm-up. Generation: batch {args.gen_batch}, {args.beams} beams, "
        f"{args.gen_tokens} new tokens (min = max, fixed work).",
        "",
        "| case | GPT-2 | params (M) | trainable (M) | train sentences/s | generated sentences/s | peak memory (MiB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r['case']} | {r['gpt2']} | {r['params_m']:.1f} | {r['trainable_m']:.1f} | "
                     f"{r['train_sent_s']:.1f} | {r['gen_sent_s']:.2f} | {r['peak_mib']:.0f} |")
    if len(results) == 2:
        a, b = results
        lines += ["", f"Ratio {b['case']} / {a['case']}: training {b['train_sent_s'] / a['train_sent_s']:.3f}x, "
                      f"generation {b['gen_sent_s'] / a['gen_sent_s']:.3f}x."]
    if device.type == "cpu":
        lines += ["", "CPU peak memory is the process's peak RSS after the case (cumulative across rows)."]
    out = Path(args.out or Path(__file__).resolve().parent / "results" / f"rrg_generator_{args.device}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())
    if device.type == "cuda":  # refresh the projection's throughput table (GPT-2 medium only)
        import throughputs

        precision = "bf16" if args.amp == "bf16" else "fp32"
        for r in results:
            if r["case"] != "gpt2-medium":
                continue
            common = dict(device=f"cuda:{name}", source=f"benchmarks/results/{out.name}")
            throughputs.record(f"generator_train_medium_{precision}_b{args.sentences}", r["train_sent_s"],
                               "sentences/s", **common)
            throughputs.record(f"generation_medium_{precision}_b{args.gen_batch}", r["gen_sent_s"], "sentences/s",
                               note=f"{args.beams} beams, {args.gen_tokens} new tokens (min = max)", **common)


if __name__ == "__main__":
    main()
