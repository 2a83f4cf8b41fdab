"""Fine-tuning a registered model (or training one from scratch) on a COCO dataset, resumable and cancellable.

:func:`finetune` is what the portal's training jobs call: it builds the model from a bundle (its
config and safetensors weights, read as data only) or from the demo training config, trains it with
:class:`inference.engine.trainer.Trainer`, and writes into ``output_dir``:

- ``finetune.json``: the options, base bundle and class names of the run (a second call on the same
  directory must ask for the same run; it then resumes),
- ``config.yaml``: the training config, ``model_*.pth`` / ``model_final.pth`` / ``last_checkpoint``:
  checkpoints, written atomically (see :mod:`inference.engine.checkpointer`),
- ``losses.jsonl``: one line per iteration (``{"iteration": done, "loss_...": ...}``),
- ``training.json``: the summary of the last call.

A call on an ``output_dir`` that holds a checkpoint (after a crash, a SIGKILL or a cancel) continues
from it: same iteration count at the end, same data order (batch ``b`` is drawn from ``(seed, b)``),
same optimizer and LR schedule state. :func:`finetune_bundle` turns a finished run into a bundle.
"""
from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch

from ..data.classes import CLASS_NAMES
from ..data.coco import dataset_summary, load_coco
from ..data.mapper import build_train_loader, filter_records
from .checkpointer import load_weights_file
from .defaults import TRAINING_KEYS, inference_config, load_training_config
from .launch import build_model_from_config, seed_everything, set_physical_scale
from .optim import GradientClipper, build_lr_scheduler, build_optimizer
from .trainer import Trainer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEMO_TRAINING_CONFIG = os.path.join(ROOT, "inference", "configs", "demo_cascade_small.yaml")
RUN_FILE = "finetune.json"
LOSSES_FILE = "losses.jsonl"


@dataclass
class FinetuneOptions:
    """What a training job may choose. The defaults fit a 2-core CPU worker: fine-tuning the demo model
    on ~50 images of a new appearance in about 20 minutes (``benchmarks/bench_finetune.py``).

    iterations: SGD steps. base_lr: peak learning rate (linear warmup over ``warmup_iters``, then ×0.1
    at 80 % of the run). ims_per_batch: images per step. crop: largest training crop (H, W) after the
    resample to the model's pixel size (images with ``um_per_px``). min_size_train: short edge of the
    training resize for images without ``um_per_px``. freeze_at: backbone stages kept fixed when
    fine-tuning (0: none, 1: the stem, 2: stem + res2, ...; from scratch nothing is frozen). augment: the demo recipe's flips, rotations and photometric
    changes. checkpoint_period: iterations between checkpoints (0: only the final one). threads: torch
    CPU threads (0: leave as set).
    """

    iterations: int = 300
    base_lr: float = 0.01
    ims_per_batch: int = 2
    min_size_train: int = 512
    crop: tuple[int, int] = (448, 448)
    freeze_at: int = 2
    warmup_iters: int = 20
    augment: bool = True
    checkpoint_period: int = 50
    seed: int = 0
    device: str = "cpu"
    threads: int = 0

    def __post_init__(self) -> None:
        self.crop = (int(self.crop[0]), int(self.crop[1]))
        if self.iterations < 1:
            raise ValueError(f"iterations must be at least 1, got {self.iterations}")
        if not self.base_lr > 0:
            raise ValueError(f"base_lr must be positive, got {self.base_lr}")
        if self.ims_per_batch < 1:
            raise ValueError(f"ims_per_batch must be at least 1, got {self.ims_per_batch}")
        if self.checkpoint_period < 0:
            raise ValueError(f"checkpoint_period must be 0 or more, got {self.checkpoint_period}")
        if not 0 <= self.freeze_at <= 5:
            raise ValueError(f"freeze_at must be 0..5, got {self.freeze_at}")
        if min(self.crop) < 64 or self.min_size_train < 64:
            raise ValueError("crop and min_size_train must be at least 64 pixels")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["crop"] = list(self.crop)
        return d


@dataclass
class TrainingProgress:
    """After an iteration: ``iteration`` = iterations done (1..max_iter), ``losses`` = that step's losses
    (``total_loss`` included), ``seconds_per_iter`` = median of the recent ones, ``eta_seconds`` = the rest."""

    iteration: int
    max_iter: int
    losses: dict[str, float]
    seconds_per_iter: float
    eta_seconds: float


