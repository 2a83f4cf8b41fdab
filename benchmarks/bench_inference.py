"""Inference speed and peak memory of inference.Predictor, next to detectron2's figures.

    .venv/bin/python benchmarks/bench_inference.py [--cases fixture,cascade80,maskrcnn80] [--repeats 2]

Rows (CPU with 2 threads; CUDA fp32 and AMP too when a GPU is present), batch 1 and 4:
  fixture    the shared fixture's small Cascade Mask R-CNN at INPUT.MIN_SIZE_TEST 800, on its four
             images upscaled to 800x1000;
  cascade80  standard-width Cascade Mask R-CNN R50-FPN (80 classes) on a random 800x1067 uint8 image,
             random weights whose BatchNorm statistics come from one training-mode forward pass on
             that image, SCORE_THRESH_TEST 0 (asserts that exactly 100 detections reach the mask head);
  maskrcnn80 the same for plain Mask R-CNN R50-FPN;
  cascade80-plain  cascade80 without FrozenBN folding and with no execution choice (``ExecutionPolicy()``:
             no channels_last, NNPACK, separable ROIAlign or threaded kernels; --cases to include it);
  cascade80-nnpack, cascade80-nonnpack  cascade80 with NNPACK's 3x3 convolutions forced on / off
             (the default row uses them only where ``nnpack_is_faster_here``: AVX2, not AVX-512 CPUs);
  cascade80-bf16  cascade80 with the backbone under CPU bf16 autocast (where the CPU has native bf16);
  cascade80-tvroialign  cascade80 pooling with torchvision's roi_align (NCHW, split over 2 Python
             threads) instead of the channels-last ``layers.roi_align_channels_last`` (what that buys);
  demo, demo-bf16  the committed demo model (inference/assets/demo_model) on a 512x640 synthetic field
             at its own 0.24 µm/px (physical scale, one model pass), fp32 and with the backbone under
             CPU bf16 autocast (``Predictor(bf16=True)``; only where the CPU has native bf16);
  field8000  the demo model on an 8000x8000 field at 0.24 µm/px (a 1024x1280 mosaic of synthetic
             fields repeated): physical scale, tiled automatically, masks kept as crops; one image,
             no warm-up (--cases to include it; minutes on 2 cores): the peak-RSS row;
  cascade80-detectron2, maskrcnn80-detectron2  detectron2 itself (``DefaultPredictor``'s model and
             resizing) on the same weights and image, where ``import detectron2`` works (a user's own
             install; nothing else needs it): the peer measured in the same run.
"CPU s/img" is process CPU time (all threads) per image: on a busy machine it stays put while the
wall clock grows; with 2 idle cores the wall clock is roughly half of it or a bit more.
Threads: each row calls torch.set_num_threads(2) (OMP_NUM_THREADS=2); ROI pooling (embedding_bag) uses
torch's threads; the single-threaded torchvision CPU kernels (the per-class NMS of SCORE_THRESH_TEST 0,
roi_align in the -tvroialign row) are split over that many Python threads (the execution policy's
``threaded_ops``), so both cores work there too.
Each row runs in its own subprocess so that peak RSS (ru_maxrss) is that row's own.
detectron2 v0.6 measured the cascade80 way on these 2-core machines: 3.28 s/img (cascade),
2.45 s/img (Mask R-CNN), peak RSS ~1.7 GB. Target: <= 0.8x, i.e. <= 2.6 s/img for the cascade.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FIXTURES = ROOT.parent / "shared" / "fixtures"
DETECTRON2 = {"cascade80": 3.28, "maskrcnn80": 2.45, "cascade80-plain": 3.28, "cascade80-nonnpack": 3.28,
              "cascade80-tvroialign": 3.28, "cascade80-nnpack": 3.28, "cascade80-detectron2": 3.28, "maskrcnn80-detectron2": 2.45}
TARGET = {"cascade80": 2.6}


def _fixture_predictor(device: str, amp: bool):
    from inference import Predictor
    from inference.config import load_config

    d = FIXTURES / "detectron2_cascade_small"
    cfg = load_config(d / "config.yaml")
    cfg.INPUT.MIN_SIZE_TEST = 800
    cfg.INPUT.MAX_SIZE_TEST = 1333
    return Predictor(cfg, d / "model_final.pth", device=device, amp=amp)


def _fixture_images():
    import numpy as np
    from PIL import Image

    d = FIXTURES / "detectron2_cascade_small" / "images"
    return [np.asarray(Image.open(p).convert("RGB").resize((1000, 800), Image.BILINEAR)) for p in sorted(d.glob("*.png"))]


def _random_predictor(kind: str, device: str, amp: bool, image, variant: str = ""):
    """Random-weight 80-class model, BN statistics from one train-mode forward, saved and reloaded."""
    import torch

    from inference import Predictor
    from inference.config import load_config
    from inference.engine.execution import ExecutionPolicy
    from inference.layers import FrozenBatchNorm2d
    from inference.modeling import build_model

    name = {"cascade80": "cascade_mask_rcnn", "maskrcnn80": "mask_rcnn"}[kind]
    config_path = FIXTURES / f"detectron2_{name}_R_50_FPN_3x_config.yaml"
    cfg = load_config(config_path)
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0
    torch.manual_seed(0)
    bn_cfg = cfg.clone()
    bn_cfg.MODEL.RESNETS.NORM = "BN"
    bn_cfg.MODEL.BACKBONE.FREEZE_AT = 0
    model = build_model(bn_cfg)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 1.0  # running stats := this batch's stats
    pred = Predictor.__new__(Predictor)  # only for its preprocessing
    pred.input_format, pred.min_size_test, pred.max_size_test = cfg.INPUT.FORMAT, cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST
    x = pred._tensor(pred._fixed_piece(image, None).image)
    model.train()
    with torch.no_grad():
        model.backbone(model.preprocess_image([{"image": x}]).tensor)
    FrozenBatchNorm2d.convert_frozen_batchnorm(model)
    sd = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = Path(tempfile.mkdtemp()) / "random_bnstats.pth"
    torch.save({"model": sd}, path)
    del model
    if variant == "detectron2":  # the peer, on the same weights and image, where the user has it installed
        return Detectron2Predictor(config_path, path, device)
    if variant == "plain":  # no FrozenBN folding, no execution choice: what the optimisations buy
        return Predictor(cfg, path, device=device, amp=amp, fold_bn=False, execution=ExecutionPolicy())
    if variant == "bf16":
        predictor = Predictor(cfg, path, device=device, amp=amp, bf16=True)
        if not predictor.bf16:
            raise SystemExit("this CPU has no native bf16 (avx512_bf16 / amx_bf16)")
        return predictor
    default = ExecutionPolicy.for_inference(device)
    if variant in ("nonnpack", "nnpack"):
        execution = dataclasses.replace(default, nnpack=variant == "nnpack")
    elif variant == "tvroialign":
        execution = dataclasses.replace(default, separable_roi_align=False)
    else:
        execution = default
    return Predictor(cfg, path, device=device, amp=amp, execution=execution)


def _demo_case(case: str, device: str):
    """The demo bundle's predictor (bf16 for ``demo-bf16``), its images and their µm/px."""
    import numpy as np

    from inference.bundle import load_bundle
    from inference.synth.generator import FieldOptions, render_field

    bundle = load_bundle(ROOT / "inference" / "assets" / "demo_model")
    predictor = bundle.predictor(device=device, bf16=case.endswith("-bf16"))
    if case.endswith("-bf16") and not predictor.bf16:
        raise SystemExit("this CPU has no native bf16 (avx512_bf16 / amx_bf16)")
    fields = [render_field(np.random.default_rng(s), FieldOptions(), um_per_px=0.24)[0] for s in range(4)]
    if case == "field8000":
        mosaic = np.concatenate([np.concatenate(fields[:2], axis=1), np.concatenate(fields[2:], axis=1)], axis=0)
        big = np.tile(mosaic, (8, 7, 1))[:8000, :8000]
        del mosaic, fields
        return predictor, [np.ascontiguousarray(big)], 0.24
    return predictor, fields, 0.24


