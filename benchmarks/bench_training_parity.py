"""Training parity with detectron2 (issue 5): train our engine from scratch exactly as detectron2
trained ``../shared/fixtures/detectron2_cascade_small`` and compare test-set COCO AP and s/iter.

    .venv/bin/python benchmarks/bench_training_parity.py                 # the full run (1.5-2.5 h on 2 cores)
    .venv/bin/python benchmarks/bench_training_parity.py --iters 20      # a short s/iter measurement

1. Data: ``../shared/tools/synthcells.py OUT/data --seed 11 --train 150 --val 10 --test 40 --size 512x640``
   (the images detectron2 was trained and evaluated on; drawn once, reused).
2. Train with the fixture's ``config.yaml`` but BatchNorm during training (``MODEL.RESNETS.NORM BN``):
   1200 iterations, batch 2, base LR 0.01, warmup 100, steps 900/1104, gradient clipping (value 1.0),
   horizontal flip, short edge 512 (max 800), 1 data worker, as in the fixture's README.
3. Evaluate the final model (shipped as FrozenBN) on the test split with pycocotools.
4. Print ours and detectron2's figures side by side; write ``OUT/parity.json``.

With ``--iters N`` < 1200 the schedule is cut at N (same warmup and steps): the s/iter figure is
comparable, the AP is not (the script says so).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared"))

DETECTRON2 = {  # ../shared/fixtures/detectron2_cascade_small/README.md and eval.json
    "round_spermatid segm AP": 0.952, "round_spermatid segm AP50": 0.990, "round_spermatid bbox AP": 0.928,
    "all classes segm AP": 0.817, "all classes bbox AP": 0.826, "s/iter": 4.63,
}
FULL_ITERS = 1200


def draw_data(out: str, synthcells: str) -> str:
    data = os.path.join(out, "data")
    if not os.path.exists(os.path.join(data, "test.json")):
        cmd = [sys.executable, synthcells, data, "--seed", "11", "--train", "150", "--val", "10", "--test", "40",
               "--size", "512x640"]
        print("drawing data:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    return data


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "var", "bench", "training_parity"))
    ap.add_argument("--iters", type=int, default=FULL_ITERS, help=f"iterations (default {FULL_ITERS}, the full run)")
    ap.add_argument("--fixture", default=os.path.join(SHARED, "fixtures", "detectron2_cascade_small"))
    ap.add_argument("--synthcells", default=os.path.join(SHARED, "tools", "synthcells.py"))
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2: the 2-core machines)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-eval", action="store_true", help="only train (for a quick s/iter measurement)")
    ap.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    ap.add_argument("--init-weights", default=None,
                    help="start from these weights instead of from scratch (timing only: e.g. the fixture's "
                         "model_final.pth, so a short run sees the proposal counts of a trained model)")
    a = ap.parse_args(argv)

    import torch

    from inference.engine.defaults import load_training_config
    from inference.engine.launch import train_from_config
    from inference.evaluation import evaluate_model_files

    torch.set_num_threads(a.threads)
    data = draw_data(a.out, a.synthcells)
    cfg = load_training_config(os.path.join(a.fixture, "config.yaml"))
    cfg.MODEL.RESNETS.NORM = "BN"  # detectron2 trained with BatchNorm and stored FrozenBN
    s = cfg.SOLVER
    assert (s.MAX_ITER, s.IMS_PER_BATCH, s.BASE_LR, s.WARMUP_ITERS, list(s.STEPS)) == (1200, 2, 0.01, 100, [900, 1104])
    assert s.CLIP_GRADIENTS.ENABLED and cfg.INPUT.RANDOM_FLIP == "horizontal" and list(cfg.INPUT.MIN_SIZE_TRAIN) == [512]
    short = a.iters < FULL_ITERS
    if short:
        s.MAX_ITER = a.iters
        s.STEPS = [x for x in s.STEPS if x < a.iters]
    if a.init_weights:
        cfg.MODEL.WEIGHTS = a.init_weights
    s.CHECKPOINT_PERIOD = 200
    s.LOG_PERIOD = 10 if short else 20
    load0 = os.getloadavg()
    t0 = time.time()
    result = train_from_config(cfg, os.path.join(data, "train.json"), os.path.join(a.out, "train"), resume=a.resume,
                               device=a.device, seed=0, progress=None)
    wall = time.time() - t0
    load1 = os.getloadavg()
    ran = result["iterations"] - result["start_iter"]
    ours = {"s/iter": wall / max(1, ran), "s/iter (steady mean)": result["s_per_iter"]}
    metrics = None
    if not a.no_eval:
        metrics = evaluate_model_files(os.path.join(a.out, "train", "config.yaml"), result["final_checkpoint"],
                                       os.path.join(data, "test.json"), output_dir=os.path.join(a.out, "eval"),
                                       device=a.device, training_config=True)
        t = metrics["segm"]["per_class"]["round_spermatid"]
        ours.update({"round_spermatid segm AP": t["AP"], "round_spermatid segm AP50": t["AP50"],
                     "round_spermatid bbox AP": metrics["bbox"]["per_class"]["round_spermatid"]["AP"],
                     "all classes segm AP": metrics["segm"]["AP"], "all classes bbox AP": metrics["bbox"]["AP"]})

    def fmt(v):
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"

    print()
    print(f"training parity, {ran} of {FULL_ITERS} iterations" + (" (SHORT RUN: AP not comparable)" if short else "")
          + (f", started from {a.init_weights} (NOT from scratch)" if a.init_weights else ""))
    print(f"{'figure':28s} {'ours':>8s} {'detectron2':>11s}  target")
    rows = [("round_spermatid segm AP", "within 0.03"), ("round_spermatid segm AP50", ""), ("round_spermatid bbox AP", ""),
            ("all classes segm AP", ""), ("all classes bbox AP", ""), ("s/iter", "<= detectron2")]
    verdict = {}
    for key, target in rows:
        o, d = ours.get(key), DETECTRON2[key]
        print(f"{key:28s} {fmt(o):>8s} {fmt(d):>11s}  {target}")
        if o is not None and not short and key == "round_spermatid segm AP":
            verdict[key] = abs(o - d) <= 0.03
        if o is not None and key == "s/iter":
            verdict[key] = o <= d
    print(f"{'s/iter (steady mean)':28s} {fmt(ours['s/iter (steady mean)']):>8s}")
    print(f"train wall time {wall:.0f} s; load average {load0[0]:.1f} at start, {load1[0]:.1f} at end "
          f"({os.cpu_count()} CPUs; other work on the machine slows this down)")
    if metrics:
        print(metrics["summary_text"])
    out = {"iterations": ran, "full": not short, "ours": ours, "detectron2": DETECTRON2, "verdict": verdict,
           "train_wall_seconds": wall, "loadavg_start": load0, "loadavg_end": load1, "threads": a.threads,
           "device": a.device, "init_weights": a.init_weights}
    with open(os.path.join(a.out, "parity.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, default=lambda x: None)
    print("verdict:", json.dumps(verdict) if verdict else "none (short run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