@dataclass
class FinetuneResult:
    """``weights_path``: ``model_final.pth``, or the checkpoint where a stopped run ended.
    ``resumed_from``: the iteration this call started at when it continued a checkpoint (None: a fresh
    run). ``loss_history``: every iteration of the run, across resumes (``{"iteration", losses...}``)."""

    output_dir: str
    weights_path: str
    iterations_done: int
    stopped: bool
    resumed_from: int | None
    loss_history: list[dict] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _training_config(base_bundle: str | None, config_path: str | None, options: FinetuneOptions, class_names):
    """(training cfg, initial weights path or None, bundle meta)."""
    recipe = load_training_config(config_path or DEMO_TRAINING_CONFIG)
    if base_bundle is None:
        cfg, weights, meta = recipe, (recipe.MODEL.WEIGHTS or None), {}
    else:
        from ..bundle import load_bundle

        bundle = load_bundle(base_bundle)
        if list(bundle.class_names) != list(class_names):
            raise ValueError(f"the base model's classes {bundle.class_names} differ from the dataset's {list(class_names)}")
        cfg = load_training_config(bundle.config_path)
        # the model is the bundle's; the training-only keys (augmentations, physical-scale jitter and
        # crop, gradient clipping) come from the recipe
        for section, keys in TRAINING_KEYS.items():
            for key in keys:
                if key in recipe[section] and section != "MODEL":
                    cfg[section][key] = copy.deepcopy(recipe[section][key])
        cfg.SOLVER.CLIP_GRADIENTS = copy.deepcopy(recipe.SOLVER.CLIP_GRADIENTS)
        cfg.MODEL.BACKBONE.FREEZE_AT = options.freeze_at  # from scratch every stage learns
        weights = bundle.weights_path
        meta = {"name": bundle.name, "version": bundle.version, "weights_sha256": bundle.weights_sha256}
    if int(cfg.MODEL.ROI_HEADS.NUM_CLASSES) != len(class_names):
        raise ValueError(f"{len(class_names)} class names but the model has {cfg.MODEL.ROI_HEADS.NUM_CLASSES} classes")
    n = options.iterations
    cfg.MODEL.WEIGHTS = ""
    cfg.SOLVER.MAX_ITER = n
    cfg.SOLVER.BASE_LR = options.base_lr
    cfg.SOLVER.IMS_PER_BATCH = options.ims_per_batch
    cfg.SOLVER.LR_SCHEDULER_NAME = "WarmupMultiStepLR"
    cfg.SOLVER.STEPS = [max(1, int(round(0.8 * n)))] if n > 1 else []
    cfg.SOLVER.WARMUP_ITERS = min(options.warmup_iters, max(0, n // 4))
    cfg.SOLVER.CHECKPOINT_PERIOD = options.checkpoint_period
    cfg.SOLVER.LOG_PERIOD = 10
    cfg.INPUT.MIN_SIZE_TRAIN = [options.min_size_train]
    cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING = "choice"
    cfg.INPUT.PHYSICAL_SCALE.CROP = list(options.crop)
    if not options.augment:
        defaults = load_training_config(os.path.join(ROOT, "inference", "configs", "cascade_small_bn.yaml"))
        cfg.INPUT.AUGMENT = copy.deepcopy(defaults.INPUT.AUGMENT)
    cfg.DATALOADER.NUM_WORKERS = 0
    return cfg, weights, meta


def _load_initial_weights(model: torch.nn.Module, path: str, log: Callable[[str], None]) -> None:
    """Load ``path`` (read as data only) into ``model``: every model tensor must be there with its shape,
    except BatchNorm step counters."""
    state = load_weights_file(path)
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    wrong = [f"{k}: {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in own
             if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or wrong:
        raise ValueError(f"{path} does not fit the model: missing {missing[:5]}{'...' if len(missing) > 5 else ''}"
                         f" wrong shape {wrong[:5]}")
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    log(f"initial weights {os.path.basename(path)}: {len(own) - len(missing)} tensors")


def _read_losses(path: str, up_to: int) -> list[dict]:
    """Per-iteration losses of the run, the last write of each iteration winning (lines written after
    the checkpoint a crashed run resumed from are written again), up to iteration ``up_to``."""
    by_iter: dict[int, dict] = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a kill
                    continue
                if isinstance(rec, dict) and isinstance(rec.get("iteration"), int) and rec["iteration"] <= up_to:
                    by_iter[rec["iteration"]] = rec
    return [by_iter[k] for k in sorted(by_iter)]


def _check_same_run(output_dir: str, run: dict) -> None:
    path = os.path.join(output_dir, RUN_FILE)
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        before = json.load(f)
    if before != run:
        changed = sorted(k for k in set(before) | set(run) if before.get(k) != run.get(k))
        raise ValueError(f"{output_dir} holds another run (differs in {', '.join(changed)}); use a new output_dir")


def finetune(*, train_json: str, image_root: str | None, output_dir: str, base_bundle: str | None,
             options: FinetuneOptions, class_names: Sequence[str] = CLASS_NAMES, config_path: str | None = None,
             on_progress: Callable[[TrainingProgress], None] | None = None,
             should_stop: Callable[[], bool] | None = None,
             log: Callable[[str], None] | None = None) -> FinetuneResult:
    """Fine-tune ``base_bundle`` (a bundle directory or zip) on ``train_json``, or train the demo
    architecture from scratch when it is None; resumes from ``output_dir``'s last checkpoint if any.

    ``config_path``: a training config (default ``inference/configs/demo_cascade_small.yaml``): the
    whole model for a run from scratch; for fine-tuning only its training-only keys (augmentations,
    physical-scale jitter) and gradient clipping. Images with ``um_per_px`` are trained at the model's
    physical scale (the bundle's ``INPUT.UM_PER_PX``, or the data's for a run from scratch).
    ``on_progress`` gets a :class:`TrainingProgress` after every iteration; ``should_stop`` is polled
    after every iteration and True ends the run early with a checkpoint (a later call continues).
    """
    log = log or (lambda s: None)
    class_names = tuple(class_names)
    os.makedirs(output_dir, exist_ok=True)
    t0 = time.perf_counter()
    if options.threads > 0:
        torch.set_num_threads(options.threads)
    cfg, weights, base_meta = _training_config(base_bundle, config_path, options, class_names)
    run = {"options": options.to_dict(), "base_bundle": base_meta or None, "class_names": list(class_names),
           "train_json": os.path.basename(train_json)}
    _check_same_run(output_dir, run)

    dataset = load_coco(train_json, image_root=image_root, class_names=class_names, unknown_classes="skip")
    records = filter_records(dataset.records, True)
    if not records:
        raise ValueError(f"{train_json}: no image with an annotation to train on")
    physical = all((r.get("um_per_px") or 0) > 0 for r in records)
    cfg.INPUT.PHYSICAL_SCALE.ENABLED = physical
    set_physical_scale(cfg, records, log)

    dev = torch.device(options.device)
    seed_everything(options.seed)
    model = build_model_from_config(cfg).to(dev)
    model.train()
    optimizer = build_optimizer(cfg, model)
    scheduler = build_lr_scheduler(cfg, optimizer)
    losses_path = os.path.join(output_dir, LOSSES_FILE)
    losses_file = open(losses_path, "a", encoding="utf-8")

    def on_step(done: int, values: dict[str, float], s_per_iter: float) -> None:
        losses_file.write(json.dumps({"iteration": done, **values}) + "\n")
        losses_file.flush()
        if on_progress is not None:
            on_progress(TrainingProgress(iteration=done, max_iter=options.iterations, losses=dict(values),
                                         seconds_per_iter=s_per_iter,
                                         eta_seconds=s_per_iter * (options.iterations - done)))

    trainer = Trainer(model, [], optimizer, max_iter=options.iterations, scheduler=scheduler,
                      clipper=GradientClipper.from_config(cfg), output_dir=output_dir,
                      checkpoint_period=options.checkpoint_period, max_to_keep=2, log_period=10, progress=False,
                      log=log, extra_state={"class_names": list(class_names)}, on_step=on_step,
                      should_stop=should_stop, step_seed=options.seed)
    start = trainer.resume()  # 0 when output_dir holds no checkpoint
    if start == 0 and weights:
        _load_initial_weights(model, weights, log)
    with open(os.path.join(output_dir, "config.yaml"), "w", encoding="utf-8") as f:
        f.write(cfg.dump())
    with open(os.path.join(output_dir, RUN_FILE), "w", encoding="utf-8") as f:
        json.dump(run, f, indent=1)
    from ..data.mapper import DatasetMapper

    mapper = DatasetMapper.from_config(cfg, is_train=True, seed=options.seed)
    trainer.data = build_train_loader(records, mapper, options.ims_per_batch, seed=options.seed, start_batch=start,
                                      num_workers=0, aspect_ratio_grouping=True)
    try:
        summary = trainer.train()
    finally:
        losses_file.close()
    done = summary["iterations_done"]
    weights_path = summary["final_checkpoint"] or trainer.checkpointer.last_checkpoint()
    seconds = time.perf_counter() - t0
    summary.update({"class_names": list(class_names), "device": str(dev), "seed": options.seed,
                    "training_data": dataset_summary(dataset), "options": options.to_dict(),
                    "base_model": base_meta or None, "seconds_this_call": seconds})
    with open(os.path.join(output_dir, "training.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, default=str)
    return FinetuneResult(output_dir=output_dir, weights_path=str(weights_path), iterations_done=done,
                          stopped=bool(summary["stopped"]), resumed_from=start if start > 0 else None,
                          loss_history=_read_losses(losses_path, done), class_names=list(class_names),
                          seconds=seconds)


def finetune_bundle(result: FinetuneResult, *, out_dir: str, name: str, version: str,
                    metrics: dict | None = None, archive: bool = False) -> str:
    """Write the finished run ``result`` as a model bundle (inference config with FrozenBN and the
    model's pixel size, safetensors weights, the training data summary and options); returns ``out_dir``.
    A run that was stopped before its last iteration has no final weights and is refused."""
    from ..bundle import write_bundle

    if result.stopped:
        raise ValueError(f"the run in {result.output_dir} was stopped at iteration {result.iterations_done}; "
                         "finish it (call finetune again) before bundling")
    run_dir = result.output_dir
    cfg = inference_config(load_training_config(os.path.join(run_dir, "config.yaml")))
    with open(os.path.join(run_dir, "training.json"), encoding="utf-8") as f:
        info = json.load(f)
    training = dict(info.get("training_data") or {})
    training.update({k: info[k] for k in ("iterations", "seed", "device", "options", "base_model") if k in info})
    return write_bundle(out_dir, name=name, version=version, class_names=info["class_names"], config=cfg,
                        weights=result.weights_path, metrics=_json_safe(metrics or {}), training_data=training,
                        archive=archive)


def _json_safe(x):
    import math

    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x
