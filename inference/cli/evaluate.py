"""``python -m inference evaluate``: COCO AP per class and the clinic's figures for a model or bundle."""
from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", help="model bundle directory or .zip")
    parser.add_argument("--config", help="config YAML (instead of --bundle)")
    parser.add_argument("--weights", help="weights .safetensors/.pth/.pkl (with --config)")
    parser.add_argument("--training-config", action="store_true",  # detected when the config has training-only keys
                        help="--config is a training config (BatchNorm, augmentation keys), e.g. OUTPUT/config.yaml")
    parser.add_argument("--json", required=True, help="COCO instances file to evaluate on")
    parser.add_argument("--image-root", default=None, help="folder of the images (default: next to the JSON)")
    parser.add_argument("--output", default=None, help="folder for metrics.json, coco_results.json, PR curve PNG")
    parser.add_argument("--score-thresh", type=float, default=None,
                        help="operating score threshold for precision/recall/F1 and the confusion matrix (default 0.5)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def run(args: argparse.Namespace) -> int:
    from ..evaluation import evaluate_bundle, evaluate_model_files

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if bool(args.bundle) == bool(args.config):
        raise SystemExit("give either --bundle or --config with --weights")
    if args.bundle:
        metrics = evaluate_bundle(args.bundle, args.json, output_dir=args.output, device=args.device,
                                  score_thresh=args.score_thresh, image_root=args.image_root)
    else:
        if not args.weights:
            raise SystemExit("--config needs --weights")
        metrics = evaluate_model_files(args.config, args.weights, args.json, output_dir=args.output, device=args.device,
                                       training_config=args.training_config, image_root=args.image_root,
                                       score_thresh=0.5 if args.score_thresh is None else args.score_thresh)
    print(metrics["summary_text"])
    if args.output:
        print(f"written: {args.output}/metrics.json" + (f", {metrics['pr_curve_png']}" if metrics.get("pr_curve_png") else ""))
    return 0


def _dump(metrics: dict) -> str:  # for debugging from a shell
    return json.dumps({k: v for k, v in metrics.items() if k != "summary_text"}, indent=1, default=str)
