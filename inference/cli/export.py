"""``python -m inference export``: write a model bundle (directory, optionally .zip) from a training
output folder or from a config and weights."""
from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("source (one of)")
    src.add_argument("--train-dir", help="output folder of `inference train` (config.yaml, model_final.pth, training.json)")
    src.add_argument("--config", help="inference config YAML (with --weights)")
    parser.add_argument("--weights", help="checkpoint (default with --train-dir: its model_final.pth)")
    parser.add_argument("--output", required=True, help="bundle directory to write")
    parser.add_argument("--name", default="spermatid-detector")
    parser.add_argument("--version", default="0.1.0")
    parser.add_argument("--class-names", nargs="+", default=None,
                        help="class names in model order (default: ../shared/spec/labels.md order)")
    parser.add_argument("--metrics", default=None, help="metrics.json from `inference evaluate` to record")
    parser.add_argument("--zip", action="store_true", help="also write OUTPUT.zip")


def run(args: argparse.Namespace) -> int:
    from ..bundle import clean_metrics, load_bundle, write_bundle, write_bundle_from_training

    metrics = None
    if args.metrics:
        with open(args.metrics, encoding="utf-8") as f:
            metrics = json.load(f)
    if bool(args.train_dir) == bool(args.config):
        raise SystemExit("give either --train-dir or --config with --weights")
    if args.train_dir:
        path = write_bundle_from_training(args.train_dir, args.output, name=args.name, version=args.version,
                                          metrics=metrics, weights=args.weights, archive=args.zip)
    else:
        from ..config import load_config
        from ..data.classes import CLASS_NAMES

        if not args.weights:
            raise SystemExit("--config needs --weights")
        cfg = load_config(args.config)
        names = args.class_names or list(CLASS_NAMES[: cfg.MODEL.ROI_HEADS.NUM_CLASSES])
        path = write_bundle(args.output, name=args.name, version=args.version, class_names=names, config=cfg,
                            weights=args.weights, metrics=clean_metrics(metrics), archive=args.zip)
    b = load_bundle(path)
    print(f"bundle {b.name} {b.version}: {path} (classes {', '.join(b.class_names)}; weights sha256 {b.weights_sha256[:12]}…)")
    return 0
