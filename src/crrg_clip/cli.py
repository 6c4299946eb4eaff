"""Command line: ``python -m crrg_clip {provenance,report,classify} ...`` (``--help`` on each).

This module only parses and dispatches; the work is in ``crrg_clip.provenance`` and
``crrg_clip.inference``. A user error (bad path, not a model folder, no CUDA) prints one
``crrg-clip: error: ...`` line and exits 2; a file that cannot be read prints one
``file: reason`` line, the others still run, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import sys

INPUTS_HELP = ("images: JPEG, PNG or DICOM files (the kind is read from the file, not its name), "
               "directories (searched recursively for *.jpg, *.jpeg, *.png, *.dcm, *.dicom and suffix-less "
               "DICOMs) or quoted glob patterns such as 'scans/*.dcm'")
EXIT_HELP = ("Exit status: 0 when every image was processed; 1 when some file could not be read "
             "(one 'file: reason' line each on stderr; the others are still processed); 2 for a usage "
             "error such as a missing or wrong model folder.")
DEVICE_HELP = "auto (CUDA when visible, else CPU; the default), cpu or cuda"

REPORT_DESCRIPTION = """\
Write a region-by-region report for each image with a trained RRG model: the Faster R-CNN
finds the 29 Chest ImaGenome regions, the selector picks the regions worth a sentence, and
the region-conditioned GPT-2 writes them; the sentences are assembled as in the workflow.

Only the model folders are read (MODEL/detector, MODEL/selector, MODEL/generator). Images
are preprocessed exactly as the image cache: letterboxed to the cache side recorded in
the detector's config.json (long side S, centred black pad), JPEGs drafted as the cache
did, DICOMs through pydicom (modality LUT, VOI LUT or windowing, MONOCHROME1 inverted).
Decoding (beams, max tokens, sentence dedup) is that of MODEL/reports_test.run.json, the
record of the test reports, unless given below.

Per image NAME (the file name without its suffix) in --out:
  NAME.report.txt    the report
  NAME.regions.json  the 29 regions: box [x1, y1, x2, y2] in the original image's pixels
                     (null when not detected), detected, detection_score, selection_score,
                     selected, sentence, abnormal (the selector's abnormal head: logit > 0),
                     abnormal_score, ce_labels (CheXpert labels of the sentence: 1 positive,
                     0 negative, -1 uncertain, null not mentioned); and the report's ce_labels
  NAME.png           the image with its detected regions and selected regions' sentences
                     (the layout of the workflow's Figure 4)
"""

CLASSIFY_DESCRIPTION = """\
Print the pneumonia probability of each image under a trained RSNA linear probe
(results/rclip/probe/<encoder>/seed<seed>: the frozen image encoder and the linear head,
both in that one folder). Images are letterboxed as the RSNA cache was (the side recorded
in the probe's config.json), then resized to the probe's input side and normalised with
its stored mean and std, as in the probe's evaluation. The prediction is 'pneumonia' when
the probability is at least 0.5 (the threshold of the reported accuracy).

Output: a tab-separated table on stdout (image, pneumonia_probability, prediction), and
the same as CSV with --out.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crrg-clip", description="CRRG-CLIP: tables' provenance, and the trained "
                                     "models on new chest X-rays.")
    commands = parser.add_subparsers(dest="command", required=True)
    explain = commands.add_parser(
        "provenance",
        help="print the chain behind a table number and verify every sha256 on the way")
    explain.add_argument("table", help="results/table1.csv or results/table2.csv")
    explain.add_argument("--row", help="the table's model name, e.g. RRG-opt (default: every reproduced row)")
    explain.add_argument("--metric", help="a metric column, e.g. BLEU4 (default: all)")

    fmt = argparse.RawDescriptionHelpFormatter
    report = commands.add_parser("report", help="region-by-region reports of new images with a trained RRG model",
                                 description=REPORT_DESCRIPTION, epilog=EXIT_HELP, formatter_class=fmt)
    report.add_argument("images", nargs="+", metavar="IMAGE", help=INPUTS_HELP)
    report.add_argument("--model", required=True, metavar="MODEL",
                        help="an RRG run folder holding detector/, selector/ and generator/, "
                             "e.g. results/rrg/rrg_opt/seed0")
    report.add_argument("--out", default="crrg_reports", metavar="DIR",
                        help="where the per-image files go (created; default: %(default)s)")
    report.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help=DEVICE_HELP)
    report.add_argument("--batch-size", type=int, default=8, metavar="N",
                        help="images per detector batch (default: %(default)s)")
    report.add_argument("--num-beams", type=int, metavar="N", help="beam search width per sentence")
    report.add_argument("--max-new-tokens", type=int, metavar="N", help="longest sentence in tokens")
    report.add_argument("--dedup-similarity", choices=("token_f1", "tfidf_cosine"),
                        help="near-duplicate sentence measure of report assembly")
    report.add_argument("--dedup-threshold", type=float, metavar="X",
                        help="a sentence more similar than this to a kept one is dropped")

    classify = commands.add_parser("classify", help="pneumonia probability of new images with a trained RSNA probe",
                                   description=CLASSIFY_DESCRIPTION, epilog=EXIT_HELP, formatter_class=fmt)
    classify.add_argument("images", nargs="+", metavar="IMAGE", help=INPUTS_HELP)
    classify.add_argument("--probe", required=True, metavar="PROBE",
                          help="a probe folder, e.g. results/rclip/probe/rclip_radiologist/seed0")
    classify.add_argument("--out", metavar="CSV", help="also write the table as CSV here")
    classify.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help=DEVICE_HELP)
    classify.add_argument("--batch-size", type=int, default=32, metavar="N",
                          help="images per batch (default: %(default)s)")
    return parser


def _dispatch(args) -> int:
    if args.command == "provenance":
        from . import provenance

        return provenance.explain(args.table, row=args.row, metric=args.metric)
    from .inference import commands

    if args.batch_size < 1:
        raise commands.UserError(f"--batch-size {args.batch_size}: must be at least 1")
    if args.command == "report":
        decoding = {"num_beams": args.num_beams, "max_new_tokens": args.max_new_tokens,
                    "similarity": args.dedup_similarity, "threshold": args.dedup_threshold}
        return commands.report_images(args.images, model=args.model, out=args.out, device=args.device,
                                      batch_size=args.batch_size, decoding=decoding)
    if args.command == "classify":
        return commands.classify_images(args.images, probe=args.probe, out=args.out, device=args.device,
                                        batch_size=args.batch_size)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .inference.errors import UserError

    try:
        return _dispatch(args)
    except UserError as error:
        print(f"crrg-clip: error: {error}", file=sys.stderr)
        return 2
    except PermissionError as error:
        print(f"crrg-clip: error: {error.filename}: permission denied", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
