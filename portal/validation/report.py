"""Turn a study's stored results into rows for the report page and the CSV (same numbers in both)."""
from __future__ import annotations

import csv
import io
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
