"""Statistics of a validation study. statsmodels does the arithmetic; this module does the bookkeeping.

Pure functions on plain data (no Django), so every number can be checked by hand in tests:

- proportions (PPV, sensitivity, specificity, NPV, accuracy): Wilson score 95% interval
  (``statsmodels.stats.proportion.proportion_confint(method="wilson")``);
- two raters: Cohen's kappa with its asymptotic standard error and the normal interval
  (``statsmodels.stats.inter_rater.cohens_kappa``);
- more raters: Fleiss' kappa (``fleiss_kappa``), interval by a seeded percentile bootstrap over cells;
- model vs embryologist PPV (picked-cells design): difference with Newcombe's hybrid score interval
  (``confint_proportions_2indep(method="newcomb")``).

Ground truth per cell comes from the stain results and the study's rule (``ground_truth``); "unsure"
morphology calls and cells without an assessable ground truth are left out of the 2x2 tables and counted.
"""
from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from statsmodels.stats.inter_rater import cohens_kappa, fleiss_kappa
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

ALPHA = 0.05
POS, NEG, NA = "pos", "neg", "na"

# How "not assessable" combines, stated in the report.
RULE_TEXT = {
    "prm1": "Stain-positive when PRM1 is positive, negative when PRM1 is negative; a cell whose PRM1 result "
    "is not assessable (or missing, or disagreeing between entries) is excluded and counted.",
    "pna": "Stain-positive when PNA is positive, negative when PNA is negative; a cell whose PNA result "
    "is not assessable (or missing, or disagreeing between entries) is excluded and counted.",
    "both": "Stain-positive when PRM1 and PNA are both positive, negative when both are assessed and at "
    "least one is negative; a cell with either stain not assessable (or missing, or disagreeing) is "
    "excluded and counted.",
    "either": "Stain-positive when PRM1 or PNA is positive (one positive suffices even if the other is not "
    "assessable); negative when both are negative; otherwise (a negative or missing result together with "
    "a not-assessable one) the cell is excluded and counted.",
}
EXCLUDE_REASONS = {
    NA: "stain not assessable",
    "missing": "no stain result entered",
    "conflict": "stain entries disagree",
}


# --- proportions --------------------------------------------------------------------------------------
def wilson(successes: int, total: int) -> dict[str, Any]:
    """Proportion with its Wilson 95% interval; estimate and bounds are None when ``total`` is 0."""
    successes, total = int(successes), int(total)
    if total < 0 or successes < 0 or successes > total:
        raise ValueError(f"need 0 <= successes <= total, got {successes} of {total}")
    if total == 0:
        return {"k": 0, "n": 0, "estimate": None, "low": None, "high": None}
    low, high = proportion_confint(successes, total, alpha=ALPHA, method="wilson")
    return {"k": successes, "n": total, "estimate": successes / total, "low": float(low), "high": float(high)}


def binary_metrics(*, tp: int, fp: int, fn: int | None = None, tn: int | None = None) -> dict[str, Any]:
    """PPV, and when ``fn``/``tn`` are known also sensitivity, specificity, NPV and accuracy (Wilson CIs)."""
    metrics = {"ppv": wilson(tp, tp + fp)}
    if fn is not None and tn is not None:
        metrics["sensitivity"] = wilson(tp, tp + fn)
        metrics["specificity"] = wilson(tn, tn + fp)
        metrics["npv"] = wilson(tn, tn + fn)
        metrics["accuracy"] = wilson(tp + tn, tp + fp + fn + tn)
    return metrics


def confusion(pairs: Iterable[tuple[bool, bool]]) -> dict[str, int]:
    """2x2 counts from (called positive, truly positive) pairs."""
    counts = Counter(pairs)
    return {
        "tp": counts[(True, True)],
        "fp": counts[(True, False)],
        "fn": counts[(False, True)],
        "tn": counts[(False, False)],
    }


