"""Rebuild and evaluate the demo model (``inference/assets/demo_model``, issue 15 section 3).

    .venv/bin/python benchmarks/demo_model.py data OUT          # training + held-out sets under OUT
    .venv/bin/python -m inference train --config inference/configs/demo_cascade_small.yaml \\
        --train-json OUT/train.json --output RUN ...            # see inference/assets/demo_model/README.md
    .venv/bin/python benchmarks/demo_model.py evaluate OUT --config RUN/config.yaml --weights RUN/model_final.pth

``data`` draws, from both generators (this project's ``inference.synth`` and the reference
``../shared/tools/synthcells.py``, used at run time, never copied), training fields at several pixel
sizes and frame sizes, merges them into one COCO file ``OUT/train.json`` (absolute image paths), and
draws the held-out sets with other seeds: each generator at its native scale (512x640, 0.2-0.3 µm/px)
and 2048x2560 frames at 0.10-0.15 µm/px from both generators with photometric shifts (uneven lamp,
white balance, gamma, defocus, noise, JPEG) drawn with their own seed.

``evaluate`` prints round-spermatid segm AP50/AP per held-out set, through the predictor as the
portal runs it: every image with its ``um_per_px``, i.e. physical-scale inference (resampled to the
model's ``INPUT.UM_PER_PX``, tiled when large, instances mapped back to the image's pixels).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time

import numpy as np
from PIL import Image

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)
SYNTHCELLS = os.path.join(ROOT, "..", "shared", "tools", "synthcells.py")

# (name, generator, frame HxW, µm/px range, cells per field, images, seed)
TRAIN_SETS = [
    ("synth_native", "synth", (512, 640), (0.20, 0.28), (10, 26), 100, 21),
    ("synthcells_native", "synthcells", (512, 640), (0.20, 0.30), (12, 30), 100, 31),
    ("synth_fine", "synth", (1024, 1280), (0.10, 0.15), (10, 26), 30, 22),
    ("synth_mid", "synth", (768, 960), (0.15, 0.20), (12, 30), 30, 23),
    ("synth_coarse", "synth", (384, 480), (0.30, 0.40), (12, 30), 30, 24),
    ("synthcells_fine", "synthcells", (1024, 1280), (0.10, 0.15), (12, 30), 30, 32),
]
TEST_SETS = [
    ("test_synth_native", "synth", (512, 640), (0.20, 0.28), (10, 26), 30, 41, False),
    ("test_synthcells_native", "synthcells", (512, 640), (0.20, 0.30), (12, 30), 30, 42, False),
    ("test_synth_2048x2560", "synth", (2048, 2560), (0.10, 0.15), (40, 100), 6, 43, True),
    ("test_synthcells_2048x2560", "synthcells", (2048, 2560), (0.10, 0.15), (48, 120), 6, 44, True),
]
SHIFT_SEED = 4545


def load_synthcells(path: str = SYNTHCELLS):
    """The reference generator as a module (run time only; it is not part of this repository)."""
    spec = importlib.util.spec_from_file_location("synthcells", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def photometric_shift(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A microscope/camera change for the held-out large frames (sigma in the frame's own pixels)."""
    from inference.data.transforms import (
        RandomDefocus,
        RandomIllumination,
        RandomJPEG,
        RandomNoise,
        RandomPhotometric,
        RandomWhiteBalance,
        Sample,
        apply_augmentations,
    )

    augs = [RandomIllumination(0.3, (0.1, 0.3)), RandomWhiteBalance((0.85, 1.15)),
            RandomPhotometric((0.85, 1.1), (0.85, 1.15), (0.75, 1.3)), RandomDefocus((0.5, 2.0), 1.0),
            RandomNoise((2.0, 6.0)), RandomJPEG((60, 90), 0.5)]
    s = apply_augmentations(augs, Sample(rgb, np.zeros((0, 4), np.float32), np.zeros((0,) + rgb.shape[:2], bool)), rng)
    return s.image


