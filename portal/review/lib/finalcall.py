"""The final call on one detection (no Django here).

Rule: the center admin's adjudication where given; otherwise the decision of the reviewers when all who
decided agree (same verdict and same class); otherwise none (open). ``uncertain`` is never final.
"""
from __future__ import annotations

from dataclasses import dataclass

FINAL_CALL_RULE_ID = "adjudication-else-unanimous"
# English, as exports state it; pages show review.views.FINAL_CALL_RULE_TEXT, its translatable twin.
FINAL_CALL_RULE = (
    "Final call = the center admin's adjudication where given, otherwise the unanimous decision of all "
    "reviewers who decided (same verdict and class, at least one reviewer); uncertain or disputed "
    "instances are left out."
)


@dataclass(frozen=True)
class Call:
    verdict: str  # accept | reject | uncertain
    class_name: str  # effective class
    decided_by: str  # "adjudication" | "unanimous:<n>"


def final_call(*, detection_class: str, decisions: list[tuple[str, str]], adjudication: tuple[str, str] | None):
    """``decisions``: (verdict, class_name or "") per reviewer; ``adjudication``: the same or None.

    Returns a :class:`Call` or None when no final call exists.
    """
    if adjudication is not None:
        verdict, cls = adjudication
        return Call(verdict, cls or detection_class, "adjudication")
    if not decisions:
        return None
    calls = {(v, c or detection_class) for v, c in decisions}
    if len(calls) != 1:
        return None
    verdict, cls = calls.pop()
    if verdict == "uncertain":
        return None
    return Call(verdict, cls, f"unanimous:{len(decisions)}")


def agreement(decisions: list[tuple[str, str]], detection_class: str) -> str:
    """``none`` (no decision), ``single`` (one reviewer), ``agree`` or ``disagree``."""
    if not decisions:
        return "none"
    if len(decisions) == 1:
        return "single"
    calls = {(v, c or detection_class) for v, c in decisions}
    return "agree" if len(calls) == 1 else "disagree"


FINAL_MASK_RULE = (
    "Final mask = for a final accept, the adjudicator's own corrected mask where the adjudicator corrected it, "
    "otherwise the newest corrected mask of a reviewer whose decision equals the final call, otherwise the "
    "model's (or drawn) mask."
)


def final_mask_owner(*, call: Call | None, detection_class: str, decisions: list[tuple[object, str, str]],
                     adjudicator: object | None, corrected: dict) -> object | None:
    """Whose corrected mask is the final mask of a detection (``FINAL_MASK_RULE``), or None (its own mask).

    ``decisions``: (reviewer id, verdict, class_name or "") per reviewer; ``adjudicator``: the
    adjudicator's id or None; ``corrected``: reviewer id -> time of their current correction.
    """
    if call is None or call.verdict != "accept":
        return None
    if call.decided_by == "adjudication" and adjudicator in corrected:
        return adjudicator
    agreeing = [r for r, v, c in decisions
                if v == call.verdict and (c or detection_class) == call.class_name and r in corrected]
    return max(agreeing, key=lambda r: corrected[r]) if agreeing else None
