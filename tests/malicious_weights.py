"""Weights files that run code when unpickled: what an attacker uploads as a model.

Each file holds a real state dict (so a loader that unpickles it would go on and load the model) plus
an object whose ``__reduce__`` makes the unpickler call ``exec`` with code that writes ``marker``.
A safe loader refuses the file before that call: the marker file never appears.
"""
from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import torch


class CodePayload:
    """Unpickles as ``exec(<write marker>)``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('payload ran')",)


def write_malicious_weights(path: Path, state: dict[str, torch.Tensor], marker: Path) -> Path:
    """``path`` ending in ``.pth`` (torch.save) or ``.pkl`` (detectron2-style pickle of numpy arrays),
    holding ``state`` and the payload."""
    path = Path(path)
    if path.suffix == ".pkl":
        with open(path, "wb") as handle:
            pickle.dump({"model": {k: v.numpy() for k, v in state.items()}, "__author__": CodePayload(marker)},
                        handle, protocol=2)
    else:
        torch.save({"model": state, "iteration": CodePayload(marker)}, path)
    return path


def make_malicious_bundle(source: Path, out_dir: Path, *, suffix: str, marker: Path) -> Path:
    """A copy of the bundle directory ``source`` whose weights (``model_final<suffix>``) carry the payload;
    bundle.json names them with their true sha256, so only the weights' content is wrong."""
    from inference.checkpoint import read_state_dict

    out_dir = Path(out_dir)
    shutil.copytree(source, out_dir)
    meta = json.loads((out_dir / "bundle.json").read_text())
    state = read_state_dict(out_dir / meta["weights"])
    (out_dir / meta["weights"]).unlink()
    weights = write_malicious_weights(out_dir / f"model_final{suffix}", state, marker)
    meta.update(weights=weights.name, weights_sha256=hashlib.sha256(weights.read_bytes()).hexdigest(),
                weights_bytes=weights.stat().st_size)
    (out_dir / "bundle.json").write_text(json.dumps(meta, indent=1))
    return out_dir