def proportion_difference(k1: int, n1: int, k2: int, n2: int) -> dict[str, Any]:
    """p1 - p2 with Newcombe's hybrid score 95% interval (independent samples)."""
    if n1 == 0 or n2 == 0:
        return {"difference": None, "low": None, "high": None, "method": "newcombe"}
    low, high = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", alpha=ALPHA)
    return {"difference": k1 / n1 - k2 / n2, "low": float(low), "high": float(high), "method": "newcombe"}


# --- agreement ----------------------------------------------------------------------------------------
def cohen(table: Sequence[Sequence[int]]) -> dict[str, Any]:
    """Cohen's kappa of a square table (rater A rows, rater B columns) with asymptotic SE and 95% CI."""
    arr = np.asarray(table, dtype=float)
    n = int(arr.sum())
    out: dict[str, Any] = {"method": "cohen", "n": n, "kappa": None, "se": None, "low": None, "high": None}
    if n == 0:
        out["note"] = "no cell was scored yes/no by both validators"
        return out
    expected = (arr.sum(axis=1) @ arr.sum(axis=0)) / n**2
    if math.isclose(expected, 1.0):
        out["note"] = "kappa undefined: both validators gave one and the same call to every cell"
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = cohens_kappa(arr)  # 95% normal interval: kappa_low, kappa_upp
    out.update(kappa=float(res.kappa), se=float(res.std_kappa), low=float(res.kappa_low), high=float(res.kappa_upp))
    return out


def _fleiss(counts: np.ndarray) -> float:
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(fleiss_kappa(counts, method="fleiss"))


def fleiss(counts: Sequence[Sequence[int]], *, seed: int, draws: int) -> dict[str, Any]:
    """Fleiss' kappa of a cells x categories count table (same raters per cell), bootstrap 95% CI.

    The interval resamples cells with replacement ``draws`` times from ``numpy.random.default_rng(seed)``
    and takes the 2.5th and 97.5th percentiles; draws where kappa is undefined are counted and skipped.
    """
    arr = np.asarray(counts, dtype=float)
    out: dict[str, Any] = {
        "method": "fleiss", "n": int(arr.shape[0]) if arr.ndim == 2 else 0, "kappa": None, "low": None,
        "high": None, "seed": int(seed), "draws": int(draws), "undefined_draws": 0,
        "interval": "percentile bootstrap over cells",
    }
    if arr.ndim != 2 or arr.shape[0] == 0:
        out["note"] = "no cell was scored yes/no by every validator"
        return out
    totals = arr.sum(axis=1)
    if not np.all(totals == totals[0]) or totals[0] < 2:
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings for every cell")
    kappa = _fleiss(arr)
    if not math.isfinite(kappa):
        out["note"] = "kappa undefined: every rating fell in one category"
        return out
    out["kappa"] = kappa
    rng = np.random.default_rng(int(seed))
    n = arr.shape[0]
    values = []
    for _ in range(int(draws)):
        value = _fleiss(arr[rng.integers(0, n, size=n)])
        if math.isfinite(value):
            values.append(value)
    out["undefined_draws"] = int(draws) - len(values)
    if values:
        low, high = np.percentile(values, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)])
        out.update(low=float(low), high=float(high))
    return out


# --- ground truth -------------------------------------------------------------------------------------
def ground_truth(prm1: str, pna: str, rule: str) -> tuple[bool | None, str]:
    """(True/False, "") for a stain-positive/negative cell, or (None, reason) when it is excluded.

    ``prm1``/``pna`` are "pos", "neg", "na" (not assessable), "missing" or "conflict".
    """
    if rule == "prm1":
        needed = [prm1]
    elif rule == "pna":
        needed = [pna]
    elif rule in ("both", "either"):
        needed = [prm1, pna]
    else:
        raise ValueError(f"unknown ground-truth rule {rule!r}")
    if rule == "either" and POS in needed:
        return True, ""
    if all(v in (POS, NEG) for v in needed):
        return all(v == POS for v in needed), ""
    reason = next(v for v in ("conflict", NA, "missing") if v in needed)
    return None, EXCLUDE_REASONS[reason]


# --- the study ----------------------------------------------------------------------------------------
def _rater_metrics(pairs: list[tuple[bool, bool]], *, unsure: int, unscored: int) -> dict[str, Any]:
    table = confusion(pairs)
    return {"confusion": table, "metrics": binary_metrics(**table), "unsure": unsure, "unscored": unscored}


