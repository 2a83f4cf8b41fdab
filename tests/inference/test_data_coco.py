"""COCO import/export: round trip (ids, masks by IoU), polygons and RLE, classes mapped by name."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from inference.data import CLASS_NAMES, DatasetError, load_coco, save_coco, segmentation_to_mask, to_coco_dict
from inference.data.coco import mask_to_polygons, mask_to_rle

# pycocotools 2.0 on numpy 2 warns on every mask decode
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")



def _disc(h, w, cy, cx, r):
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _write_dataset(tmp_path, categories=None):
    """Two images; one annotation as polygons, one as compressed RLE, one as uncompressed RLE."""
    h, w = 60, 80
    (tmp_path / "imgs").mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((h, w, 3), 200, np.uint8)).save(tmp_path / "imgs" / name)
    m1, m2, m3 = _disc(h, w, 20, 20, 8), _disc(h, w, 30, 50, 12), _disc(h, w, 40, 20, 6)
    uncompressed = {"size": [h, w], "counts": _uncompressed_counts(m3)}
    cats = categories or [{"id": i + 1, "name": n} for i, n in enumerate(CLASS_NAMES)]
    by_name = {c["name"]: c["id"] for c in cats}
    data = {
        "info": {"description": "hand-made"},
        "images": [{"id": 7, "file_name": "a.png", "height": h, "width": w, "um_per_px": 0.25, "patient_id": "P1",
                    "stain": "none"},
                   {"id": 9, "file_name": "b.png", "height": h, "width": w, "um_per_px": 0.2}],
        "annotations": [
            {"id": 101, "image_id": 7, "category_id": by_name["round_spermatid"], "segmentation": mask_to_polygons(m1),
             "area": float(m1.sum()), "bbox": _bbox(m1), "iscrowd": 0},
            {"id": 102, "image_id": 7, "category_id": by_name["erythrocyte"], "segmentation": mask_to_rle(m2),
             "area": float(m2.sum()), "bbox": _bbox(m2), "iscrowd": 0, "reviewer": "x"},
            {"id": 205, "image_id": 9, "category_id": by_name["leukocyte"], "segmentation": uncompressed,
             "area": float(m3.sum()), "bbox": _bbox(m3), "iscrowd": 0},
        ],
        "categories": cats,
    }
    path = tmp_path / "ds.json"
    path.write_text(json.dumps(data))
    return path, data, {101: m1, 102: m2, 205: m3}


def _bbox(m):
    ys, xs = np.nonzero(m)
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]


def _uncompressed_counts(m):
    flat = m.T.reshape(-1).astype(np.uint8)  # column-major, as COCO RLE
    counts, cur, run = [], 0, 0
    for v in flat:
        if v == cur:
            run += 1
        else:
            counts.append(run)
            cur, run = v, 1
    counts.append(run)
    return counts


def _iou(a, b):
    return np.logical_and(a, b).sum() / np.logical_or(a, b).sum()


def test_export_of_an_import_equals_the_input(tmp_path):
    path, data, masks = _write_dataset(tmp_path)
    ds = load_coco(str(path), image_root=str(tmp_path / "imgs"))
    out = tmp_path / "out.json"
    save_coco(ds, str(out))
    back = json.loads(out.read_text())
    assert [im["id"] for im in back["images"]] == [7, 9]
    assert back["images"] == data["images"]
    assert [a["id"] for a in back["annotations"]] == [101, 102, 205]
    assert back["categories"] == [{"id": c["id"], "name": c["name"]} for c in data["categories"]]
    assert back["info"] == data["info"]
    for a_in, a_out in zip(data["annotations"], back["annotations"]):
        assert {k: a_out[k] for k in ("image_id", "category_id", "bbox", "iscrowd")} == \
               {k: a_in[k] for k in ("image_id", "category_id", "bbox", "iscrowd")}
        m_in = segmentation_to_mask(a_in["segmentation"], 60, 80)
        m_out = segmentation_to_mask(a_out["segmentation"], 60, 80)
        assert _iou(m_in, m_out) >= 0.99
        assert _iou(m_out, masks[a_in["id"]]) >= (0.99 if isinstance(a_in["segmentation"], dict) else 0.85)
    assert back["annotations"][1]["reviewer"] == "x"
    # and a second round gives the same file
    save_coco(load_coco(str(out), image_root=str(tmp_path / "imgs")), str(tmp_path / "out2.json"))
    assert json.loads((tmp_path / "out2.json").read_text()) == back


def test_records_carry_um_per_px_patient_and_0_based_classes(tmp_path):
    path, _, _ = _write_dataset(tmp_path)
    ds = load_coco(str(path), image_root=str(tmp_path / "imgs"))
    a, b = ds.records
    assert (a["um_per_px"], a["patient_id"], b["um_per_px"], b["patient_id"]) == (0.25, "P1", 0.2, None)
    assert [x["category_id"] for x in a["annotations"]] == [0, 4]
    assert a["file_name"].endswith("imgs/a.png")
    s = ds.summary()
    assert s["images"] == 2 and s["instances"] == 3 and s["instances_per_class"]["leukocyte"] == 1
    assert s["um_per_px"] == [0.2, 0.25] and s["patients"] == 1


def test_classes_are_mapped_by_name_not_by_id(tmp_path):
    shuffled = [{"id": 10 + i, "name": n} for i, n in enumerate(reversed(CLASS_NAMES))]
    path, data, _ = _write_dataset(tmp_path, categories=shuffled)
    ds = load_coco(str(path), image_root=str(tmp_path / "imgs"))
    names = [ds.class_names[a["category_id"]] for r in ds.records for a in r["annotations"]]
    assert names == ["round_spermatid", "erythrocyte", "leukocyte"]
    back = to_coco_dict(ds)
    assert [a["category_id"] for a in back["annotations"]] == [a["category_id"] for a in data["annotations"]]


def test_unknown_class_is_an_error_unless_skipped(tmp_path):
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(CLASS_NAMES)] + [{"id": 99, "name": "sertoli"}]
    path, data, _ = _write_dataset(tmp_path, categories=cats)
    with pytest.raises(DatasetError, match="sertoli"):
        load_coco(str(path))
    ds = load_coco(str(path), unknown_classes="skip")
    assert ds.class_names == CLASS_NAMES


def test_bad_json_is_a_clear_error(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_coco(str(p))
    with pytest.raises(DatasetError, match="not found"):
        load_coco(str(tmp_path / "missing.json"))


def test_polygons_from_masks_rasterise_back_closely():
    m = _disc(100, 100, 50, 40, 20)
    polys = mask_to_polygons(m)
    back = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys, 100, 100))).astype(bool)
    assert _iou(m, back) > 0.95