class Detectron2Predictor:
    """detectron2's own model, preprocessing and ``DefaultPredictor`` settings behind our
    ``predict_batch`` (RGB uint8 images in; one model call per batch), for the peer rows. Needs a
    detectron2 the user installed; nothing else here uses it."""

    def __init__(self, config_path: Path, weights: Path, device: str):
        from detectron2.config import get_cfg
        from detectron2.engine import DefaultPredictor

        cfg = get_cfg()
        cfg.merge_from_file(str(config_path))
        cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0
        cfg.MODEL.WEIGHTS = str(weights)
        cfg.MODEL.DEVICE = device
        self._predictor = DefaultPredictor(cfg)
        self.model = self._predictor.model

    def predict_batch(self, images, batch_size: int):
        import torch

        inputs = []
        for rgb in images:
            image = rgb[:, :, ::-1] if self._predictor.input_format == "BGR" else rgb
            height, width = image.shape[:2]
            resized = self._predictor.aug.get_transform(image).apply_image(image)
            inputs.append({"image": torch.as_tensor(resized.astype("float32").transpose(2, 0, 1)),
                           "height": height, "width": width})
        outputs = []
        with torch.no_grad():
            for start in range(0, len(inputs), batch_size):
                outputs += self.model(inputs[start:start + batch_size])
        return outputs