def draw_set(out: str, name: str, gen: str, hw, um, cells, n: int, seed: int, shift: bool = False, synthcells=None) -> str:
    """Draw ``n`` fields into ``out/name/`` and ``out/name.json``."""
    from inference.data.classes import CLASS_NAMES, coco_categories
    from inference.data.coco import mask_to_rle
    from inference.synth import FieldOptions
    from inference.synth.generator import render_field

    os.makedirs(os.path.join(out, name), exist_ok=True)
    coco = {"images": [], "annotations": [], "categories": coco_categories(CLASS_NAMES)}
    opts = FieldOptions(height=hw[0], width=hw[1], um_per_px=tuple(um), cells=tuple(cells))
    ann_id = 0
    for i in range(n):
        rng = np.random.default_rng(np.random.SeedSequence([seed, i]))
        if gen == "synth":
            rgb, u, anns = render_field(rng, opts)
        else:
            u = float(rng.uniform(*um))
            pil, anns = synthcells.render_field(rng, hw, u, int(rng.integers(cells[0], cells[1] + 1)))
            rgb = np.asarray(pil)
        if shift:
            rgb = photometric_shift(rgb, np.random.default_rng(np.random.SeedSequence([SHIFT_SEED, seed, i])))
        file_name = f"{name}_{i:04d}.png"
        Image.fromarray(rgb).save(os.path.join(out, name, file_name))
        coco["images"].append({"id": i + 1, "file_name": file_name, "height": hw[0], "width": hw[1],
                               "um_per_px": round(float(u), 5)})
        for kind, m in anns:
            if m.sum() <= 8:
                continue
            ys, xs = np.nonzero(m)
            ann_id += 1
            coco["annotations"].append({
                "id": ann_id, "image_id": i + 1, "category_id": CLASS_NAMES.index(kind) + 1,
                "segmentation": mask_to_rle(m), "area": float(m.sum()), "iscrowd": 0,
                "bbox": [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]})
        print(f"{name}: {i + 1}/{n}", flush=True)
    path = os.path.join(out, f"{name}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(coco, f)
    return path


def merge(out: str, names: list[str], path: str) -> str:
    """One COCO file of several (image ids and annotation ids renumbered, absolute image paths)."""
    merged: dict = {"images": [], "annotations": [], "categories": None}
    for name in names:
        with open(os.path.join(out, f"{name}.json"), encoding="utf-8") as f:
            data = json.load(f)
        merged["categories"] = data["categories"]
        id_map = {}
        for im in data["images"]:
            id_map[im["id"]] = len(merged["images"]) + 1
            merged["images"].append(dict(im, id=id_map[im["id"]],
                                         file_name=os.path.abspath(os.path.join(out, name, im["file_name"]))))
        for a in data["annotations"]:
            merged["annotations"].append(dict(a, id=len(merged["annotations"]) + 1, image_id=id_map[a["image_id"]]))
    with open(path, "w", encoding="utf-8") as f:
        json.dump(merged, f)
    return path


def cmd_data(args) -> int:
    synthcells = load_synthcells(args.synthcells)
    only = set(args.only or [])
    for name, gen, hw, um, cells, n, seed in TRAIN_SETS:
        if not only or name in only:
            draw_set(args.out, name, gen, hw, um, cells, n, seed, synthcells=synthcells)
    for name, gen, hw, um, cells, n, seed, shift in TEST_SETS:
        if not only or name in only:
            draw_set(args.out, name, gen, hw, um, cells, n, seed, shift, synthcells=synthcells)
    if not only:
        print("training set:", merge(args.out, [t[0] for t in TRAIN_SETS], os.path.join(args.out, "train.json")))
    return 0


# -- evaluation ------------------------------------------------------------------------------------

def evaluate_set(cfg_path: str, weights: str, json_path: str, output_dir: str | None = None) -> dict:
    """Evaluate one held-out set; returns the round-spermatid row plus the full metrics under "metrics"."""
    from inference.data.classes import CLASS_NAMES
    from inference.data.coco import load_coco
    from inference.engine.defaults import inference_config, load_training_config
    from inference.evaluation.evaluator import evaluate_predictions, predict_dataset
    from inference.predictor import Predictor

    cfg = inference_config(load_training_config(cfg_path))
    names = list(CLASS_NAMES[: cfg.MODEL.ROI_HEADS.NUM_CLASSES])
    dataset = load_coco(json_path, class_names=names, unknown_classes="skip")
    predictor = Predictor(cfg, weights, class_names=names)
    t0 = time.perf_counter()
    preds, _ = predict_dataset(predictor, dataset)  # passes each image's um_per_px: physical scale
    seconds = (time.perf_counter() - t0) / max(1, len(dataset.records))
    metrics = evaluate_predictions(dataset, preds, output_dir=output_dir)
    metrics["seconds_per_image"] = seconds
    metrics["dataset"] = json_path
    rs = metrics["segm"]["per_class"]["round_spermatid"]
    return {"set": os.path.basename(json_path)[:-5], "images": len(dataset.records), "AP50": rs["AP50"], "AP": rs["AP"],
            "all_AP50": metrics["segm"]["AP50"], "s_per_image": seconds, "metrics": metrics}


def cmd_evaluate(args) -> int:
    rows = []
    only = set(args.only or [])
    for name, *_rest in TEST_SETS:
        path = os.path.join(args.out, f"{name}.json")
        if not os.path.exists(path) or (only and name not in only):
            continue
        out_dir = os.path.join(args.eval_dir, name) if args.eval_dir else None
        rows.append(evaluate_set(args.config, args.weights, path, output_dir=out_dir))
        r = rows[-1]
        print(f"{r['set']:28s} {r['images']:3d} images  round_spermatid segm AP50 {r['AP50']:.3f}  AP {r['AP']:.3f}  "
              f"(all classes AP50 {r['all_AP50']:.3f}; {r['s_per_image']:.1f} s/img)",
              flush=True)
    held_out = [{k: v for k, v in r.items() if k != "metrics"} for r in rows]
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(held_out, f, indent=1)
    if args.bundle_metrics:  # for `inference export --metrics`: the first set's metrics + the table
        from inference.evaluation.evaluator import _nan_to_none

        first = dict(rows[0]["metrics"])
        first.pop("summary_text", None)
        first.pop("pr_curve_png", None)
        first["held_out"] = held_out
        with open(args.bundle_metrics, "w", encoding="utf-8") as f:
            json.dump(_nan_to_none(first), f, indent=1)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data", help="draw the training and held-out sets")
    d.add_argument("out")
    d.add_argument("--synthcells", default=SYNTHCELLS, help="path of the reference generator (default ../shared/tools/synthcells.py)")
    d.add_argument("--only", nargs="*", help="draw only these sets (names in TRAIN_SETS/TEST_SETS); no merge")
    e = sub.add_parser("evaluate", help="round-spermatid AP50 per held-out set")
    e.add_argument("out", help="the folder 'data' wrote")
    e.add_argument("--config", required=True, help="the training run's config.yaml")
    e.add_argument("--weights", required=True)
    e.add_argument("--only", nargs="*", help="evaluate only these sets")
    e.add_argument("--json", default=None, help="write the rows here")
    e.add_argument("--eval-dir", default=None, help="per-set metrics.json, PR curve, COCO results under this folder")
    e.add_argument("--bundle-metrics", default=None,
                   help="write the first set's metrics plus the AP50 table ('held_out') here, for `inference export`")
    args = ap.parse_args(argv)
    return cmd_data(args) if args.cmd == "data" else cmd_evaluate(args)


if __name__ == "__main__":
    raise SystemExit(main())
