"""Drawing single cells for the synthetic brightfield generator.

Image formation is a thin-specimen absorption model: each cell adds *optical density* (OD, per RGB
channel; transmitted light = illumination * exp(-OD)) and a *phase* term for the refractile edge
(a dark rim inside the outline and a bright halo outside, as a slightly defocused brightfield or
Hoffman image shows). Sizes are in µm (``../shared/spec/labels.md``) and turned into pixels with the
image's ``um_per_px``.

Every renderer returns a :class:`CellPatch` centred on the cell; the generator composes them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# relative frequencies of the classes in a field (round spermatids dominate a TESE suspension
# enriched for them; erythrocytes are the main confounder)
CLASS_FREQUENCY = {
    "round_spermatid": 0.34,
    "spermatocyte": 0.12,
    "elongated_spermatid": 0.11,
    "spermatozoon": 0.09,
    "erythrocyte": 0.22,
    "leukocyte": 0.12,
}

_NEUTRAL = np.array([1.0, 1.0, 1.0], np.float32)
_HAEM = np.array([0.55, 1.0, 1.15], np.float32)  # haemoglobin absorbs green/blue: a warm, reddish cell
_STAIN = np.array([0.95, 1.0, 1.05], np.float32)


@dataclass
class CellPatch:
    od: np.ndarray      # float32 [h, w, 3] optical density added by the cell
    phase: np.ndarray   # float32 [h, w] relative brightness change (rim < 0, halo > 0)
    mask: np.ndarray    # bool [h, w] the cell (instance mask)
    cy: float           # centre of the cell inside the patch (pixels)
    cx: float
    radius: float       # pixels, for placement (half the cell's extent without a tail)


# -- helpers ---------------------------------------------------------------------------------------

def gaussian_blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur over the first two axes, reflect-padded."""
    if sigma <= 0.05:
        return a
    r = max(1, int(3 * sigma + 0.5))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2).astype(np.float32)
    k /= k.sum()
    out = a.astype(np.float32, copy=False)
    for axis in (0, 1):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (r, r)
        p = np.pad(out, pad, mode="reflect")
        acc = np.zeros_like(out)
        n = out.shape[axis]
        for i, w in enumerate(k):
            acc += w * np.take(p, np.arange(i, i + n), axis=axis)
        out = acc
    return out


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean, unit-std noise smoothed at ``sigma`` pixels."""
    f = gaussian_blur(rng.standard_normal(shape).astype(np.float32), sigma)
    s = f.std()
    return f / s if s > 0 else f


def _grid(h: int, w: int, cy: float, cx: float):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return yy - cy, xx - cx


def outline_rho(dy, dx, radius: float, rng: np.random.Generator, roughness: float, elong: float = 1.0,
                theta: float = 0.0):
    """Normalised radius (1.0 on the outline) of a near-round cell with a wobbly outline.

    ``roughness`` scales low harmonics of the outline; ``elong`` >= 1 stretches along ``theta``.
    """
    c, s = math.cos(theta), math.sin(theta)
    u = (dx * c + dy * s) / elong
    v = -dx * s + dy * c
    ang = np.arctan2(v, u)
    r_theta = np.ones_like(ang)
    for k in (2, 3, 4, 5):
        r_theta += roughness * rng.normal(0, 1.0 / k) * np.cos(k * ang + rng.uniform(0, 2 * math.pi))
    return np.sqrt(u * u + v * v) / (radius * r_theta)


def _edge_phase(rho, radius: float, rim: float, halo: float, width_px: float):
    """Dark rim just inside the outline, bright halo just outside (signed distance in pixels)."""
    d = (rho - 1.0) * radius
    return (-rim * np.exp(-0.5 * ((d + 0.8 * width_px) / width_px) ** 2)
            + halo * np.exp(-0.5 * ((d - 1.2 * width_px) / (1.4 * width_px)) ** 2)).astype(np.float32)


def _soft_inside(rho, radius: float, softness_px: float = 0.7):
    d = (rho - 1.0) * radius
    return (1.0 / (1.0 + np.exp(np.clip(d / max(softness_px, 1e-3), -50, 50)))).astype(np.float32)


def _disc(dy, dx, cy, cx, ry, rx, theta=0.0):
    c, s = math.cos(theta), math.sin(theta)
    y, x = dy - cy, dx - cx
    u = (x * c + y * s) / rx
    v = (-x * s + y * c) / ry
    return np.sqrt(u * u + v * v)


def _stroke(h: int, w: int, points: np.ndarray, width: float) -> np.ndarray:
    """Distance-based thick polyline: float [h, w] coverage (1 inside, soft edge)."""
    out = np.zeros((h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for (y0, x0), (y1, x1) in zip(points[:-1], points[1:]):
        ylo, yhi = int(max(0, min(y0, y1) - width - 2)), int(min(h, max(y0, y1) + width + 3))
        xlo, xhi = int(max(0, min(x0, x1) - width - 2)), int(min(w, max(x0, x1) + width + 3))
        if ylo >= yhi or xlo >= xhi:
            continue
        py, px = yy[ylo:yhi, xlo:xhi], xx[ylo:yhi, xlo:xhi]
        vy, vx = y1 - y0, x1 - x0
        L2 = vy * vy + vx * vx + 1e-9
        t = np.clip(((py - y0) * vy + (px - x0) * vx) / L2, 0, 1)
        d = np.hypot(py - (y0 + t * vy), px - (x0 + t * vx))
        cov = np.clip(width / 2 + 0.5 - d, 0, 1)
        out[ylo:yhi, xlo:xhi] = np.maximum(out[ylo:yhi, xlo:xhi], cov)
    return out


def _patch(radius: float, extra: float = 0.0):
    half = int(math.ceil(radius * 1.45 + extra + 4))
    return 2 * half + 1, float(half)


# -- the six classes ---------------------------------------------------------------------------------

def round_spermatid(rng, um):
    """hRS: 5–8 µm, one round central nucleus 4–6.5 µm with fine even chromatin, thin cytoplasm rim,
    often a small bright acrosomal granule beside the nucleus; no tail."""
    d_um = float(np.clip(rng.normal(7.0, 0.65), 5.2, 8.5))
    R = d_um / um / 2
    n, c = _patch(R)
    dy, dx = _grid(n, n, c, c)
    rho = outline_rho(dy, dx, R, rng, 0.035)
    inside = _soft_inside(rho, R)
    nuc_um = float(np.clip(d_um * rng.uniform(0.66, 0.8), 4.0, 6.5))
    nr = nuc_um / um / 2
    off, a = rng.uniform(0, 0.12) * R, rng.uniform(0, 2 * math.pi)
    ny, nx = off * math.sin(a), off * math.cos(a)
    nrho = _disc(dy, dx, ny, nx, nr, nr * rng.uniform(0.93, 1.0), rng.uniform(0, math.pi))
    nuc = _soft_inside(nrho, nr, 0.6)
    chrom = smooth_field(rng, (n, n), 0.6 / um * 0.5)  # fine, even
    od = inside * rng.uniform(0.06, 0.1) + nuc * (rng.uniform(0.2, 0.28) + 0.025 * chrom)
    od += 0.06 * np.exp(-0.5 * ((nrho - 1.0) * nr / 0.9) ** 2) * inside  # nuclear envelope
    phase = _edge_phase(rho, R, 0.10, 0.12, max(1.0, 0.35 / um))
    if rng.random() < 0.6:  # acrosomal granule (bright, refractile) at the nucleus edge
        ga = a + math.pi + rng.uniform(-0.6, 0.6)
        gr = rng.uniform(0.4, 0.65) / um
        gy, gx = ny + (nr - 0.3 * gr) * math.sin(ga), nx + (nr - 0.3 * gr) * math.cos(ga)
        g = _soft_inside(_disc(dy, dx, gy, gx, gr, gr), gr, 0.5)
        od -= 0.22 * g
        phase += 0.05 * g
    return CellPatch(od[..., None] * _STAIN, phase, rho <= 1.0, c, c, R)


def spermatocyte(rng, um):
    """Primary spermatocyte 11–17 µm (secondary 9–11, rare); large nucleus, coarse threadlike chromatin."""
    d_um = rng.uniform(9.0, 11.0) if rng.random() < 0.12 else rng.uniform(11.0, 17.0)
    R = d_um / um / 2
    n, c = _patch(R)
    dy, dx = _grid(n, n, c, c)
    rho = outline_rho(dy, dx, R, rng, 0.05)
    inside = _soft_inside(rho, R)
    nr = R * rng.uniform(0.55, 0.68)
    off, a = rng.uniform(0, 0.1) * R, rng.uniform(0, 2 * math.pi)
    ny, nx = c + off * math.sin(a), c + off * math.cos(a)
    nrho = _disc(dy, dx, ny - c, nx - c, nr, nr * rng.uniform(0.9, 1.0), rng.uniform(0, math.pi))
    nuc = _soft_inside(nrho, nr, 0.8)
    threads = np.zeros((n, n), np.float32)
    width = max(1.2, 0.45 / um)
    for _ in range(int(rng.integers(6, 13))):  # pachytene-like chromosome threads
        pts = [(ny + rng.uniform(-0.6, 0.6) * nr, nx + rng.uniform(-0.6, 0.6) * nr)]
        ang = rng.uniform(0, 2 * math.pi)
        for _ in range(int(rng.integers(4, 9))):
            ang += rng.normal(0, 0.6)
            step = rng.uniform(0.15, 0.3) * nr
            pts.append((pts[-1][0] + step * math.sin(ang), pts[-1][1] + step * math.cos(ang)))
        threads = np.maximum(threads, _stroke(n, n, np.array(pts), width))
    threads = gaussian_blur(threads, 0.6)
    cyto_tex = smooth_field(rng, (n, n), 1.5)
    od = inside * (rng.uniform(0.05, 0.09) + 0.012 * cyto_tex) + nuc * (0.13 + 0.28 * threads)
    phase = _edge_phase(rho, R, 0.09, 0.12, max(1.0, 0.4 / um))
    return CellPatch(od[..., None] * _STAIN, phase, rho <= 1.0, c, c, R)


def _tail_points(rng, start_y, start_x, angle, length_px, step=2.0):
    pts = [(start_y, start_x)]
    amp, freq, curl = rng.uniform(0.0, 0.25), rng.uniform(0.02, 0.06), rng.normal(0, 0.01)
    for i in range(int(length_px / step)):
        a = angle + curl * i + amp * math.sin(freq * i * step)
        pts.append((pts[-1][0] + step * math.sin(a), pts[-1][1] + step * math.cos(a)))
    return np.array(pts, np.float32)


def elongated_spermatid(rng, um):
    """Pear-shaped cell 8–12 µm long with a condensing, elongating dark nucleus at the narrow end;
    a short tail may start from it."""
    L_um = rng.uniform(8.0, 12.0)
    W_um = L_um * rng.uniform(0.45, 0.6)
    L, W = L_um / um, W_um / um
    theta = rng.uniform(0, 2 * math.pi)
    has_tail = rng.random() < 0.5
    tail_len = rng.uniform(5.0, 15.0) / um if has_tail else 0.0
    n, c = _patch(L / 2, tail_len)
    dy, dx = _grid(n, n, c, c)
    ct, st = math.cos(theta), math.sin(theta)
    u = (dx * ct + dy * st) / (L / 2)  # -1 (broad end) .. 1 (narrow end, nucleus)
    v = (-dx * st + dy * ct) / (W / 2)
    taper = 1.0 - 0.45 * np.clip(u, -1, 1)  # narrower toward the nucleus end
    rho = np.sqrt(u * u + (v / np.maximum(taper, 0.3)) ** 2)
    R = L / 2
    inside = _soft_inside(rho, R * 0.6)
    nl, nw = rng.uniform(4.0, 5.5) / um / 2, rng.uniform(1.8, 2.6) / um / 2
    nrho = _disc(dy, dx, 0.45 * R * st, 0.45 * R * ct, nw, nl, theta)
    nuc = _soft_inside(nrho, nw, 0.6)
    od = inside * rng.uniform(0.06, 0.1) + nuc * rng.uniform(0.45, 0.6)
    phase = _edge_phase(rho, R * 0.6, 0.1, 0.12, max(1.0, 0.35 / um))
    mask = rho <= 1.0
    if has_tail:
        start = (c + (0.45 * R + nl) * st, c + (0.45 * R + nl) * ct)
        pts = _tail_points(rng, start[0], start[1], theta, tail_len)
        tail = _stroke(n, n, pts, max(1.5, 0.6 / um))
        od = np.maximum(od, 0.22 * tail)
        mask |= tail > 0.5
    return CellPatch(od[..., None] * _STAIN, phase, mask, c, c, R * 0.8)


def spermatozoon(rng, um):
    """Dense oval head 4–5 x 2.5–3.5 µm, a midpiece and a tail of 45–55 µm (in the mask)."""
    hl, hw = rng.uniform(4.0, 5.0) / um / 2, rng.uniform(2.5, 3.5) / um / 2
    tail_len = rng.uniform(45.0, 55.0) / um
    theta = rng.uniform(0, 2 * math.pi)
    # the head sits off-centre so the patch covers the tail, which leaves the head backwards
    n = int(2 * (tail_len * 0.75 + hl) + 8) | 1
    cy = n / 2 - 0.5 * tail_len * math.sin(theta + math.pi) * 0.8
    cx = n / 2 - 0.5 * tail_len * math.cos(theta + math.pi) * 0.8
    dy, dx = _grid(n, n, cy, cx)
    rho = _disc(dy, dx, 0, 0, hw, hl, theta)
    head = _soft_inside(rho, hw, 0.5)
    apex = _soft_inside(_disc(dy, dx, 0.35 * hl * math.sin(theta), 0.35 * hl * math.cos(theta), hw * 0.8, hl * 0.55, theta), hw, 0.5)
    od = head * rng.uniform(0.5, 0.7) - 0.15 * apex * head
    phase = _edge_phase(rho, hw, 0.12, 0.16, max(1.0, 0.3 / um))
    start = (cy - hl * math.sin(theta), cx - hl * math.cos(theta))
    pts = _tail_points(rng, start[0], start[1], theta + math.pi, tail_len)
    mid_n = max(2, int(4.5 / um / 2.0))
    mid = _stroke(n, n, pts[: mid_n + 1], max(2.0, 1.0 / um))
    tail = _stroke(n, n, pts[mid_n:], max(1.4, 0.5 / um))
    od = np.maximum(od, 0.3 * mid)
    od = np.maximum(od, 0.18 * tail)
    mask = (rho <= 1.0) | (mid > 0.5) | (tail > 0.5)
    return CellPatch(od[..., None] * _NEUTRAL, phase, mask, cy, cx, hl)


def erythrocyte(rng, um):
    """Biconcave disc 6.5–8 µm: same size as an hRS but a pale centre and no nucleus; smooth,
    refractile, faintly red. Some are crenated (echinocytes)."""
    d_um = rng.uniform(6.5, 8.0)
    R = d_um / um / 2
    n, c = _patch(R)
    dy, dx = _grid(n, n, c, c)
    rho = outline_rho(dy, dx, R, rng, 0.015)
    if rng.random() < 0.1:  # crenated outline
        ang = np.arctan2(dy, dx)
        rho = rho / (1.0 + 0.05 * np.cos(int(rng.integers(10, 16)) * ang + rng.uniform(0, 6.3)))
    inside = _soft_inside(rho, R, 0.5)
    pale = rng.uniform(0.6, 0.85)  # how pale the central pallor is
    thick = 1.0 - pale * np.exp(-0.5 * (np.clip(rho, 0, 2) / rng.uniform(0.3, 0.4)) ** 2)
    od = inside * thick * rng.uniform(0.16, 0.24)
    phase = _edge_phase(rho, R, 0.16, 0.22, max(1.0, 0.3 / um))
    phase += 0.04 * inside * (1.0 - thick) / pale  # the pale centre is refractile, a little bright
    return CellPatch(od[..., None] * _HAEM, phase, rho <= 1.0, c, c, R)


def leukocyte(rng, um):
    """Granulocyte 8–12 µm with a lobed or kidney nucleus and granular cytoplasm, or a lymphocyte
    7–9 µm whose large dense round nucleus fills the cell."""
    lympho = rng.random() < 0.3
    d_um = rng.uniform(7.0, 9.0) if lympho else rng.uniform(8.0, 12.0)
    R = d_um / um / 2
    n, c = _patch(R)
    dy, dx = _grid(n, n, c, c)
    rho = outline_rho(dy, dx, R, rng, 0.05)
    inside = _soft_inside(rho, R)
    if lympho:
        nr = R * rng.uniform(0.78, 0.88)
        off, a = rng.uniform(0.03, 0.1) * R, rng.uniform(0, 2 * math.pi)
        nuc = _soft_inside(_disc(dy, dx, off * math.sin(a), off * math.cos(a), nr, nr * rng.uniform(0.9, 1), 0), nr, 0.6)
        clumps = smooth_field(rng, (n, n), 1.2)
        od = inside * 0.08 + nuc * (0.42 + 0.06 * clumps)
    else:
        nuc = np.zeros((n, n), np.float32)
        lobes = int(rng.integers(2, 5))
        a0 = rng.uniform(0, 2 * math.pi)
        span = rng.uniform(1.8, 3.2)
        lr = R * rng.uniform(0.26, 0.33)
        for i in range(lobes):
            a = a0 + span * (i / max(1, lobes - 1) - 0.5)
            ly, lx = 0.42 * R * math.sin(a), 0.42 * R * math.cos(a)
            nuc = np.maximum(nuc, _soft_inside(_disc(dy, dx, ly, lx, lr, lr * rng.uniform(0.8, 1.1), a), lr, 0.6))
        granules = np.clip(smooth_field(rng, (n, n), 0.5), 0, None)
        od = inside * (0.08 + 0.05 * granules) + nuc * 0.34
    phase = _edge_phase(rho, R, 0.09, 0.12, max(1.0, 0.35 / um))
    return CellPatch(od[..., None] * _STAIN, phase, rho <= 1.0, c, c, R)


RENDERERS = {
    "round_spermatid": round_spermatid,
    "spermatocyte": spermatocyte,
    "elongated_spermatid": elongated_spermatid,
    "spermatozoon": spermatozoon,
    "erythrocyte": erythrocyte,
    "leukocyte": leukocyte,
}


def render_cell(kind: str, rng: np.random.Generator, um_per_px: float) -> CellPatch:
    patch = RENDERERS[kind](rng, um_per_px)
    patch.od = patch.od.astype(np.float32)
    return patch