def gemm_gflops(threads: int = 2) -> float:
    """This machine's fp32 GEMM throughput right now (calibrates the wall-clock column)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(1000, 12544), torch.randn(12544, 1024)
    a @ b
    t = time.perf_counter()
    for _ in range(3):
        a @ b
    return 3 * 2 * 1000 * 12544 * 1024 / (time.perf_counter() - t) / 1e9


def run_row(case: str, device: str, amp: bool, batch: int, repeats: int) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(2)
    um = None
    if case == "fixture":
        predictor = _fixture_predictor(device, amp)
        images = _fixture_images()
    elif case.startswith(("demo", "field8000")):
        predictor, images, um = _demo_case(case, device)
        if case == "field8000":
            batch, repeats = 1, 1
    else:
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 256, (800, 1067, 3), dtype=np.uint8)]
        kind, _, variant = case.partition("-")
        predictor = _random_predictor(kind, device, amp, images[0], variant)
    counts = []
    mh = predictor.model.roi_heads.mask_head
    mh.register_forward_hook(lambda m, inp, out: counts.append(int(inp[0].shape[0])))

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    # warm-up (one batch)
    work = [images[i % len(images)] for i in range(batch)]
    if case != "field8000":
        predictor.predict_batch(work, um_per_px=um, batch_size=batch)
    sync()
    counts.clear()
    n_img = 0
    c0 = time.process_time()
    t0 = time.perf_counter()
    for r in range(repeats):
        work = [images[(r * batch + i) % len(images)] for i in range(batch)]
        outs = predictor.predict_batch(work, um_per_px=um, batch_size=batch)
        n_img += len(outs)
    sync()
    dt = (time.perf_counter() - t0) / n_img
    cpu = (time.process_time() - c0) / n_img
    if case.startswith("field8000"):
        print(f"field8000: {len(outs[0])} instances from {outs[0].tiles} tiles", file=sys.stderr)
    if not case.startswith(("fixture", "demo", "field8000")):
        assert all(c == 100 * batch for c in counts), f"expected 100 detections per image at the mask head, got {counts}"
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    precision = " amp" if amp else (" bf16" if getattr(predictor, "bf16", False) else " fp32")
    row = {"case": case, "device": device + precision, "batch": batch, "s_per_img": dt, "cpu_s_per_img": cpu,
           "peak_rss_mb": rss_mb, "mask_head_rois": counts[:1]}
    if device.startswith("cuda"):
        row["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="fixture,cascade80,maskrcnn80")
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--repeats", type=int, default=2, help="timed batches per row (after one warm-up batch)")
    ap.add_argument("--row", default=None, help=argparse.SUPPRESS)  # internal: case:device:amp:batch
    args = ap.parse_args()
    if args.row:
        case, device, amp, batch = args.row.split(":")
        print("ROW " + json.dumps(run_row(case, device, amp == "1", int(batch), args.repeats)))
        return 0
    import torch

    devices = [("cpu", False)]
    if torch.cuda.is_available():
        devices += [("cuda", False), ("cuda", True)]
    rows = []
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    from inference.layers import nnpack_is_faster_here

    print(f"machine: {os.cpu_count()} CPUs ({torch.backends.cpu.get_cpu_capability()} kernels, NNPACK by default: "
          f"{'yes' if nnpack_is_faster_here() else 'no'}), load average {load:.1f}, fp32 GEMM {gemm_gflops():.0f} "
          "GFLOP/s on 2 threads at start (other processes slow the wall-clock column)")
    cases = args.cases.split(",")
    width = max(len(c) for c in cases + ["case"])
    print(f"{'case':<{width}} {'device':<10} {'batch':>5} {'s/img':>8} {'CPU s/img':>10} {'peak RSS MB':>12} {'detectron2 s/img':>17} {'target':>7}")
    for case in cases:
        for device, amp in devices:
            for batch in (int(b) for b in args.batches.split(",")):
                cmd = [sys.executable, __file__, "--row", f"{case}:{device}:{int(amp)}:{batch}", "--repeats", str(args.repeats)]
                proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="2"))
                line = [x for x in proc.stdout.splitlines() if x.startswith("ROW ")]
                if proc.returncode or not line:
                    print(f"{case:<{width}} {device:<10} {batch:>5}  FAILED: {proc.stderr.strip().splitlines()[-1:]}")
                    continue
                row = json.loads(line[0][4:])
                rows.append(row)
                ref = DETECTRON2.get(case) if device == "cpu" else None
                tgt = TARGET.get(case) if device == "cpu" else None
                print(f"{case:<{width}} {row['device']:<10} {batch:>5} {row['s_per_img']:>8.2f} {row['cpu_s_per_img']:>10.2f} {row['peak_rss_mb']:>12.0f} "
                      f"{(f'{ref:.2f}' if ref else '-'):>17} {(f'<={tgt:.2f}' if tgt else '-'):>7}", flush=True)
    print(f"end: load average {os.getloadavg()[0]:.1f}, fp32 GEMM {gemm_gflops():.0f} GFLOP/s on 2 threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
