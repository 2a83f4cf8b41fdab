"""Model bundles: one directory (or ``.zip`` of it) with everything needed to run a trained model.

Layout::

    bundle.json     {"format": 1, "framework": "spermatid-portal inference", "name", "version",
                     "class_names", "config": "config.yaml", "weights": "model_final.safetensors",
                     "weights_sha256", "weights_bytes", "metrics", "training_data", "created", ...}
    config.yaml     detectron2-format inference config (loadable by inference.config.load_config)
    model_final.safetensors   the state dict (detectron2's parameter names), no pickle

:func:`write_bundle` writes safetensors weights. :func:`load_bundle` also accepts bundles whose weights
are a ``.pth`` or detectron2 ``.pkl``, read only as data (``inference.checkpoint``: weights-only torch
load, numpy-only unpickler). It checks that the files exist, that the JSON is well formed, that the
weights file has one of those types and that its sha256 matches, and raises :class:`BundleError` naming
the problem otherwise.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

FRAMEWORK = "spermatid-portal inference"
FORMAT_VERSION = 1
BUNDLE_JSON = "bundle.json"
_REQUIRED = ("name", "version", "class_names", "config", "weights", "weights_sha256")
WEIGHTS_NAME = "model_final.safetensors"


class BundleError(ValueError):
    """A model bundle that is missing files, has a bad bundle.json, or whose weights do not match."""


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class Bundle:
    path: str                  # the bundle directory (an extracted copy for a .zip)
    name: str
    version: str
    class_names: list[str]
    config_path: str
    weights_path: str
    weights_sha256: str
    metrics: dict = field(default_factory=dict)
    training_data: dict = field(default_factory=dict)
    created: str = ""
    meta: dict = field(default_factory=dict)

    def predictor(self, device: str = "cpu", **kwargs: Any):
        """An :class:`inference.predictor.Predictor` for this bundle, classes named."""
        from .predictor import Predictor

        return Predictor(self.config_path, self.weights_path, device=device, class_names=self.class_names, **kwargs)


def _extract_zip(path: str) -> str:
    """Extract a bundle archive next to a cache keyed by its hash; returns the bundle directory."""
    digest = sha256_file(path)[:16]
    root = os.path.join(tempfile.gettempdir(), "spermatid-bundles", digest)
    if not os.path.exists(os.path.join(root, ".complete")):
        tmp = tempfile.mkdtemp(prefix="bundle-", dir=os.path.dirname(root) if os.path.isdir(os.path.dirname(root)) else None)
        try:
            with zipfile.ZipFile(path) as z:
                for member in z.namelist():
                    if member.startswith("/") or ".." in member.split("/"):
                        raise BundleError(f"{path}: unsafe path in archive: {member}")
                z.extractall(tmp)
        except zipfile.BadZipFile as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise BundleError(f"{path} is not a valid zip archive: {exc}") from None
        entries = os.listdir(tmp)
        inner = os.path.join(tmp, entries[0]) if len(entries) == 1 and os.path.isdir(os.path.join(tmp, entries[0])) else tmp
        open(os.path.join(inner, ".complete"), "w").close()
        os.makedirs(os.path.dirname(root), exist_ok=True)
        if os.path.exists(root):
            shutil.rmtree(root, ignore_errors=True)
        shutil.move(inner, root)
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def load_bundle(path: str, verify: bool = True) -> Bundle:
    """Open a bundle directory or ``.zip``; verifies the weights' sha256 unless ``verify`` is False."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise BundleError(f"model bundle not found: {path}")
    directory = _extract_zip(path) if os.path.isfile(path) else path
    meta_path = os.path.join(directory, BUNDLE_JSON)
    if not os.path.isfile(meta_path):
        raise BundleError(f"{path}: no {BUNDLE_JSON} (not a model bundle)")
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: {BUNDLE_JSON} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise BundleError(f"{path}: {BUNDLE_JSON} must hold an object")
    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise BundleError(f"{path}: {BUNDLE_JSON} lacks {', '.join(missing)}")
    names = meta["class_names"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise BundleError(f"{path}: class_names must be a list of distinct non-empty names, got {names!r}")
    for key in ("config", "weights"):
        if os.path.isabs(meta[key]) or ".." in meta[key].replace("\\", "/").split("/"):
            raise BundleError(f"{path}: {key} must be a file inside the bundle, got {meta[key]!r}")
    config_path = os.path.join(directory, meta["config"])
    weights_path = os.path.join(directory, meta["weights"])
    for label, p in (("config", config_path), ("weights", weights_path)):
        if not os.path.isfile(p):
            raise BundleError(f"{path}: {label} file {os.path.basename(p)} is missing")
    from .checkpoint import WEIGHTS_SUFFIXES

    if not meta["weights"].endswith(WEIGHTS_SUFFIXES):
        raise BundleError(f"{path}: weights file {meta['weights']} must be one of {', '.join(WEIGHTS_SUFFIXES)}")
    if verify:
        actual = sha256_file(weights_path)
        if actual != meta["weights_sha256"]:
            raise BundleError(f"{path}: weights {meta['weights']} have sha256 {actual}, bundle.json says "
                              f"{meta['weights_sha256']} (corrupt or replaced file)")
    return Bundle(path=directory, name=str(meta["name"]), version=str(meta["version"]), class_names=list(names),
                  config_path=config_path, weights_path=weights_path, weights_sha256=meta["weights_sha256"],
                  metrics=meta.get("metrics") or {}, training_data=meta.get("training_data") or {},
                  created=meta.get("created", ""), meta=meta)


def write_bundle(out_dir: str, *, name: str, version: str, class_names: Sequence[str], config: Any,
                 weights: str | dict, metrics: dict | None = None, training_data: dict | None = None,
                 archive: bool = False, extra: dict | None = None) -> str:
    """Write a bundle directory (and ``<out_dir>.zip`` when ``archive``); returns the directory.

    ``config``: a path to an inference YAML or a CfgNode (dumped). ``weights``: a checkpoint path
    (its ``"model"`` state dict is kept, without optimizer state; read safely) or a state dict. The
    weights are written as ``model_final.safetensors``.
    """
    from .checkpoint import read_state_dict, save_safetensors
    from .engine.checkpointer import strip_norm_counters

    os.makedirs(out_dir, exist_ok=True)
    cfg_out = os.path.join(out_dir, "config.yaml")
    if isinstance(config, (str, os.PathLike)):
        shutil.copyfile(config, cfg_out)
    else:
        with open(cfg_out, "w", encoding="utf-8") as f:
            f.write(config.dump())
    state = read_state_dict(weights) if isinstance(weights, (str, os.PathLike)) else weights
    w_out = save_safetensors(strip_norm_counters(state), os.path.join(out_dir, WEIGHTS_NAME))
    for stale in ("model_final.pth", "model_final.pkl"):  # an older bundle's weights in the same directory
        if os.path.exists(os.path.join(out_dir, stale)):
            os.remove(os.path.join(out_dir, stale))
    meta = {"format": FORMAT_VERSION, "framework": FRAMEWORK, "name": name, "version": str(version),
            "class_names": list(class_names), "config": "config.yaml", "weights": WEIGHTS_NAME,
            "weights_sha256": sha256_file(w_out), "weights_bytes": os.path.getsize(w_out),
            "metrics": metrics or {}, "training_data": training_data or {},
            "created": datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()}
    meta.update(extra or {})
    with open(os.path.join(out_dir, BUNDLE_JSON), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1, allow_nan=False, default=_json_default)
        f.write("\n")
    if archive:
        make_archive(out_dir)
    return out_dir


def _json_default(x):
    if hasattr(x, "tolist"):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def make_archive(bundle_dir: str, zip_path: str | None = None) -> str:
    """Zip a bundle directory (entries under its folder name)."""
    bundle_dir = os.path.normpath(bundle_dir)
    zip_path = zip_path or bundle_dir + ".zip"
    base = os.path.basename(bundle_dir)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for fname in sorted(os.listdir(bundle_dir)):
            full = os.path.join(bundle_dir, fname)
            if os.path.isfile(full) and not fname.startswith("."):
                z.write(full, f"{base}/{fname}")
    return zip_path


def clean_metrics(metrics: dict | None) -> dict:
    """The part of an evaluation worth keeping in bundle.json (no NaN, no file paths)."""
    if not metrics:
        return {}
    import math

    def fix(x):
        if isinstance(x, float) and math.isnan(x):
            return None
        if isinstance(x, dict):
            return {k: fix(v) for k, v in x.items()}
        if isinstance(x, list):
            return [fix(v) for v in x]
        return x

    keep = {k: metrics[k] for k in ("images", "score_thresh", "bbox", "segm", "target", "confusion_matrix",
                                    "seconds_per_image", "held_out") if k in metrics}
    if "dataset" in metrics:
        keep["dataset"] = os.path.basename(str(metrics["dataset"]))
    return fix(keep)


def write_bundle_from_training(train_dir: str, out_dir: str, *, name: str, version: str, metrics: dict | None = None,
                               weights: str | None = None, archive: bool = False) -> str:
    """Bundle the result of ``inference train``: its ``config.yaml`` turned into the inference config
    (FrozenBN, no training-only keys), the model state of ``model_final.pth`` (as safetensors) and
    ``training.json``'s data summary."""
    from .engine.defaults import inference_config, load_training_config

    cfg = inference_config(load_training_config(os.path.join(train_dir, "config.yaml")))
    info = {}
    info_path = os.path.join(train_dir, "training.json")
    if os.path.exists(info_path):
        with open(info_path, encoding="utf-8") as f:
            info = json.load(f)
    class_names = info.get("class_names")
    if not class_names:
        from .data.classes import CLASS_NAMES

        class_names = list(CLASS_NAMES[: cfg.MODEL.ROI_HEADS.NUM_CLASSES])
    training = dict(info.get("training_data") or {})
    training.update({k: info[k] for k in ("iterations", "seconds", "s_per_iter", "seed", "device") if k in info})
    return write_bundle(out_dir, name=name, version=version, class_names=class_names, config=cfg,
                        weights=weights or os.path.join(train_dir, "model_final.pth"),
                        metrics=clean_metrics(metrics), training_data=training, archive=archive)
