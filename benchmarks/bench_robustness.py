"""Robustness of the default model: round-spermatid segm AP50 / AP per imaging condition, with and
without physical scale, in one table.

    .venv/bin/python benchmarks/bench_robustness.py [--images 6] [--bf16] [--bundle inference/assets/demo_model]

Conditions (``--images`` fields each, drawn with fixed seeds; the 3000x4000 frame is one field):
  native      inference/synth fields, 512x640 at 0.2-0.28 µm/px (the demo model's training data)
  px x2       the same field of view imaged with 2x larger pixels: 256x320 at 0.4-0.56 µm/px
  px x0.5     ... with 2x smaller pixels: 1024x1280 at 0.1-0.14 µm/px
  3000x4000   a 3000x4000 frame at 0.24 µm/px (6x6 fields of 500x667 side by side)
  16-bit      native fields as a 12-bit camera writes them (values x16 + noise in uint16), read by
              the one pixel rule (inference/pixels.py)
  gray        native fields as 8-bit grayscale
  blur        native fields defocused (Gaussian, sigma 2 px)
  gamma       native fields with gamma 0.6 (brighter midtones)
  other gen   fields of ../shared/tools/synthcells.py (the other generator), 512x640 at 0.2-0.3 µm/px
Columns: "fixed" = the model's fixed short-edge resize whatever the pixel size (detectron2's
behaviour, physical_scale=False); "physical" = resampled to the model's INPUT.UM_PER_PX and tiled
when large; with --bf16 also "physical bf16" (backbone under CPU bf16 autocast, where the CPU has
native bf16). Every image's µm/px is passed in all columns. Runs in ~5-8 minutes on 2 cores with
--images 6 (the default).
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SYNTHCELLS = ROOT.parent / "shared" / "tools" / "synthcells.py"
TARGET = "round_spermatid"


def _field(seed: int, h: int, w: int, um: float):
    from inference.synth.generator import FieldOptions, render_field

    rgb, um, cells = render_field(np.random.default_rng(seed), FieldOptions(height=h, width=w), um_per_px=um)
    return rgb, um, cells


def _native_um(seed: int) -> float:
    return float(np.random.default_rng(10_000 + seed).uniform(0.2, 0.28))


def _gt(cells, hw) -> tuple[list[str], list[dict]]:
    from inference.structures.cropped_masks import CroppedMasks

    masks = CroppedMasks.from_dense(np.stack([m for _, m in cells])) if cells else CroppedMasks.empty(hw)
    return [name for name, _ in cells], masks.to_rle()


def condition_images(name: str, n: int) -> list[tuple[np.ndarray, float, list[str], list[dict]]]:
    """(image, µm/px, gt class names, gt RLEs) for ``n`` fields of condition ``name``."""
    out = []
    if name == "3000x4000":
        return [_big_frame()]
    if name == "other gen":
        spec = importlib.util.spec_from_file_location("synthcells", SYNTHCELLS)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for i in range(n):
            rng = np.random.default_rng(500 + i)
            um = float(rng.uniform(0.2, 0.3))
            pil, anns = mod.render_field(rng, (512, 640), um, int(rng.integers(12, 30)))
            names, rles = _gt(anns, (512, 640))
            out.append((np.asarray(pil), um, names, rles))
        return out
    for i in range(n):
        um = _native_um(i)
        k = {"px x2": 2.0, "px x0.5": 0.5}.get(name, 1.0)
        h, w = int(round(512 / k)), int(round(640 / k))
        rgb, um, cells = _field(100 + i, h, w, um * k)
        if name == "16-bit":
            noise = np.random.default_rng(i).integers(0, 16, rgb.shape)
            rgb = (rgb.astype(np.uint16) * 16 + noise).astype(np.uint16)
        elif name == "gray":
            rgb = np.rint(rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
        elif name == "blur":
            from PIL import Image, ImageFilter

            rgb = np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(2.0)))
        elif name == "gamma":
            rgb = np.clip(np.rint(255.0 * (rgb / 255.0) ** 0.6), 0, 255).astype(np.uint8)
        names, rles = _gt(cells, rgb.shape[:2])
        out.append((rgb, um, names, rles))
    return out


def _big_frame():
    """3000x4000 at 0.24 µm/px: 6x6 fields of 500x667 side by side (GT kept as RLE, never full frames)."""
    from inference.structures.cropped_masks import CroppedMasks

    h, w, fh, fw = 3000, 4000, 500, 667
    frame = np.zeros((h, w, 3), np.uint8)
    names, windows, crops = [], [], []
    for r in range(6):
        for c in range(6):
            y0, x0 = r * fh, c * fw
            fw_here = min(fw, w - x0)
            rgb, _, cells = _field(1000 + r * 6 + c, fh, fw_here, 0.24)
            frame[y0:y0 + fh, x0:x0 + fw_here] = rgb
            if cells:
                local = CroppedMasks.from_dense(np.stack([m for _, m in cells]))
                names += [n for n, _ in cells]
                windows.append(local.windows + np.array([y0, x0, y0, x0]))
                crops += local.crops
    masks = CroppedMasks((h, w), np.concatenate(windows), crops)
    return frame, 0.24, names, masks.to_rle()


def _round_spermatid_ap(gt: dict, results: list[dict], class_names: list[str]) -> tuple[float, float]:
    """COCO segm AP50 and AP of the target class, with up to 10,000 detections per image (COCO's
    default of 100 would cap recall on a 3000x4000 frame with ~700 cells)."""
    import contextlib
    import io

    from pycocotools.cocoeval import COCOeval

    from inference.evaluation.coco_eval import coco_from_dict

    target = class_names.index(TARGET) + 1
    if not any(r["category_id"] == target for r in results):
        return 0.0, 0.0
    coco_gt = coco_from_dict(gt)
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(coco_gt, coco_gt.loadRes(results), "segm")
        ev.params.catIds = [target]
        ev.params.maxDets = [1, 100, 10_000]
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][:, :, 0, 0, -1]  # [IoU thresholds, recall points]
    ap50 = precision[0][precision[0] > -1]
    every = precision[precision > -1]
    return (float(ap50.mean()) if ap50.size else float("nan")), (float(every.mean()) if every.size else float("nan"))


def evaluate(predictor, images, class_names) -> tuple[float, float, float]:
    """(segm AP50, segm AP) for round spermatids, seconds per image."""
    gt = {"images": [], "annotations": [], "categories": [{"id": i + 1, "name": n} for i, n in enumerate(class_names)]}
    results = []
    t0 = time.perf_counter()
    for image_id, (img, um, names, rles) in enumerate(images, start=1):
        h, w = img.shape[:2]
        gt["images"].append({"id": image_id, "height": h, "width": w})
        for name, rle in zip(names, rles):
            from pycocotools import mask as mask_util

            enc = {"size": rle["size"], "counts": rle["counts"].encode()}
            x, y, bw, bh = (float(v) for v in mask_util.toBbox(enc))
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": image_id, "iscrowd": 0,
                                      "category_id": class_names.index(name) + 1, "segmentation": rle,
                                      "area": float(mask_util.area(enc)), "bbox": [x, y, bw, bh]})
        results += predictor.predict(img, um_per_px=um).to_coco_results(image_id)
    seconds = (time.perf_counter() - t0) / max(1, len(images))
    ap50, ap_ = _round_spermatid_ap(gt, results, class_names)
    return ap50, ap_, seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default=str(ROOT / "inference" / "assets" / "demo_model"))
    ap.add_argument("--images", type=int, default=6, help="fields per condition (the 3000x4000 frame: 1)")
    ap.add_argument("--conditions", default="native,px x2,px x0.5,3000x4000,16-bit,gray,blur,gamma,other gen")
    ap.add_argument("--bf16", action="store_true", help="add a physical-scale column with the backbone in bf16")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    from inference.bundle import load_bundle
    from inference.predictor import cpu_has_native_bf16

    torch.set_num_threads(args.threads)
    bundle = load_bundle(args.bundle)
    columns = {"fixed": bundle.predictor(physical_scale=False, bf16=False),
               "physical": bundle.predictor(bf16=False)}
    if args.bf16:
        if not cpu_has_native_bf16():
            print("this CPU has no native bf16 (avx512_bf16 / amx_bf16): no bf16 column")
        else:
            columns["physical bf16"] = bundle.predictor(bf16=True)
    ref = columns["physical"]
    print(f"model: {bundle.name} {bundle.version}, INPUT.UM_PER_PX {ref.model_um_per_px}, trained range "
          f"{ref.trained_um_range}; round-spermatid segm AP50 / AP; {args.images} field(s) per condition; "
          f"{args.threads} threads")
    head = f"{'condition':<11} {'fields':>6} " + " ".join(f"{c + ' AP50':>18} {'AP':>6} {'s/img':>6}" for c in columns)
    print(head)
    for name in args.conditions.split(","):
        images = condition_images(name, args.images)
        cells = []
        for predictor in columns.values():
            ap50, ap_, sec = evaluate(predictor, images, list(bundle.class_names))
            cells.append(f"{ap50:>18.3f} {ap_:>6.3f} {sec:>6.2f}")
        print(f"{name:<11} {len(images):>6} " + " ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
