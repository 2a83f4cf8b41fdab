"""Turn a study's stored results into rows for the report page and the CSV (same numbers in both)."""
from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from typing import Any

METRIC_LABELS = {
    "ppv": "PPV (precision)",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "npv": "NPV",
    "accuracy": "Accuracy",
}


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def metric_rows(group: str, block: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, label in METRIC_LABELS.items():
        m = block.get("metrics", {}).get(key)
        if m is None:
            continue
        rows.append({
            "group": group, "metric": label, "k": m["k"], "n": m["n"],
            "estimate": m["estimate"], "low": m["low"], "high": m["high"],
            "estimate_text": pct(m["estimate"]),
            "ci_text": "–" if m["low"] is None else f"{pct(m['low'])} – {pct(m['high'])}",
        })
    return rows


def all_metric_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    if results.get("design") == "picked_cells":
        rows += metric_rows("Model picks", results["model"])
        rows += metric_rows("Embryologist picks", results["embryologist"])
    else:
        rows += metric_rows("Model", results["model"])
    for rater in results["validators"]["per_validator"]:
        rows += metric_rows(f"Validator {rater['validator']} (morphology)", rater)
    rows += metric_rows("All validators pooled (morphology)", results["validators"]["pooled"])
    for center in results["per_center"]:
        for key, label in (("model", "Model"), ("embryologist", "Embryologist")):
            if key in center:
                rows += metric_rows(f"Center {center['center']}: {label}", center[key])
    return rows


def confusion_tables(results: dict[str, Any]) -> list[dict[str, Any]]:
    tables = []
    design = results.get("design")
    blocks = [("Model picks" if design == "picked_cells" else "Model", results["model"])]
    if design == "picked_cells":
        blocks.append(("Embryologist picks", results["embryologist"]))
    blocks += [(f"Validator {r['validator']}", r) for r in results["validators"]["per_validator"]]
    for label, block in blocks:
        c = block["confusion"]
        tables.append({"label": label, "tp": c["tp"], "fp": c["fp"], "fn": c.get("fn"), "tn": c.get("tn"),
                       "unsure": block.get("unsure"), "full": "tn" in c})
    return tables


def results_csv(study, results: dict[str, Any], cell_rows: list[dict[str, Any]]) -> str:
    """CSV: study header, metrics with Wilson CIs, agreement, then one row per cell."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["study", study.name])
    w.writerow(["study_id", str(study.pk)])
    w.writerow(["design", study.design])
    w.writerow(["ground_truth_rule", study.ground_truth_rule, results.get("rule_text", "")])
    w.writerow(["prm1_method", study.prm1_method])
    w.writerow(["model_version", str(study.model_version)])
    w.writerow(["score_threshold", study.score_threshold])
    # times below are UTC ISO-8601; pages show them in the study center's zone, named here
    w.writerow(["times", "UTC ISO-8601", "center_time_zone", study.center.time_zone])
    w.writerow(["model_output_sha256", study.model_output_sha256, "verified" if results.get("model_output_verified") else "NOT VERIFIED"])
    w.writerow(["scores_sha256", study.scores_sha256, "verified" if results.get("scores_verified") else "NOT VERIFIED"])
    for s in study.signatures.select_related("user"):
        w.writerow(["signature", s.full_name, s.user.get_username(), s.signed_at.isoformat(), s.meaning, s.scores_sha256])
    gt = results["ground_truth"]
    w.writerow(["ground_truth", "positive", gt["positive"], "negative", gt["negative"], "excluded", gt["excluded"]])
    for reason, count in gt["excluded_reasons"].items():
        w.writerow(["excluded", reason, count])
    w.writerow([])
    w.writerow(["group", "metric", "k", "n", "estimate", "wilson95_low", "wilson95_high"])
    for r in all_metric_rows(results):
        w.writerow([r["group"], r["metric"], r["k"], r["n"], num(r["estimate"], 4), num(r["low"], 4), num(r["high"], 4)])
    diff = results.get("ppv_difference")
    if diff:
        w.writerow(["Model - embryologist", "PPV difference (Newcombe 95%)", "", "", num(diff["difference"], 4),
                    num(diff["low"], 4), num(diff["high"], 4)])
    a = results["agreement"]
    w.writerow([])
    w.writerow(["agreement", a.get("method") or "none", "kappa", num(a.get("kappa"), 4), "low", num(a.get("low"), 4),
                "high", num(a.get("high"), 4), "n", a.get("n", ""), "seed", a.get("seed", ""), "draws", a.get("draws", "")])
    for reason, count in (a.get("left_out") or {}).get("reasons", {}).items():
        w.writerow(["agreement_left_out", reason, count])
    w.writerow([])
    raters = sorted({name for row in cell_rows for name in row["ratings"]})
    w.writerow(["cell", "center", "from_model", "from_embryologist", "from_validator", "model_positive",
                "model_class", "model_score", "prm1", "pna", *[f"morphology_{r}" for r in raters]])
    for row in cell_rows:
        w.writerow([row["id"], row["center"], int(row["from_model"]), int(row["from_embryologist"]),
                    int(row["from_validator"]), int(row["model_positive"]), row["model_class"],
                    "" if row["model_score"] is None else f"{row['model_score']:.4f}", row["prm1"], row["pna"],
                    *[row["ratings"].get(r, "") for r in raters]])
    return out.getvalue()


# --- per class, threshold sweep, and the tidy CSV zip (unblinded studies only) ---------------------------
def report_sections(study, results: dict[str, Any], cell_rows_of) -> dict[str, Any]:
    """Per-class rows and the threshold sweep of an unblinded study, with the sweep's plot geometry.

    Studies unblinded before these were stored get them computed here, from the same cell rows
    (``cell_rows_of(study)``), with the study's rule. Refused for a study that is not unblinded: these
    numbers are model output.
    """
    from portal.validation import statistics
    from portal.validation.models import StudyStatus

    if study.status != StudyStatus.UNBLINDED:
        raise ValueError("per-class results and the threshold sweep exist only after unblinding")
    per_class, sweep = results.get("per_class"), results.get("threshold_sweep")
    target = results.get("target_class") or "round_spermatid"
    if per_class is None or sweep is None:
        cells = cell_rows_of(study)
        per_class = statistics.per_class_results(cells, rule=study.ground_truth_rule)
        sweep = statistics.threshold_sweep(cells, rule=study.ground_truth_rule, target_class=target)
    return {"per_class": per_class, "sweep": sweep, "sweep_plot": sweep_plot(sweep), "target_class": target}


PLOT_WIDTH, PLOT_HEIGHT, PLOT_MARGIN = 520, 280, 44


def sweep_plot(sweep: list[dict[str, Any]]) -> dict[str, Any]:
    """Coordinates of the sweep's SVG plot (x: threshold 0..1, y: 0..100%): polylines for PPV and
    sensitivity (points without a value are left out), axis ticks and the plot box."""
    inner_w, inner_h = PLOT_WIDTH - 2 * PLOT_MARGIN, PLOT_HEIGHT - 2 * PLOT_MARGIN

    def x(t: float) -> float:
        return round(PLOT_MARGIN + t * inner_w, 1)

    def y(v: float) -> float:
        return round(PLOT_HEIGHT - PLOT_MARGIN - v * inner_h, 1)

    def line(key: str) -> str:
        return " ".join(f"{x(r['threshold'])},{y(r[key]['estimate'])}" for r in sweep if r[key]["estimate"] is not None)

    return {
        "width": PLOT_WIDTH, "height": PLOT_HEIGHT, "left": PLOT_MARGIN, "right": PLOT_WIDTH - PLOT_MARGIN,
        "top": PLOT_MARGIN, "bottom": PLOT_HEIGHT - PLOT_MARGIN,
        "ppv": line("ppv"), "sensitivity": line("sensitivity"),
        "x_ticks": [{"x": x(t), "label": f"{t:.1f}"} for t in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)],
        "y_ticks": [{"y": y(v), "label": f"{round(v * 100)}%"} for v in (0.0, 0.25, 0.5, 0.75, 1.0)],
        "y_label_x": PLOT_MARGIN - 6, "x_label_y": PLOT_HEIGHT - PLOT_MARGIN + 18,
        "tick_end": PLOT_HEIGHT - PLOT_MARGIN + 5, "centre_x": PLOT_WIDTH / 2, "axis_title_y": PLOT_HEIGHT - 6,
        "legend": {"y": PLOT_MARGIN - 20, "ppv_x1": PLOT_WIDTH - PLOT_MARGIN - 190,
                   "ppv_x2": PLOT_WIDTH - PLOT_MARGIN - 170, "ppv_text": PLOT_WIDTH - PLOT_MARGIN - 165,
                   "sens_x1": PLOT_WIDTH - PLOT_MARGIN - 110, "sens_x2": PLOT_WIDTH - PLOT_MARGIN - 90,
                   "sens_text": PLOT_WIDTH - PLOT_MARGIN - 85},
    }


TIMESTAMP_NOTE = "All timestamps are UTC, written as ISO 8601 with a trailing Z (for example 2024-05-06T14:03:00Z)."


def _utc(value) -> str:
    """A timestamp for the CSVs: ISO 8601 in UTC with a trailing Z ("" for none); machine-readable, not display."""
    if value is None:
        return ""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _n(value) -> str:
    """A number written the same in every locale: a dot for decimals, no grouping, up to 6 decimals."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _table(header: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow(row)
    return out.getvalue()


def tidy_csv_files(study, results: dict[str, Any], cell_rows: list[dict[str, Any]], score_rows: list[dict[str, Any]],
                   sections: dict[str, Any]) -> dict[str, str]:
    """The report as tidy tables, one per file (file name -> CSV text): every row one observation, every
    column one variable, UTF-8, comma-separated, dot decimals, 0/1 booleans, UTC timestamps."""
    from portal.validation import statistics

    rule = study.ground_truth_rule
    signatures = list(study.signatures.select_related("user").order_by("signed_at"))
    meta = [
        ("study_id", str(study.pk)), ("name", study.name), ("design", study.design),
        ("ground_truth_rule", rule), ("ground_truth_rule_text", results.get("rule_text", "")),
        ("prm1_method", study.prm1_method), ("model_version", str(study.model_version)),
        ("score_threshold", _n(study.score_threshold)), ("target_class", sections["target_class"]),
        ("model_output_sha256", study.model_output_sha256),
        ("model_output_verified", _n(bool(results.get("model_output_verified")))),
        ("scores_sha256", study.scores_sha256), ("scores_verified", _n(bool(results.get("scores_verified")))),
        ("opened_at", _utc(study.opened_at)), ("locked_at", _utc(study.locked_at)),
        ("unblinded_at", _utc(study.unblinded_at)), ("timezone", "UTC"),
        ("cells_total", _n(results.get("cells_total"))),
    ]
    cells = []
    for row in cell_rows:
        truth, reason = statistics.ground_truth(row["prm1"], row["pna"], rule)
        cells.append([row["id"], row["center"], _n(row["from_model"]), _n(row["from_embryologist"]),
                      _n(row["from_validator"]), row["model_class"], _n(row["model_score"]), _n(row["model_positive"]),
                      "" if truth is None else _n(truth), reason])
    return {
        "study.csv": _table(["key", "value"], [list(m) for m in meta]),
        "signatures.csv": _table(
            ["validator", "full_name", "signed_at_utc", "meaning", "cells_scored", "scores_sha256"],
            [[s.user.get_username(), s.full_name, _utc(s.signed_at), s.meaning, _n(s.cells_scored), s.scores_sha256]
             for s in signatures]),
        "cells.csv": _table(["cell_id", "center", "from_model", "from_embryologist", "from_validator", "model_class",
                             "model_score", "model_positive", "ground_truth_positive", "excluded_reason"], cells),
        "scores.csv": _table(["cell_id", "validator", "morphology", "prm1", "pna", "scored_at_utc"],
                             [[r["cell"], r["validator"], r["morphology"], r["prm1"], r["pna"], _utc(r["scored_at"])]
                              for r in score_rows]),
        "stain_results.csv": _table(["cell_id", "prm1", "pna"], [[r["id"], r["prm1"], r["pna"]] for r in cell_rows]),
        "per_class.csv": _table(
            ["class_name", "cells", "stain_positive", "stain_negative", "excluded", "positive_fraction",
             "wilson95_low", "wilson95_high"],
            [[r["class_name"], _n(r["cells"]), _n(r["positive"]), _n(r["negative"]), _n(r["excluded"]),
              _n(r["positive_fraction"]["estimate"]), _n(r["positive_fraction"]["low"]),
              _n(r["positive_fraction"]["high"])] for r in sections["per_class"]]),
        "threshold_sweep.csv": _table(
            ["threshold", "called_positive", "tp", "fp", "fn", "ppv", "ppv_wilson95_low", "ppv_wilson95_high",
             "sensitivity", "sensitivity_wilson95_low", "sensitivity_wilson95_high"],
            [[_n(r["threshold"]), _n(r["called"]), _n(r["tp"]), _n(r["fp"]), _n(r["fn"]), _n(r["ppv"]["estimate"]),
              _n(r["ppv"]["low"]), _n(r["ppv"]["high"]), _n(r["sensitivity"]["estimate"]),
              _n(r["sensitivity"]["low"]), _n(r["sensitivity"]["high"])] for r in sections["sweep"]]),
        "metrics.csv": _table(["group", "metric", "k", "n", "estimate", "wilson95_low", "wilson95_high"],
                              [[r["group"], r["metric"], _n(r["k"]), _n(r["n"]), _n(r["estimate"]), _n(r["low"]),
                                _n(r["high"])] for r in all_metric_rows(results)]),
    }


def tidy_csv_zip(files: dict[str, str], *, study) -> bytes:
    """The tidy CSVs in a zip, with a README naming each file and the time zone of the timestamps."""
    readme = "\n".join([
        f"Validation study {study.pk}: tidy tables, one per file (UTF-8, comma-separated, dot decimals, "
        "booleans as 0/1, empty = not applicable).",
        TIMESTAMP_NOTE,
        "",
        *[f"- {name}" for name in files],
        "",
    ])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        fixed = (1980, 1, 1, 0, 0, 0)  # same bytes for the same study
        zf.writestr(zipfile.ZipInfo("README.txt", date_time=fixed), readme)
        for name, text in files.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=fixed), text.encode("utf-8"))
    return buf.getvalue()
