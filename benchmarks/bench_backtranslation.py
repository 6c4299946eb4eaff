"""Back-translation speed: batched + length-sorted vs one text at a time (target >= 5x).

All variants run in ONE process on the same unique texts, the same two Marian models and
the same generation settings; the ratio is what counts, not the absolute numbers. No cache.

    .venv/bin/python benchmarks/bench_backtranslation.py --device cpu
    .venv/bin/python benchmarks/bench_backtranslation.py --device cuda

Models: results/pretrained/marian_en_it + marian_it_en when present (the demo pair), else
a demo pair is built into a temporary folder from made-up texts. Texts: the `text` column
of --texts (default results/rclip/texts_radiologist.parquet when present), else made-up.
Results: benchmarks/results/backtranslation_<device>.md.
"""

from __future__ import annotations

import argparse
import logging
import random
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from crrg_clip import backtranslate as bt
from crrg_clip.runtime import describe_device, pick_device, set_threads

ROOT = Path(__file__).resolve().parents[1]
PHRASES = [
    "The heart size is normal.", "The lungs are clear.", "There is no pleural effusion.",
    "No pneumothorax is seen.", "Mild cardiomegaly is present.", "No acute osseous abnormality.",
    "There is a small left pleural effusion.", "The mediastinal and hilar contours are normal.",
    "Patchy opacity at the right lung base likely reflects atelectasis.",
    "Focal consolidation in the left mid lung is concerning for pneumonia.",
]


def made_up_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.sample(PHRASES, rng.randint(1, 7))) for _ in range(n)]


class Unsorted:
    """A translator whose lengths are all equal: batches keep the input order (no sorting)."""

    def __init__(self, inner):
        self.inner, self.identity = inner, inner.identity

    def length(self, texts):
        return [0] * len(texts)

    def translate_batch(self, texts):
        return self.inner.translate_batch(texts)


def timed(texts, forward, backward, settings, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = bt.back_translate(texts, forward, backward, settings)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--en-it", default=str(ROOT / "results/pretrained/marian_en_it"))
    parser.add_argument("--it-en", default=str(ROOT / "results/pretrained/marian_it_en"))
    parser.add_argument("--texts", default=str(ROOT / "results/rclip/texts_radiologist.parquet"))
    parser.add_argument("--n", type=int, default=32, help="unique texts to translate")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-beams", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    set_threads(args.threads)
    device = pick_device(args.device)

    tmp = None
    en_it, it_en = args.en_it, args.it_en
    if not (Path(en_it).is_dir() and Path(it_en).is_dir()):
        from crrg_clip.models.demo_marian import build_demo_marian_pair
        tmp = tempfile.TemporaryDirectory()
        en_it, it_en = f"{tmp.name}/en_it", f"{tmp.name}/it_en"
        build_demo_marian_pair(made_up_texts(80, seed=1), en_it, it_en, vocab_size=1000, sizes={},
                               train_steps=200, seed=0, batch_size=8, max_length=args.max_length)
    if Path(args.texts).exists():
        texts = list(dict.fromkeys(pd.read_parquet(args.texts)["text"].astype(str)))
        source = args.texts
    else:
        texts, source = [], "made-up"
    texts = (texts + [t for t in made_up_texts(4 * args.n, seed=2) if t not in texts])[:args.n]
    texts = list(dict.fromkeys(texts))

    base = dict(num_beams=args.num_beams, do_sample=True, temperature=0.7, max_length=args.max_length, seed=0)
    batched = bt.TranslationRequests(batch_size=args.batch_size, **base)
    single = bt.TranslationRequests(batch_size=1, **base)
    forward = bt.MarianTranslator(en_it, device, batched)
    backward = bt.MarianTranslator(it_en, device, batched)
    bt.back_translate(texts[:4], forward, backward, batched)  # warm-up

    rows = []
    for name, settings, fwd, bwd in (
        ("one text at a time", single, forward, backward),
        ("batched, unsorted", batched, Unsorted(forward), Unsorted(backward)),
        ("batched + length-sorted", batched, forward, backward),
    ):
        seconds, result = timed(texts, fwd, bwd, settings, device)
        rows.append((name, settings.batch_size, seconds, len(texts) / seconds, result.counts.get("ok", 0)))
        print(f"{name}: {seconds:.2f} s", flush=True)
    baseline = rows[0][3]
    cfg = forward.model.config
    lines = [
        f"# Back-translation speed ({describe_device(device)})",
        "",
        f"- {time.strftime('%Y-%m-%d %H:%M')}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads",
        f"- models: {en_it}, {it_en} (MarianMTModel d_model {cfg.d_model}, {cfg.encoder_layers}+{cfg.decoder_layers} "
        f"layers, vocab {cfg.vocab_size})",
        f"- {len(texts)} unique texts ({source}), en -> it -> en, num_beams {args.num_beams}, sampling at "
        f"temperature 0.7, max_length {args.max_length}, no cache",
        "",
        "| variant | batch | seconds | texts/s | ratio vs one-at-a-time | ok |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {n} | {b} | {s:.2f} | {r:.2f} | {r / baseline:.1f}x | {ok} |" for n, b, s, r, ok in rows]
    ratio = rows[-1][3] / baseline
    lines += ["", f"Batched + length-sorted: **{ratio:.1f}x** one-text-at-a-time (target >= 5x: "
              f"{'met' if ratio >= 5 else 'NOT met'})."]
    out = Path(args.out or ROOT / f"benchmarks/results/backtranslation_{args.device}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
