"""COCO instance-segmentation datasets: import, export and a summary.

A dataset is a list of *records*, one per image, in detectron2's "dataset dict" shape::

    {"file_name": str (absolute path), "image_id": int, "height": int, "width": int,
     "um_per_px": float | None, "patient_id": str | None, "extra": dict (other image keys),
     "annotations": [{"id": int, "category_id": int (0-based, in class_names order),
                      "bbox": [x, y, w, h] (pixels), "segmentation": polygons | RLE dict,
                      "iscrowd": int, "area": float, "extra": dict}]}

plus the class list by name. Segmentations keep the form they had in the file (polygons, compressed
or uncompressed RLE) so that an export of an import gives back the input.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from .classes import CLASS_NAMES

_IMAGE_KEYS = {"id", "file_name", "height", "width", "um_per_px", "patient_id"}
_ANN_KEYS = {"id", "image_id", "category_id", "bbox", "segmentation", "iscrowd", "area"}


class DatasetError(ValueError):
    """A COCO file that cannot be read as this project's dataset (bad JSON, unknown class, ...)."""


@dataclass
class CocoDataset:
    """Records plus the class list (by name) and the COCO category id used for each class."""

    records: list[dict]
    class_names: tuple[str, ...]
    category_ids: tuple[int, ...] = ()
    info: dict = field(default_factory=dict)
    source: str | None = None

    def __post_init__(self) -> None:
        self.class_names = tuple(self.class_names)
        if not self.category_ids:
            self.category_ids = tuple(range(1, len(self.class_names) + 1))
        self.category_ids = tuple(int(c) for c in self.category_ids)
        if len(self.category_ids) != len(self.class_names):
            raise DatasetError("category_ids and class_names differ in length")

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def subset(self, image_ids: Iterable[int]) -> CocoDataset:
        keep = set(int(i) for i in image_ids)
        return CocoDataset([r for r in self.records if r["image_id"] in keep], self.class_names,
                           self.category_ids, dict(self.info), self.source)

    def summary(self) -> dict:
        return dataset_summary(self)


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise DatasetError(f"COCO file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or "images" not in data or "categories" not in data:
        raise DatasetError(f"{path} has no 'images'/'categories': not a COCO instances file")
    return data


def load_coco(json_path: str, image_root: str | None = None, class_names: Sequence[str] | None = CLASS_NAMES,
              unknown_classes: str = "error") -> CocoDataset:
    """Read a COCO instances file.

    ``image_root`` defaults to the JSON's folder, then its ``<stem>/`` subfolder when images live
    there (as ``inference synth`` and ``synthcells.py`` write them). ``class_names``: the model's class
    list; categories are mapped to it *by name*. ``None`` takes the file's categories in id order.
    ``unknown_classes``: "error" (default) or "skip" for categories not in ``class_names``.
    """
    data = _read_json(json_path)
    cats = sorted(data["categories"], key=lambda c: c["id"])
    if class_names is None:
        class_names = tuple(c["name"] for c in cats)
    class_names = tuple(class_names)
    name_to_index = {n: i for i, n in enumerate(class_names)}
    cat_to_index: dict[int, int] = {}
    category_ids = list(range(1, len(class_names) + 1))
    for c in cats:
        if c["name"] in name_to_index:
            cat_to_index[c["id"]] = name_to_index[c["name"]]
            category_ids[name_to_index[c["name"]]] = int(c["id"])
        elif unknown_classes == "error":
            raise DatasetError(f"{json_path}: category {c['name']!r} is not one of {list(class_names)}")
    if len(set(category_ids)) != len(category_ids):
        category_ids = list(range(1, len(class_names) + 1))

    root = image_root or _guess_image_root(json_path, data)
    by_image: dict[int, list] = {}
    for a in data.get("annotations", []):
        if a["category_id"] not in cat_to_index:
            if unknown_classes == "error":
                raise DatasetError(f"{json_path}: annotation {a.get('id')} has unknown category {a['category_id']}")
            continue
        ann = {"id": int(a["id"]), "category_id": cat_to_index[a["category_id"]],
               "bbox": [float(v) for v in a["bbox"]], "segmentation": a.get("segmentation"),
               "iscrowd": int(a.get("iscrowd", 0)),
               "area": float(a["area"]) if "area" in a else None,
               "extra": {k: v for k, v in a.items() if k not in _ANN_KEYS}}
        by_image.setdefault(a["image_id"], []).append(ann)
    records = []
    for im in data["images"]:
        um = im.get("um_per_px")
        records.append({
            "file_name": os.path.join(root, im["file_name"]),
            "coco_file_name": im["file_name"],
            "image_id": int(im["id"]), "height": int(im["height"]), "width": int(im["width"]),
            "um_per_px": float(um) if um is not None else None,
            "patient_id": im.get("patient_id"),
            "extra": {k: v for k, v in im.items() if k not in _IMAGE_KEYS},
            "annotations": by_image.get(im["id"], []),
        })
    info = {k: v for k, v in data.items() if k not in ("images", "annotations", "categories")}
    return CocoDataset(records, class_names, tuple(category_ids), info, os.path.abspath(json_path))


def _guess_image_root(json_path: str, data: dict) -> str:
    folder = os.path.dirname(os.path.abspath(json_path))
    if not data["images"]:
        return folder
    first = data["images"][0]["file_name"]
    if os.path.exists(os.path.join(folder, first)):
        return folder
    stem = os.path.splitext(os.path.basename(json_path))[0]
    if os.path.exists(os.path.join(folder, stem, first)):
        return os.path.join(folder, stem)
    return folder


def to_coco_dict(dataset: CocoDataset) -> dict:
    """The COCO instances dict for ``dataset`` (inverse of :func:`load_coco`)."""
    images, annotations = [], []
    for r in dataset.records:
        im = {"id": r["image_id"], "file_name": r.get("coco_file_name") or os.path.basename(r["file_name"]),
              "height": r["height"], "width": r["width"]}
        if r.get("um_per_px") is not None:
            im["um_per_px"] = r["um_per_px"]
        if r.get("patient_id") is not None:
            im["patient_id"] = r["patient_id"]
        im.update(r.get("extra") or {})
        images.append(im)
        for a in r["annotations"]:
            seg = a["segmentation"]
            area = a.get("area")
            if area is None:
                area = float(mask_utils.area(segmentation_to_rle(seg, r["height"], r["width"])))
            out = {"id": a["id"], "image_id": r["image_id"],
                   "category_id": dataset.category_ids[a["category_id"]],
                   "segmentation": seg, "area": area, "bbox": list(a["bbox"]), "iscrowd": a.get("iscrowd", 0)}
            out.update(a.get("extra") or {})
            annotations.append(out)
    cats = [{"id": cid, "name": n} for cid, n in zip(dataset.category_ids, dataset.class_names)]
    data = dict(dataset.info)
    data.update({"images": images, "annotations": annotations, "categories": cats})
    return data


def save_coco(dataset: CocoDataset, json_path: str) -> str:
    """Write ``dataset`` as a COCO instances file; image ``file_name`` stays relative to the JSON."""
    os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(to_coco_dict(dataset), f)
    return json_path


# -- masks -------------------------------------------------------------------------------------

def segmentation_to_rle(seg: Any, height: int, width: int) -> dict:
    """One compressed RLE for a polygon list, an uncompressed RLE or a compressed RLE."""
    if isinstance(seg, list):
        if not seg:
            return mask_utils.encode(np.zeros((height, width), np.uint8, order="F"))
        rles = mask_utils.frPyObjects([list(map(float, p)) for p in seg], height, width)
        return mask_utils.merge(rles)
    if isinstance(seg, dict):
        if isinstance(seg.get("counts"), list):
            return mask_utils.frPyObjects(seg, height, width)
        counts = seg["counts"]
        return {"size": list(seg["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    raise DatasetError(f"unsupported segmentation of type {type(seg).__name__}")


def segmentation_to_mask(seg: Any, height: int, width: int) -> np.ndarray:
    """Bool mask [H, W] of one annotation's segmentation (polygons or RLE)."""
    return mask_utils.decode(segmentation_to_rle(seg, height, width)).astype(bool)


def mask_to_rle(mask: np.ndarray) -> dict:
    """Compressed COCO RLE of a bool mask with ``counts`` as str (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def mask_to_polygons(mask: np.ndarray, tolerance: float = 0.0) -> list[list[float]]:
    """Outer contours of ``mask`` as COCO polygons (pixel-corner coordinates; needs matplotlib)."""
    import contourpy  # a matplotlib dependency

    padded = np.pad(mask.astype(np.float64), 1)
    gen = contourpy.contour_generator(z=padded, line_type="Separate")
    polys = []
    for line in gen.lines(0.5):
        if len(line) < 3:
            continue
        pts = line - 1.0 + 0.5  # undo padding; pixel centres -> COCO pixel coordinates
        poly = pts.reshape(-1).tolist()
        if len(poly) >= 6:
            polys.append([round(v, 2) for v in poly])
    return polys


def bbox_of_mask(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]


# -- summary -------------------------------------------------------------------------------------

def dataset_summary(dataset: CocoDataset) -> dict:
    """Counts per class, image sizes and um_per_px range: what a model bundle records of its data."""
    per_class = {n: 0 for n in dataset.class_names}
    ums = [r["um_per_px"] for r in dataset.records if r.get("um_per_px") is not None]
    for r in dataset.records:
        for a in r["annotations"]:
            per_class[dataset.class_names[a["category_id"]]] += 1
    out = {"images": len(dataset.records), "instances": sum(per_class.values()), "instances_per_class": per_class,
           "patients": len({r["patient_id"] for r in dataset.records if r.get("patient_id") is not None}),
           "um_per_px": [min(ums), max(ums)] if ums else None}
    if dataset.source:
        out["source"] = dataset.source
        try:
            with open(dataset.source, "rb") as f:
                out["source_sha256"] = hashlib.sha256(f.read()).hexdigest()
        except OSError:
            pass
    return out


def records_copy(records: list[dict]) -> list[dict]:
    return copy.deepcopy(records)
