"""The model card (data) and its small inline SVG charts (PR curves, reliability diagram, loss plot).

Charts are server-rendered SVG strings built from numbers only (labels escaped), so the pages need no
script and no external library and pass the Content-Security-Policy.
"""
from __future__ import annotations

from pathlib import Path

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from portal.mlmodels.models import ModelVersion
from portal.review.classes import CLASS_COLORS
from portal.training.selectors import evaluations_of


def _config_text(model_version: ModelVersion) -> str:
    """The bundle's config file as text (the registry's own store), or "" when it cannot be read."""
    from inference.bundle import BundleError, load_bundle
    from portal.jobs.inference import ModelLoadError, model_bundle_local_dir

    try:
        bundle_dir = model_bundle_local_dir(model_version)
        return Path(load_bundle(str(bundle_dir), verify=False).config_path).read_text(encoding="utf-8")
    except (BundleError, ModelLoadError, FileNotFoundError):  # a registry row without files: no config
        return ""


def model_card(model_version: ModelVersion, *, user) -> dict:
    """Everything the card shows to ``user``, JSON-serialisable (evaluations: see ``evaluations_of``)."""
    evaluations = evaluations_of(model_version, user=user)
    return {
        "model_version_id": str(model_version.pk), "name": model_version.name, "version": model_version.version,
        "center_id": str(model_version.center_id) if model_version.center_id else None,
        "weights_sha256": model_version.weights_sha256, "class_names": model_version.class_names,
        "training_summary": model_version.training_summary, "config": _config_text(model_version),
        "evaluations": [{
            "dataset_version_id": str(e.dataset_version_id), "dataset": str(e.dataset_version),
            "scope": "test split" if e.center_id is None else "held-out images of center",
            "center_id": str(e.center_id) if e.center_id else None,
            "center": e.center.code if e.center_id else None,
            "n_images": e.n_images, "metrics": e.metrics,
        } for e in evaluations],
    }


# --- SVG ------------------------------------------------------------------------------------------------
W, H, PAD = 260, 200, 32


def _xy(x: float, y: float) -> str:
    return f"{PAD + x * (W - 2 * PAD):.1f},{H - PAD - y * (H - 2 * PAD):.1f}"


def _frame(title: str, x_label: str, y_label: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
        f'aria-label="{escape(title)}" class="chart">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{PAD}" y="{PAD}" width="{W - 2 * PAD}" height="{H - 2 * PAD}" fill="none" stroke="#888"/>',
        f'<text x="{W / 2}" y="{H - 6}" text-anchor="middle" font-size="11">{escape(x_label)}</text>',
        f'<text x="10" y="{H / 2}" text-anchor="middle" font-size="11" '
        f'transform="rotate(-90 10 {H / 2})">{escape(y_label)}</text>',
        f'<text x="{PAD}" y="{H - PAD + 12}" font-size="9">0</text>',
        f'<text x="{W - PAD - 6}" y="{H - PAD + 12}" font-size="9">1</text>',
        f'<text x="{PAD - 10}" y="{PAD + 4}" font-size="9">1</text>',
    ]


def pr_curves_svg(pr_curves: dict, *, title: str, x_label: str, y_label: str) -> SafeString:
    """Precision against recall per class (IoU 0.5), one coloured line each."""
    parts = _frame(title, x_label, y_label)
    legend = []
    for name, curve in (pr_curves or {}).items():
        points = [(r, p) for r, p in zip(curve.get("recall", []), curve.get("precision", [])) if p is not None]
        if not points or max(p for _, p in points) <= 0:  # a class without ground truth or detections
            continue
        color = CLASS_COLORS.get(name, "#333")
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" '
                     f'points="{" ".join(_xy(r, p) for r, p in points)}"><title>{escape(name)}</title></polyline>')
        legend.append((name, color))
    for k, (name, color) in enumerate(legend):
        parts.append(f'<text x="{PAD + 4}" y="{H - PAD - 6 - 10 * k}" font-size="8" fill="{color}">'
                     f'{escape(name.replace("_", " "))}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))


def reliability_svg(calibration: dict, *, title: str, x_label: str, y_label: str) -> SafeString:
    """Fraction of true positives against mean score per bin, with the diagonal of a calibrated model."""
    parts = _frame(title, x_label, y_label)
    parts.append(f'<line x1="{_xy(0, 0).split(",")[0]}" y1="{_xy(0, 0).split(",")[1]}" '
                 f'x2="{_xy(1, 1).split(",")[0]}" y2="{_xy(1, 1).split(",")[1]}" stroke="#bbb" stroke-dasharray="4 3"/>')
    for b in (calibration or {}).get("bins", []):
        if not b.get("count") or b.get("mean_score") is None or b.get("fraction_true_positive") is None:
            continue
        x, y = _xy(b["mean_score"], b["fraction_true_positive"]).split(",")
        radius = min(8.0, 2.0 + b["count"] ** 0.5)
        parts.append(f'<circle cx="{x}" cy="{y}" r="{radius:.1f}" fill="#0072b2" fill-opacity="0.7">'
                     f'<title>{b["count"]}</title></circle>')
    parts.append("</svg>")
    return mark_safe("".join(parts))
