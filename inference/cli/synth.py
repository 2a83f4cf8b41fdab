"""``python -m inference synth OUT``: draw a synthetic COCO dataset of brightfield cell images."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="output folder: <split>/*.png and <split>.json per split")
    parser.add_argument("--seed", type=int, default=0, help="the same seed draws the same images (default 0)")
    parser.add_argument("--train", type=int, default=40, help="training images (default 40)")
    parser.add_argument("--val", type=int, default=5, help="validation images (default 5)")
    parser.add_argument("--test", type=int, default=10, help="test images (default 10)")
    parser.add_argument("--size", default="512x640", help="HxW in pixels (default 512x640)")
    parser.add_argument("--um-per-px", type=float, nargs=2, default=(0.2, 0.28), metavar=("MIN", "MAX"),
                        help="pixel size range in µm, drawn per image (default 0.2 0.28)")
    parser.add_argument("--cells", type=int, nargs=2, default=(10, 26), metavar=("MIN", "MAX"),
                        help="cells per image (default 10 26)")
    parser.add_argument("--polygons", action="store_true", help="write polygons instead of RLE masks")
    parser.add_argument("--images-per-patient", type=int, default=0,
                        help="give every N consecutive images one patient_id (default: no patient ids)")


def run(args: argparse.Namespace) -> int:
    from ..synth import FieldOptions, generate_dataset

    try:
        h, w = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--size must be HxW, e.g. 512x640 (got {args.size!r})")
    opts = FieldOptions(height=h, width=w, um_per_px=tuple(args.um_per_px), cells=tuple(args.cells))
    out = generate_dataset(args.out, seed=args.seed, splits={"train": args.train, "val": args.val, "test": args.test},
                           opts=opts, polygons=args.polygons, images_per_patient=args.images_per_patient)
    for split, coco in out.items():
        print(f"{split}: {len(coco['images'])} images, {len(coco['annotations'])} cells -> {args.out}/{split}.json")
    return 0
