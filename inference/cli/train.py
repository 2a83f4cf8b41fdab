"""``python -m inference train``: train a detector from a config and a COCO dataset.

Checkpoints every ``SOLVER.CHECKPOINT_PERIOD`` iterations into ``--output``; after a crash the same
command with ``--resume`` continues from the newest one. ``--bundle DIR`` writes a model bundle
at the end (evaluated on ``--eval-json`` when given).
"""
from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="detectron2-format YAML (e.g. inference/configs/demo_cascade_small.yaml)")
    parser.add_argument("--train-json", required=True, help="COCO instances file of the training images")
    parser.add_argument("--image-root", default=None, help="folder of the images (default: next to the JSON)")
    parser.add_argument("--output", required=True, help="folder for checkpoints, metrics.json, config.yaml")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --output")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: CUDA when present)")
    parser.add_argument("--seed", type=int, default=0, help="model init, data order and augmentation seed")
    parser.add_argument("--workers", type=int, default=None, help="data loader workers (default: DATALOADER.NUM_WORKERS)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--backbone-weights", default=None,
                        help="user-provided pretrained backbone (.pth/.pkl; detectron2 or torchvision ResNet names)")
    parser.add_argument("--no-progress", action="store_true", help="log lines only, no progress bar")
    parser.add_argument("--eval-json", default=None, help="evaluate the final model on this COCO file")
    parser.add_argument("--bundle", default=None, help="write a model bundle to this folder at the end")
    parser.add_argument("--bundle-name", default="spermatid-detector")
    parser.add_argument("--bundle-version", default="0.1.0")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[],
                        help="config overrides as KEY VALUE pairs, e.g. SOLVER.MAX_ITER 100")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..engine.defaults import load_training_config
    from ..engine.launch import train_from_config

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_training_config(args.config, args.opts)
    if args.backbone_weights:
        cfg.MODEL.BACKBONE.PRETRAINED = args.backbone_weights
    result = train_from_config(cfg, args.train_json, args.output, image_root=args.image_root, resume=args.resume,
                               device=args.device, seed=args.seed, num_workers=args.workers,
                               progress=False if args.no_progress else None)
    print(f"trained {result['iterations']} iterations in {result['seconds']:.0f} s "
          f"({result['s_per_iter']:.3f} s/iter); final weights {result['final_checkpoint']}")
    metrics = None
    if args.eval_json:
        from ..evaluation import evaluate_model_files

        metrics = evaluate_model_files(os.path.join(args.output, "config.yaml"), result["final_checkpoint"],
                                       args.eval_json, output_dir=os.path.join(args.output, "eval"),
                                       device=args.device, training_config=True)
        print(metrics["summary_text"])
    if args.bundle:
        from ..bundle import write_bundle_from_training

        path = write_bundle_from_training(args.output, args.bundle, name=args.bundle_name, version=args.bundle_version,
                                          metrics=metrics)
        print(f"bundle written to {path}")
    return 0
