"""``python -m inference predict --config C --weights W IMAGES... --out preds.json``: COCO results JSON.

Each entry: image_id, category_id (class id + 1, or by name from --coco-gt), bbox [x, y, w, h],
score, segmentation (COCO RLE) plus file_name, and diameter_um / centroid when --um-per-px is given.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="detectron2 config YAML")
    parser.add_argument("--weights", required=True, help="weights (.safetensors, .pth or detectron2 .pkl; read as data only)")
    parser.add_argument("images", nargs="+", help="image files or directories of images")
    parser.add_argument("--out", required=True, help="output JSON (COCO results list)")
    parser.add_argument("--um-per-px", type=float, default=None,
                        help="the images' pixel size in µm: µm measurements, and a model that states its own "
                             "pixel size (INPUT.UM_PER_PX) sees the images at that scale, tiled when large")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--score-thresh", type=float, default=None, help="override MODEL.ROI_HEADS.SCORE_THRESH_TEST")
    parser.add_argument("--tile-size", type=int, default=None,
                        help="without a physical scale: tile images with a side larger than this")
    parser.add_argument("--tile-overlap", type=int, default=128)
    parser.add_argument("--class-names", default=None, help="comma-separated class names in model order")
    parser.add_argument("--coco-gt", default=None,
                        help="COCO JSON whose images/categories give image_id (by file name) and category_id (by name)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def _collect(paths: list[str]) -> list[str]:
    out = []
    for p in paths:
        if os.path.isdir(p):
            out.extend(sorted(os.path.join(p, f) for f in os.listdir(p) if f.lower().endswith(IMAGE_EXTS)))
        else:
            out.append(p)
    return out


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from ..checkpoint import CheckpointError
    from ..config import ConfigError, load_config
    from ..predictor import Predictor

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cfg = load_config(args.config)
        if args.score_thresh is not None:
            cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = float(args.score_thresh)
        names = [s.strip() for s in args.class_names.split(",")] if args.class_names else None
        predictor = Predictor(cfg, args.weights, device=args.device, class_names=names,
                              tile_size=args.tile_size, tile_overlap=args.tile_overlap)
    except (ConfigError, CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    image_ids: dict[str, int] = {}
    category_ids = None
    if args.coco_gt:
        with open(args.coco_gt, encoding="utf-8") as f:
            gt = json.load(f)
        image_ids = {os.path.basename(im["file_name"]): int(im["id"]) for im in gt.get("images", [])}
        by_name = {c["name"]: int(c["id"]) for c in gt.get("categories", [])}
        if names:
            missing = [n for n in names if n not in by_name]
            if missing:
                print(f"error: class names {missing} not among the COCO categories", file=sys.stderr)
                return 2
            category_ids = [by_name[n] for n in names]
    files = _collect(args.images)
    if not files:
        print("error: no images given", file=sys.stderr)
        return 2
    results = []
    failed = 0
    warned: set[str] = set()
    for idx, path in enumerate(tqdm(files, desc="predict", unit="img"), start=1):
        try:
            pred = predictor.predict(path, um_per_px=args.um_per_px)
        except ValueError as e:
            print(f"warning: skipped {path}: {e}", file=sys.stderr)
            failed += 1
            continue
        if pred.scale_warning and pred.scale_status not in warned:
            warned.add(pred.scale_status)  # once per kind, not per image
            print(f"warning: {os.path.basename(path)}: {pred.scale_warning}", file=sys.stderr)
        image_id = image_ids.get(os.path.basename(path), idx)
        entries = pred.to_coco_results(image_id, category_ids)
        for i, e in enumerate(entries):
            e["file_name"] = os.path.basename(path)
            e["class_name"] = pred.class_names[i]
            e["centroid_px"] = [float(v) for v in pred.centroid_px[i]]
            e["scale_status"] = pred.scale_status
            if args.um_per_px is not None:
                e["area_um2"] = float(pred.area_um2[i])
                e["diameter_um"] = float(pred.diameter_um[i])
                e["centroid_um"] = [float(v) for v in pred.centroid_um[i]]
        results.extend(entries)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(results, f)
    os.replace(tmp, args.out)
    print(f"{len(results)} instances from {len(files) - failed} image(s) written to {args.out}", file=sys.stderr)
    return 1 if failed == len(files) else 0