def _model_block(cells: list[Mapping[str, Any]], design: str) -> dict[str, Any]:
    if design == "picked_cells":
        block = {}
        for key, flag in (("model", "from_model"), ("embryologist", "from_embryologist")):
            chosen = [c for c in cells if c[flag]]
            tp = sum(1 for c in chosen if c["truth"])
            fp = len(chosen) - tp
            block[key] = {"confusion": {"tp": tp, "fp": fp}, "metrics": binary_metrics(tp=tp, fp=fp)}
        m, e = block["model"]["confusion"], block["embryologist"]["confusion"]
        block["ppv_difference"] = proportion_difference(m["tp"], m["tp"] + m["fp"], e["tp"], e["tp"] + e["fp"])
        block["both_picked"] = sum(1 for c in cells if c["from_model"] and c["from_embryologist"])
        return block
    table = confusion((bool(c["model_positive"]), bool(c["truth"])) for c in cells)
    return {"model": {"confusion": table, "metrics": binary_metrics(**table)}}


def _agreement(cells: list[Mapping[str, Any]], raters: Sequence[str], per_cell: int, *, seed: int, draws: int):
    if len(raters) < 2 or per_cell < 2:
        return {"method": None, "note": "agreement needs at least two validators per cell"}
    complete, reasons = [], Counter()
    for cell in cells:
        calls = list(cell["ratings"].values())
        if len(calls) != per_cell or any(v == "" for v in calls):
            reasons["not scored by the full number of validators per cell"] += 1
        elif any(v == "unsure" for v in calls):
            reasons["scored unsure by at least one validator"] += 1
        else:
            complete.append(cell)
    left_out = {"count": sum(reasons.values()), "reasons": dict(reasons)}
    if len(raters) == 2:
        a, b = raters
        table = [[0, 0], [0, 0]]
        for cell in complete:
            table[0 if cell["ratings"][a] == "yes" else 1][0 if cell["ratings"][b] == "yes" else 1] += 1
        result = cohen(table)
        result.update(raters=list(raters), table=table, left_out=left_out)
        return result
    counts = [[sum(v == "yes" for v in c["ratings"].values()), sum(v == "no" for v in c["ratings"].values())]
              for c in complete]
    result = fleiss(counts, seed=seed, draws=draws)
    result.update(raters=list(raters), ratings_per_cell=per_cell, left_out=left_out)
    return result


def study_statistics(
    *,
    cells: Sequence[Mapping[str, Any]],
    raters: Sequence[str],
    design: str,
    rule: str,
    validators_per_cell: int,
    bootstrap_seed: int,
    bootstrap_draws: int,
    target_class: str = "round_spermatid",
) -> dict[str, Any]:
    """Every number of the report from the cells of a locked study.

    Each cell: ``id``, ``center``, ``from_model``, ``from_embryologist``, ``from_validator``,
    ``model_positive``, ``prm1``, ``pna`` (resolved: pos/neg/na/missing/conflict) and ``ratings``
    (validator name -> "yes"/"no"/"unsure"/"" for each validator assigned to the cell); optionally
    ``model_class`` and ``model_score`` for the per-class results and the threshold sweep.
    """
    judged, excluded = [], Counter()
    for cell in cells:
        truth, reason = ground_truth(cell["prm1"], cell["pna"], rule)
        if truth is None:
            excluded[reason] += 1
        else:
            judged.append({**cell, "truth": truth})
    result: dict[str, Any] = {
        "design": design,
        "rule": rule,
        "rule_text": RULE_TEXT[rule],
        "cells_total": len(cells),
        "ground_truth": {
            "positive": sum(1 for c in judged if c["truth"]),
            "negative": sum(1 for c in judged if not c["truth"]),
            "excluded": sum(excluded.values()),
            "excluded_reasons": dict(excluded),
        },
    }
    result.update(_model_block(judged, design))

    per_rater, pooled_pairs, pooled_unsure, pooled_unscored = [], [], 0, 0
    for name in raters:
        pairs, unsure, unscored = [], 0, 0
        for cell in judged:
            call = cell["ratings"].get(name)
            if call is None:
                continue
            if call == "unsure":
                unsure += 1
            elif call == "":
                unscored += 1
            else:
                pairs.append((call == "yes", cell["truth"]))
        per_rater.append({"validator": name, **_rater_metrics(pairs, unsure=unsure, unscored=unscored)})
        pooled_pairs += pairs
        pooled_unsure += unsure
        pooled_unscored += unscored
    result["validators"] = {
        "per_validator": per_rater,
        "pooled": _rater_metrics(pooled_pairs, unsure=pooled_unsure, unscored=pooled_unscored),
    }
    result["agreement"] = _agreement(
        list(cells), raters, validators_per_cell, seed=bootstrap_seed, draws=bootstrap_draws
    )
    centers = sorted({c["center"] for c in cells})
    result["per_center"] = [
        {
            "center": code,
            "cells": sum(1 for c in cells if c["center"] == code),
            "excluded": sum(1 for c in cells if c["center"] == code) - sum(1 for c in judged if c["center"] == code),
            **_model_block([c for c in judged if c["center"] == code], design),
        }
        for code in centers
    ]
    result["per_class"] = per_class_results(cells, rule=rule)
    result["threshold_sweep"] = threshold_sweep(cells, rule=rule, target_class=target_class)
    result["target_class"] = target_class
    return result


