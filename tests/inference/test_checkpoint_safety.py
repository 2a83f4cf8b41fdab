"""No weights file runs code: .pth only weights-only, .pkl only numpy arrays, .safetensors; everything else
is refused with an error naming the file before any of it runs."""
from __future__ import annotations

import collections
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from inference.bundle import load_bundle
from inference.checkpoint import (
    CheckpointError,
    UnsafeCheckpointError,
    read_state_dict,
    save_safetensors,
)
from inference.engine.checkpointer import TrainingCheckpointer, load_pretrained_backbone, load_weights_file
from inference.modeling import build_model
from inference.predictor import Predictor
from tests.malicious_weights import CodePayload, write_malicious_weights

DEMO = Path(__file__).resolve().parents[2] / "inference" / "assets" / "demo_model"


@pytest.fixture(scope="module")
def demo():
    bundle = load_bundle(DEMO)
    return bundle, read_state_dict(bundle.weights_path)


@pytest.mark.parametrize("suffix", [".pth", ".pkl"])
def test_predictor_refuses_a_malicious_checkpoint_before_its_payload_runs(demo, tmp_path, suffix):
    bundle, state = demo
    marker = tmp_path / "marker"
    weights = write_malicious_weights(tmp_path / f"evil{suffix}", state, marker)
    with pytest.raises(UnsafeCheckpointError, match=f"refused checkpoint .*evil{suffix}") as refused:
        Predictor(bundle.config_path, weights)
    assert "exec" in refused.value.reason
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".pth", ".pkl"])
def test_training_loaders_refuse_a_malicious_checkpoint(demo, tmp_path, suffix):
    bundle, state = demo
    marker = tmp_path / "marker"
    weights = write_malicious_weights(tmp_path / f"model_0000009{suffix}", state, marker)
    with pytest.raises(UnsafeCheckpointError):
        load_weights_file(str(weights))
    with pytest.raises(UnsafeCheckpointError):
        load_pretrained_backbone(build_model(_cfg(bundle)), str(weights), log=lambda s: None)
    if suffix == ".pth":  # a resume checkpoint planted in the output folder
        (tmp_path / "last_checkpoint").write_text(weights.name)
        with pytest.raises(UnsafeCheckpointError):
            TrainingCheckpointer(str(tmp_path), build_model(_cfg(bundle))).resume()
    assert not marker.exists()


def _cfg(bundle):
    from inference.config import load_config

    return load_config(bundle.config_path)


def _rename_numpy_core(data: bytes) -> bytes:
    """A protocol-2 pickle as Python 2 / numpy 1 wrote it (``numpy.core.multiarray``, as in detectron2's
    model zoo .pkl files)."""
    return data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


@pytest.mark.parametrize("protocol", [2, 4, 5, "numpy1"])
def test_a_detectron2_pkl_of_numpy_arrays_loads(demo, tmp_path, protocol):
    _, state = demo
    content = {"model": collections.OrderedDict((k, v.numpy()) for k, v in state.items()),
               "__author__": "Detectron2 Model Zoo", "matching_heuristics": True, "epoch": np.float32(3.0)}
    data = pickle.dumps(content, protocol=2 if protocol == "numpy1" else protocol)
    if protocol == "numpy1":
        data = _rename_numpy_core(data)
        assert b"numpy.core.multiarray\n_reconstruct" in data
    path = tmp_path / "model_final.pkl"
    path.write_bytes(data)
    loaded = read_state_dict(path)
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


@pytest.mark.parametrize("payload, refused", [
    (CodePayload(Path("never")), r"global (__builtin__|builtins)\.exec"),
    (collections.Counter(a=1), "collections.Counter"),
    (torch.zeros(2), "torch"),  # a .pkl holds numpy arrays; torch's reducers are not in the list
])
def test_the_pkl_reader_refuses_any_other_global(tmp_path, payload, refused):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps({"model": {"w": np.zeros(2, np.float32)}, "extra": payload}, protocol=2))
    with pytest.raises(UnsafeCheckpointError, match=refused):
        read_state_dict(path)
    assert not Path("never").exists()


def test_the_pkl_reader_refuses_codecs_other_than_latin1(tmp_path):
    import _codecs

    class Rot13:
        def __reduce__(self):
            return _codecs.encode, ("abc", "rot13")

    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps({"model": {"w": np.zeros(2, np.float32)}, "extra": Rot13()}, protocol=2))
    with pytest.raises(CheckpointError, match="rot13"):
        read_state_dict(path)


def test_object_arrays_in_a_pkl_are_not_weights(tmp_path):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps({"model": {"w": np.array([1, "a"], dtype=object)}}, protocol=2))
    with pytest.raises(CheckpointError, match="array of Python objects"):
        read_state_dict(path)


def test_safetensors_weights_load_and_a_damaged_file_is_a_clear_error(demo, tmp_path):
    _, state = demo
    path = save_safetensors(state, tmp_path / "w.safetensors")
    loaded = read_state_dict(path)
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(Path(path).read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"damaged.safetensors \(corrupt or truncated"):
        read_state_dict(damaged)
    with pytest.raises(ValueError, match=".safetensors"):
        save_safetensors(state, tmp_path / "w.pth")


@pytest.mark.parametrize("suffix", [".pth", ".pkl"])
def test_the_command_line_names_a_refused_weights_file_without_a_traceback(demo, tmp_path, suffix, capsys):
    from PIL import Image

    from inference.__main__ import main

    bundle, state = demo
    marker = tmp_path / "marker"
    weights = write_malicious_weights(tmp_path / f"evil{suffix}", state, marker)
    Image.new("RGB", (64, 64)).save(tmp_path / "a.png")
    code = main(["predict", "--config", bundle.config_path, "--weights", str(weights), str(tmp_path / "a.png"),
                 "--out", str(tmp_path / "out.json")])
    assert code == 2
    assert f"refused checkpoint {weights}" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "out.json").exists()


def _py2_str(b: bytes) -> bytes:
    """SHORT_BINSTRING: a Python 2 ``str``."""
    return b"U" + bytes([len(b)]) + b


def _py2_float32_array(a: np.ndarray) -> bytes:
    """The protocol-2 opcodes Python 2 with numpy 1.x wrote for a 1-D float32 array (as in detectron2's
    model-zoo .pkl files): ``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype`` and
    the raw data as a Python 2 string."""
    data = a.astype("<f4").tobytes()
    dtype = (b"cnumpy\ndtype\n" + _py2_str(b"f4") + b"K\x00K\x01\x87R(K\x03" + _py2_str(b"<")
             + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")
    return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + _py2_str(b"b") + b"\x87R(K\x01K"
            + bytes([a.shape[0]]) + b"\x85" + dtype + b"\x89T" + len(data).to_bytes(4, "little") + data + b"tb")


def test_a_python2_detectron_pkl_loads(tmp_path):
    values = np.arange(5, dtype=np.float32) / 3
    path = tmp_path / "R-50.pkl"
    path.write_bytes(b"\x80\x02}" + _py2_str(b"blobs") + b"}" + _py2_str(b"conv1_w") + _py2_float32_array(values)
                     + b"s" + _py2_str(b"conv1_w_momentum") + _py2_float32_array(values) + b"ss"
                     + _py2_str(b"__author__") + _py2_str(b"Detectron") + b"s.")
    loaded = read_state_dict(path)
    assert list(loaded) == ["conv1_w"] and torch.equal(loaded["conv1_w"], torch.from_numpy(values))
