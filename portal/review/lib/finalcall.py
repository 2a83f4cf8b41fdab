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
