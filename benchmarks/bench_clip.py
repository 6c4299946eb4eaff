"""R-CLIP training throughput (images/s) and peak memory, demo and real size.

    python benchmarks/bench_clip.py --device cpu --iters 3
    python benchmarks/bench_clip.py --device cuda --amp bf16 --iters 20

Each size times full training steps (both towers, both views, the R-CLIP loss, AdamW) and,
as the baseline measured in the same run, steps of the image tower alone on the same
images; the ratio is what the text tower and the second view cost. Random weights, random
images and token ids (no hub, no data). Results go to benchmarks/results/clip_<device>.md.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import torch
from transformers import BertConfig, BertModel

from crrg_clip.models.clip import CLIPModel, ImageEncoder
from crrg_clip.models.clip_losses import RCLIPLoss
from crrg_clip.runinfo import package_versions
from crrg_clip.runtime import describe_device

SIZES = {
    # the demo config (config/config.yaml) and the paper's (PROTOCOL.md, Table 6)
    "demo": dict(arch="resnet18", image=96, tokens=96, batch=16, proj=64,
                 bert=dict(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=128)),
    "real": dict(arch="resnet50", image=224, tokens=256, batch=32, proj=512,
                 bert=dict(vocab_size=28996, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                           intermediate_size=3072)),
}
SEP = 3


def batch(size: dict, device, generator):
    b, t = size["batch"], size["tokens"]
    x1 = torch.randn(b, 1, size["image"], size["image"], generator=generator).to(device)
    x2 = torch.randn(b, 1, size["image"], size["image"], generator=generator).to(device)

    def text():
        ids = torch.randint(5, size["bert"]["vocab_size"], (b, t), generator=generator)
        ids[:, 0], ids[:, -1] = 2, SEP
        return {"input_ids": ids.to(device), "attention_mask": torch.ones(b, t, dtype=torch.long, device=device)}

    return x1, x2, text(), text()


def peak_reset(device):
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_mib(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process high-water mark (KiB on Linux)


def timed(step, iters, warmup, device) -> float:
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters


def run_size(name: str, size: dict, device, amp: bool, iters: int, warmup: int, channels_last: bool = False) -> dict:
    torch.manual_seed(0)
    model = CLIPModel(ImageEncoder(size["arch"]), BertModel(BertConfig(**size["bert"]), add_pooling_layer=False),
                      projection_dim=size["proj"], temperature_init=0.07, sep_token_id=SEP).to(device)
    if channels_last:  # as train/clip.py with rclip.channels_last
        model.to(memory_format=torch.channels_last)
    criterion = RCLIPLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    x1, x2, t1, t2 = batch(size, device, torch.Generator().manual_seed(0))

    def clip_step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = criterion(model(x1, x2, t1, t2))["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def image_step():  # baseline: the image tower alone, one view
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = model.encode_image(x1).float().pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    peak_reset(device)
    t_clip = timed(clip_step, iters, warmup, device)
    mem_clip = peak_mib(device)
    peak_reset(device)
    t_image = timed(image_step, iters, warmup, device)
    b = size["batch"]
    params = sum(p.numel() for p in model.parameters())
    del model, optimizer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"size": name, "arch": size["arch"], "image": size["image"], "tokens": size["tokens"], "batch": b,
            "params_m": params / 1e6, "clip_img_s": b / t_clip, "image_only_img_s": b / t_image,
            "ratio": t_clip / t_image, "peak_mib": mem_clip}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--amp", choices=["none", "bf16"], default="none")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--sizes", default="demo,real")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--batch", type=int, default=0, help="override every size's batch (CPU runs)")
    parser.add_argument("--tokens", type=int, default=0, help="override every size's text length (real reports "
                        "are padded to the batch's longest, usually well under 256)")
    parser.add_argument("--channels-last", action="store_true", help="channels-last image tower (rclip.channels_last)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    amp = args.amp == "bf16"
    sizes = {n: {**SIZES[n], **({"batch": args.batch} if args.batch else {}),
                 **({"tokens": args.tokens} if args.tokens else {})} for n in args.sizes.split(",")}
    rows = [run_size(n, sizes[n], device, amp, args.iters, args.warmup, args.channels_last) for n in sizes]
    lines = [
        f"# R-CLIP training benchmark ({describe_device(device)})", "",
        f"- command: `python benchmarks/bench_clip.py --device {args.device} --amp {args.amp} "
        f"--iters {args.iters} --warmup {args.warmup} --sizes {args.sizes}"
        + (f" --batch {args.batch}" if args.batch else "") + (f" --tokens {args.tokens}" if args.tokens else "")
        + (" --channels-last" if args.channels_last else "") + "`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M')}; torch threads: {torch.get_num_threads()}; "
        f"torch {package_versions(('torch',))['torch']}",
        "- one step = both image views + both texts through the towers, R-CLIP loss (MVS + ICL + TCL), "
        "AdamW; baseline = image tower alone on one view, same images, same run",
        "- peak memory: CUDA max allocated, or on CPU the process's resident high-water mark "
        "(includes Python and libraries; cumulative over the sizes run)", "",
        "| size | image encoder | image side | tokens | batch | params (M) | CLIP step images/s "
        "| image-tower-only images/s | CLIP / image-only time | peak memory (MiB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['size']} | {r['arch']} | {r['image']} | {r['tokens']} | {r['batch']} | {r['params_m']:.1f} "
                     f"| {r['clip_img_s']:.1f} | {r['image_only_img_s']:.1f} | {r['ratio']:.2f} | {r['peak_mib']:.0f} |")
    text = "\n".join(lines) + "\n"
    out = Path(args.out or Path(__file__).parent / "results" / f"clip_{args.device}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    if device.type == "cuda":  # refresh the projection's throughput table
        import throughputs

        precision = "bf16" if amp else "fp32"
        suffix = ("_cl" if args.channels_last else "") + (f"_t{args.tokens}" if args.tokens else "")
        for r in rows:
            common = dict(device=f"cuda:{torch.cuda.get_device_name(0)}", source=f"benchmarks/results/{out.name}")
            throughputs.record(f"clip_train_{r['size']}_{precision}{suffix}_b{r['batch']}", r["clip_img_s"],
                               "images/s", **common)
            throughputs.record(f"clip_image_tower_{r['size']}_{precision}{suffix}_b{r['batch']}",
                               r["image_only_img_s"], "images/s", **common)


if __name__ == "__main__":
    main()