# --- per class and per score threshold (computed at unblinding, never before) ----------------------------
NOT_FROM_MODEL = "(not from the model)"
SWEEP_THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 0.05, 0.10, … 0.95


def per_class_results(cells: Sequence[Mapping[str, Any]], *, rule: str) -> list[dict[str, Any]]:
    """Per class the model gave (cells the model did not find under ``NOT_FROM_MODEL``): how many cells,
    how many stain-positive, -negative and excluded, and the stain-positive fraction with its Wilson
    interval (for the target class this is its PPV at the candidate threshold)."""
    by_class: dict[str, list[Mapping[str, Any]]] = {}
    for cell in cells:
        by_class.setdefault(cell.get("model_class") or NOT_FROM_MODEL, []).append(cell)
    rows = []
    for name in sorted(by_class, key=lambda n: (n == NOT_FROM_MODEL, n)):
        truths = [ground_truth(c["prm1"], c["pna"], rule)[0] for c in by_class[name]]
        positive = sum(1 for t in truths if t is True)
        negative = sum(1 for t in truths if t is False)
        rows.append({"class_name": name, "cells": len(truths), "positive": positive, "negative": negative,
                     "excluded": len(truths) - positive - negative,
                     "positive_fraction": wilson(positive, positive + negative)})
    return rows


def threshold_sweep(cells: Sequence[Mapping[str, Any]], *, rule: str, target_class: str,
                    thresholds: Sequence[float] = SWEEP_THRESHOLDS) -> list[dict[str, Any]]:
    """PPV and sensitivity of "the model calls the target class at score >= t" for each threshold ``t``.

    Over the study's cells with a ground truth: a cell is called positive at ``t`` when the model gave it
    the target class with a score at or above ``t``; sensitivity is over every stain-positive cell of the
    study (cells the model did not find count as missed), so it is relative to the study's cells, not
    to every cell on the slides. Each value has its Wilson 95% interval; a PPV with nothing called is None.
    """
    judged = []
    for cell in cells:
        truth, _reason = ground_truth(cell["prm1"], cell["pna"], rule)
        if truth is not None:
            judged.append((cell.get("model_class") == target_class, cell.get("model_score"), truth))
    positives = sum(1 for _, _, truth in judged if truth)
    rows = []
    for t in thresholds:
        called = [truth for is_target, score, truth in judged if is_target and score is not None and score >= t]
        tp = sum(1 for truth in called if truth)
        rows.append({"threshold": float(t), "called": len(called), "tp": tp, "fp": len(called) - tp,
                     "fn": positives - tp, "ppv": wilson(tp, len(called)), "sensitivity": wilson(tp, positives)})
    return rows
