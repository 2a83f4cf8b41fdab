"""Parsing stain results from a CSV file (cell id, PRM1, PNA); no Django here.

The first row names the columns: ``cell`` (or ``cell_id``), ``prm1`` and ``pna``, in any order and case;
other columns are ignored. Values: ``pos``/``positive``/``+``, ``neg``/``negative``/``-``,
``na``/``not assessable``/``n/a``/``unclear``; an empty cell leaves that result as it is. Errors are
collected per row (line numbers as a spreadsheet shows them, the header being line 1); the caller
decides whether any error refuses the whole file.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

MAX_ROWS = 5000
CELL_COLUMNS = ("cell", "cell_id", "cell id")
VALUE_ALIASES = {
    "pos": "pos", "positive": "pos", "+": "pos",
    "neg": "neg", "negative": "neg", "-": "neg", "\u2212": "neg",
    "na": "na", "n/a": "na", "not assessable": "na", "unclear": "na", "not_assessable": "na",
}


@dataclass(frozen=True)
class StainRow:
    """One row: the cell's public id and the results (``None``: leave as it is)."""

    line: int
    cell: str
    prm1: str | None
    pna: str | None


@dataclass
class ParsedCsv:
    rows: list[StainRow] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)  # {"line", "cell", "code", "message"}

    def error(self, line: int, cell: str, code: str, message: str) -> None:
        self.errors.append({"line": line, "cell": cell, "code": code, "message": message})


def stain_value(raw: str) -> str | None:
    """The stored value for a CSV entry (``None`` when empty); raises ``KeyError`` for an unknown one."""
    text = raw.strip().lower()
    if text == "":
        return None
    return VALUE_ALIASES[text]


def parse_stain_csv(text: str) -> ParsedCsv:
    """Rows and per-row errors (codes: ``header``, ``bad_value``, ``duplicate``, ``missing_cell``,
    ``empty``, ``too_many_rows``)."""
    parsed = ParsedCsv()
    text = text.lstrip("\ufeff")
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0][:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader, None)
    if header is None:
        parsed.error(1, "", "empty", "The file is empty.")
        return parsed
    names = [h.strip().lower() for h in header]
    cell_col = next((names.index(n) for n in CELL_COLUMNS if n in names), None)
    columns = {"prm1": names.index("prm1") if "prm1" in names else None,
               "pna": names.index("pna") if "pna" in names else None}
    if cell_col is None or (columns["prm1"] is None and columns["pna"] is None):
        parsed.error(1, "", "header", "The first row must name the columns cell, prm1 and pna.")
        return parsed
    seen: dict[str, int] = {}
    for number, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        if len(parsed.rows) + len(parsed.errors) >= MAX_ROWS:
            parsed.error(number, "", "too_many_rows", f"At most {MAX_ROWS} rows per file.")
            break
        cell = values[cell_col].strip() if cell_col < len(values) else ""
        if not cell:
            parsed.error(number, "", "missing_cell", "No cell id in this row.")
            continue
        results: dict[str, str | None] = {}
        bad = False
        for name, col in columns.items():
            raw = values[col] if col is not None and col < len(values) else ""
            try:
                results[name] = stain_value(raw)
            except KeyError:
                parsed.error(number, cell, "bad_value",
                             f"{name.upper()} value {raw.strip()[:20]!r} is not pos, neg or na.")
                bad = True
        if cell in seen:
            parsed.error(number, cell, "duplicate", f"Cell {cell} is already on line {seen[cell]}.")
            continue
        seen[cell] = number
        if not bad:
            parsed.rows.append(StainRow(line=number, cell=cell, prm1=results["prm1"], pna=results["pna"]))
    return parsed
