"""Our synthetic generator: deterministic by seed, six classes at realistic sizes, hRS told from
erythrocytes by the nucleus, touching cells, COCO with masks and um_per_px."""
from __future__ import annotations

import hashlib
import json
import math
import os

import numpy as np
import pytest
from PIL import Image

from inference.data import CLASS_NAMES, load_coco, segmentation_to_mask
from inference.synth import FieldOptions, generate_dataset, render_cell

# pycocotools 2.0 on numpy 2 warns on every mask decode
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


OPTS = FieldOptions(height=256, width=320, um_per_px=(0.22, 0.26), cells=(12, 18))


def _digest(folder):
    h = hashlib.sha256()
    for root, _, files in sorted(os.walk(folder)):
        for f in sorted(files):
            with open(os.path.join(root, f), "rb") as fh:
                h.update(f.encode() + fh.read())
    return h.hexdigest()


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    generate_dataset(str(out), seed=7, splits={"train": 8, "test": 2}, opts=OPTS, images_per_patient=3)
    return out


def test_same_seed_same_bytes_other_seed_other_images(synth, tmp_path):
    generate_dataset(str(tmp_path / "again"), seed=7, splits={"train": 8, "test": 2}, opts=OPTS, images_per_patient=3)
    assert _digest(tmp_path / "again") == _digest(synth)
    generate_dataset(str(tmp_path / "other"), seed=8, splits={"train": 1}, opts=OPTS)
    a = np.asarray(Image.open(tmp_path / "other" / "train" / "train_0000.png"))
    b = np.asarray(Image.open(synth / "train" / "train_0000.png"))
    assert not np.array_equal(a, b)


def test_coco_file_has_classes_um_per_px_patients_and_masks(synth):
    data = json.loads((synth / "train.json").read_text())
    assert [c["name"] for c in data["categories"]] == list(CLASS_NAMES)
    assert all(0.22 <= im["um_per_px"] <= 0.26 for im in data["images"])
    assert len({im["patient_id"] for im in data["images"]}) == 3
    ds = load_coco(str(synth / "train.json"))
    seen = {ds.class_names[a["category_id"]] for r in ds.records for a in r["annotations"]}
    assert seen == set(CLASS_NAMES)
    for r in ds.records[:3]:
        masks = [segmentation_to_mask(a["segmentation"], r["height"], r["width"]) for a in r["annotations"]]
        assert np.sum(masks, axis=0).max() == 1  # visible parts: no pixel in two cells
        for a, m in zip(r["annotations"], masks):
            ys, xs = np.nonzero(m)
            assert a["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            assert a["area"] == m.sum()


def test_cell_sizes_follow_the_spec():
    rng = np.random.default_rng(0)
    um = 0.25

    def diam(kind):
        return [2 * math.sqrt(render_cell(kind, rng, um).mask.sum() / math.pi) * um for _ in range(30)]

    rs, ery, cyte = diam("round_spermatid"), diam("erythrocyte"), diam("spermatocyte")
    assert 6.3 <= np.median(rs) <= 7.7 and min(rs) >= 4.8 and max(rs) <= 9.0
    assert 6.5 <= np.median(ery) <= 8.0
    assert np.median(cyte) >= 11.0
    sperm = render_cell("spermatozoon", rng, um)
    ys, xs = np.nonzero(sperm.mask)
    assert math.hypot(np.ptp(ys), np.ptp(xs)) * um > 35  # the tail is part of the cell


def test_round_spermatid_has_a_nucleus_where_an_erythrocyte_has_a_pale_centre():
    rng = np.random.default_rng(1)

    def centre_vs_rim(kind):
        vals = []
        for _ in range(20):
            p = render_cell(kind, rng, 0.25)
            od = p.od.mean(axis=2)
            yy, xx = np.mgrid[: od.shape[0], : od.shape[1]]
            r = np.hypot(yy - p.cy, xx - p.cx) / p.radius
            vals.append(od[r < 0.25].mean() - od[(r > 0.6) & (r < 0.85)].mean())
        return np.mean(vals)

    assert centre_vs_rim("round_spermatid") > 0.05   # denser centre: the nucleus
    assert centre_vs_rim("erythrocyte") < -0.03      # paler centre: biconcave, no nucleus


def test_fields_have_touching_cells(synth):
    ds = load_coco(str(synth / "train.json"))
    touching = 0
    for r in ds.records:
        masks = [segmentation_to_mask(a["segmentation"], r["height"], r["width"]) for a in r["annotations"]]
        grown = [np.pad(m, 2)[:-4, 2:-2] | np.pad(m, 2)[4:, 2:-2] | np.pad(m, 2)[2:-2, :-4] | np.pad(m, 2)[2:-2, 4:]
                 for m in masks]
        touching += sum(bool((grown[i] & masks[j]).any()) for i in range(len(masks)) for j in range(i + 1, len(masks)))
    assert touching >= 3
