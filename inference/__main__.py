"""Command line entry: ``python -m inference predict|train|evaluate|export``.

Each subcommand lives in its own module and exposes ``add_arguments(parser)`` and ``run(args)``.
"""
from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = {
    "predict": ("inference.cli.predict", "run a model on images and write COCO results JSON"),
    "train": ("inference.cli.train", "train a detector from a config and a COCO dataset"),
    "evaluate": ("inference.cli.evaluate", "evaluate a model or bundle on a COCO dataset"),
    "export": ("inference.cli.export", "write a model bundle from a config and weights"),
    "synth": ("inference.cli.synth", "draw a synthetic COCO dataset of cell images"),
}


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m inference")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        sub_parser = sub.add_parser(name, help=help_text)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_module=module)
    args = parser.parse_args(argv)
    from .checkpoint import CheckpointError

    try:
        return int(args._module.run(args) or 0)
    except CheckpointError as exc:  # a weights file missing, damaged or refused as unsafe: say which, no traceback
        print(f"python -m inference {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
