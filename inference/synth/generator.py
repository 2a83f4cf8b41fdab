"""Synthetic brightfield fields of a testicular cell suspension, written as COCO with masks.

A field is: uneven illumination (a tilted, vignetted lamp with slow ripples, a warm white balance),
cells of the six classes (:mod:`.cells`) placed at random, in touching pairs and small clumps with
some overlap (the cell on top hides part of the one below: masks are the visible parts), unannotated
debris (dark particles, fibres, out-of-focus blobs, pale cell fragments), then defocus blur and
shot + read noise. Everything is drawn from ``numpy.random.default_rng`` seeded per image from
``(seed, split, index)``, so a dataset is the same for the same seed whatever else is drawn.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..data.classes import CLASS_NAMES, coco_categories
from ..data.coco import mask_to_polygons, mask_to_rle
from .cells import CLASS_FREQUENCY, _stroke, gaussian_blur, render_cell, smooth_field

SPLIT_ORDER = ("train", "val", "test")


@dataclass
class FieldOptions:
    height: int = 512
    width: int = 640
    um_per_px: tuple[float, float] = (0.2, 0.28)
    cells: tuple[int, int] = (10, 26)       # cells per field
    clump_prob: float = 0.35                 # a new cell is put against an existing one
    max_overlap: float = 0.25                # of the new cell's area, hidden under/over others
    min_visible: float = 0.55                # an instance is kept when this much of it is visible
    debris: tuple[int, int] = (4, 16)
    class_frequency: dict = field(default_factory=lambda: dict(CLASS_FREQUENCY))


def _illumination(rng, h, w):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    y, x = yy / h - 0.5, xx / w - 0.5
    level = rng.uniform(165, 215)
    tilt = 1.0 + rng.uniform(-0.12, 0.12) * x + rng.uniform(-0.12, 0.12) * y
    vy, vx = rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3)
    vign = 1.0 - rng.uniform(0.05, 0.3) * ((y - vy) ** 2 + (x - vx) ** 2)
    ripple = 1.0 + 0.025 * smooth_field(rng, (max(8, h // 16), max(8, w // 16)), 2.0)
    ripple = np.asarray(Image.fromarray(ripple.astype(np.float32), mode="F").resize((w, h), Image.BICUBIC))
    white = np.array([1.0, rng.uniform(0.95, 1.0), rng.uniform(0.84, 0.97)], np.float32)
    return (level * tilt * vign * ripple)[..., None] * white[None, None, :]


def _place(od_img, phase_img, patch, y0, x0, cover):
    """Add a patch at top-left (y0, x0) with clipping; returns the full-size (clipped) mask or None."""
    H, W = phase_img.shape
    h, w = patch.mask.shape
    ys, xs = slice(max(0, y0), min(H, y0 + h)), slice(max(0, x0), min(W, x0 + w))
    if ys.start >= ys.stop or xs.start >= xs.stop:
        return None
    py, px = slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0)
    m = patch.mask[py, px]
    # the cell on top partly hides what is under it, then adds its own density
    below = od_img[ys, xs]
    od_img[ys, xs] = below * (1.0 - cover * m[..., None]) + patch.od[py, px]
    phase_img[ys, xs] += patch.phase[py, px]
    full = np.zeros((H, W), bool)
    full[ys, xs] = m
    return full


def _debris(rng, od_img, phase_img, um):
    H, W = phase_img.shape
    kind = rng.choice(["particle", "fibre", "blob", "fragment"], p=[0.5, 0.15, 0.15, 0.2])
    cy, cx = rng.uniform(0, H), rng.uniform(0, W)
    if kind == "fibre":
        L = rng.uniform(10, 35) / um
        n = int(L + 20)
        pts = [(n / 2, n / 2)]
        a = rng.uniform(0, 2 * math.pi)
        for _ in range(int(L / 3)):
            a += rng.normal(0, 0.15)
            pts.append((pts[-1][0] + 3 * math.sin(a), pts[-1][1] + 3 * math.cos(a)))
        cov = _stroke(n, n, np.array(pts) + 0.0, max(1.2, 0.4 / um)) * rng.uniform(0.06, 0.15)
        y0, x0 = int(cy - n / 2), int(cx - n / 2)
        patch_od, patch_phase = cov, 0.05 * cov
    else:
        r = {"particle": rng.uniform(0.4, 1.8), "blob": rng.uniform(4, 10), "fragment": rng.uniform(2, 5)}[kind] / um
        n = int(2 * r * 1.6 + 8) | 1
        yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) - n // 2
        ang = np.arctan2(yy, xx)
        rr = r * (1 + 0.25 * np.cos(2 * ang + rng.uniform(0, 6.3)) * rng.uniform(0, 1)
                  + 0.15 * np.cos(3 * ang + rng.uniform(0, 6.3)) * rng.uniform(0, 1))
        inside = 1.0 / (1.0 + np.exp(np.clip((np.hypot(yy, xx) - rr) / 0.8, -50, 50)))
        if kind == "particle":
            patch_od, patch_phase = inside * rng.uniform(0.25, 0.8), 0.06 * inside
        elif kind == "blob":  # out of focus: soft and faint
            patch_od = gaussian_blur(inside, r * 0.3) * rng.uniform(0.03, 0.08)
            patch_phase = np.zeros_like(patch_od)
        else:  # pale irregular fragment with no nucleus (Sertoli cytoplasm and the like)
            tex = smooth_field(rng, (n, n), 1.5)
            patch_od = inside * (rng.uniform(0.04, 0.09) + 0.015 * tex)
            patch_phase = 0.04 * inside * (1 - inside) * 4
        y0, x0 = int(cy - n / 2), int(cx - n / 2)
    h, w = patch_od.shape
    ys, xs = slice(max(0, y0), min(H, y0 + h)), slice(max(0, x0), min(W, x0 + w))
    if ys.start >= ys.stop or xs.start >= xs.stop:
        return
    py, px = slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0)
    od_img[ys, xs] += patch_od[py, px][..., None]
    phase_img[ys, xs] += patch_phase[py, px]


def render_field(rng: np.random.Generator, opts: FieldOptions = FieldOptions(), um_per_px: float | None = None):
    """Draw one field. Returns ``(rgb uint8 [H, W, 3], um_per_px, [(class_name, bool mask [H, W]), ...])``."""
    H, W = opts.height, opts.width
    um = float(um_per_px if um_per_px is not None else rng.uniform(*opts.um_per_px))
    od_img = np.zeros((H, W, 3), np.float32)
    phase_img = np.zeros((H, W), np.float32)
    # debris first: some of it lies under cells
    n_debris = int(rng.integers(opts.debris[0], opts.debris[1] + 1))
    for _ in range(n_debris // 2):
        _debris(rng, od_img, phase_img, um)
    kinds = list(opts.class_frequency)
    p = np.array([opts.class_frequency[k] for k in kinds], np.float64)
    p /= p.sum()
    n_cells = int(rng.integers(opts.cells[0], opts.cells[1] + 1))
    placed: list[dict] = []   # {"kind", "mask", "full", "cy", "cx", "r"}
    tries = 0
    while len(placed) < n_cells and tries < n_cells * 25:
        tries += 1
        kind = kinds[int(rng.choice(len(kinds), p=p))]
        patch = render_cell(kind, rng, um)
        h, w = patch.mask.shape
        if placed and rng.random() < opts.clump_prob:
            other = placed[int(rng.integers(len(placed)))]
            a = rng.uniform(0, 2 * math.pi)
            dist = (other["r"] + patch.radius) * rng.uniform(0.82, 1.02)  # touching or overlapping
            cy, cx = other["cy"] + dist * math.sin(a), other["cx"] + dist * math.cos(a)
            allowed = opts.max_overlap
        else:
            cy, cx = rng.uniform(0, H), rng.uniform(0, W)
            allowed = 0.02
        y0, x0 = int(round(cy - patch.cy)), int(round(cx - patch.cx))
        # most of the cell must be in the field
        ys0, ys1, xs0, xs1 = max(0, y0), min(H, y0 + h), max(0, x0), min(W, x0 + w)
        if ys0 >= ys1 or xs0 >= xs1:
            continue
        inside_frac = patch.mask[ys0 - y0:ys1 - y0, xs0 - x0:xs1 - x0].sum() / max(1, patch.mask.sum())
        if inside_frac < 0.6:
            continue
        occupied = np.zeros((H, W), bool)
        for q in placed:
            occupied |= q["mask"]
        sub = occupied[ys0:ys1, xs0:xs1] & patch.mask[ys0 - y0:ys1 - y0, xs0 - x0:xs1 - x0]
        if sub.sum() > allowed * patch.mask.sum():
            continue
        # would the cells below stay visible enough?
        new_full = np.zeros((H, W), bool)
        new_full[ys0:ys1, xs0:xs1] = patch.mask[ys0 - y0:ys1 - y0, xs0 - x0:xs1 - x0]
        if any((q["mask"] & ~new_full).sum() < opts.min_visible * q["full_area"] for q in placed if (q["mask"] & new_full).any()):
            continue
        full = _place(od_img, phase_img, patch, y0, x0, cover=rng.uniform(0.3, 0.7))
        for q in placed:
            q["mask"] &= ~full
        placed.append({"kind": kind, "mask": full, "full_area": int(full.sum()), "cy": cy, "cx": cx, "r": patch.radius})
    for _ in range(n_debris - n_debris // 2):
        _debris(rng, od_img, phase_img, um)

    # image formation: illumination * transmission * (1 + phase), mild defocus, noise
    light = _illumination(rng, H, W)
    img = light * np.exp(-od_img) * (1.0 + phase_img)[..., None]
    sigma = rng.uniform(0.3, 1.1)
    img = gaussian_blur(img, sigma)
    gain = rng.uniform(15.0, 50.0)  # electrons per grey level: shot noise ~ sqrt(signal / gain)
    img = img + rng.standard_normal(img.shape).astype(np.float32) * np.sqrt(np.clip(img, 0, None) / gain)
    img = img + rng.normal(0, rng.uniform(0.8, 2.0), img.shape).astype(np.float32)
    rgb = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    anns = [(q["kind"], q["mask"]) for q in placed if q["mask"].sum() >= 0.5 * q["full_area"] and q["mask"].sum() > 8]
    return rgb, um, anns


def _image_rng(seed: int, split_index: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(split_index), int(index)]))


def write_split(out_dir: str, split: str, n: int, seed: int, opts: FieldOptions = FieldOptions(),
                polygons: bool = False, images_per_patient: int = 0, progress=None) -> dict:
    """Draw ``n`` fields into ``out_dir/split/*.png`` and ``out_dir/split.json`` (COCO, RLE masks or
    polygons, ``um_per_px`` per image, ``patient_id`` when ``images_per_patient`` > 0)."""
    split_index = SPLIT_ORDER.index(split) if split in SPLIT_ORDER else 3 + sum(map(ord, split))
    os.makedirs(os.path.join(out_dir, split), exist_ok=True)
    coco = {"info": {"description": "spermatid-portal synthetic brightfield cells", "seed": int(seed), "split": split},
            "images": [], "annotations": [], "categories": coco_categories(CLASS_NAMES)}
    base = (split_index + 1) * 100000
    ann_id = base * 10
    for i in range(n):
        rng = _image_rng(seed, split_index, i)
        rgb, um, anns = render_field(rng, opts)
        name = f"{split}_{i:04d}.png"
        Image.fromarray(rgb).save(os.path.join(out_dir, split, name))
        im = {"id": base + i, "file_name": name, "height": opts.height, "width": opts.width, "um_per_px": round(um, 5)}
        if images_per_patient:
            im["patient_id"] = f"synth-{seed}-{split}-{i // images_per_patient:03d}"
        coco["images"].append(im)
        for kind, m in anns:
            rle = mask_to_rle(m)
            ys, xs = np.nonzero(m)
            bbox = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
            seg = mask_to_polygons(m) if polygons else rle
            ann_id += 1
            coco["annotations"].append({"id": ann_id, "image_id": base + i, "category_id": CLASS_NAMES.index(kind) + 1,
                                        "segmentation": seg, "area": float(m.sum()), "bbox": bbox, "iscrowd": 0})
        if progress:
            progress(split, i + 1, n)
    with open(os.path.join(out_dir, f"{split}.json"), "w", encoding="utf-8") as f:
        json.dump(coco, f)
    return coco


def generate_dataset(out_dir: str, seed: int = 0, splits: dict | None = None, opts: FieldOptions = FieldOptions(),
                     polygons: bool = False, images_per_patient: int = 0, progress=None) -> dict[str, dict]:
    """Write ``{split: n_images}`` (default train 40, val 5, test 10) under ``out_dir``."""
    splits = splits if splits is not None else {"train": 40, "val": 5, "test": 10}
    return {s: write_split(out_dir, s, n, seed, opts, polygons, images_per_patient, progress)
            for s, n in splits.items() if n > 0}
