"""Read the zh_Hans gettext catalogs (``locale/zh_Hans/LC_MESSAGES/{django,djangojs}.po``) without tools:
untranslated and fuzzy entries, and their sizes. A small .po reader: msgctxt/msgid/msgid_plural/msgstr[n]
and the ``#,`` flags line are all it needs."""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

DOMAINS = ("django", "djangojs")


@dataclass
class Entry:
    """One catalog entry."""

    msgid: str = ""
    msgctxt: str = ""
    msgid_plural: str = ""
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False


def read_po(path: Path) -> list[Entry]:
    """The entries of a .po file (the header entry, msgid "", left out)."""
    entries: list[Entry] = []
    current = Entry()
    key = None

    def finish():
        nonlocal current
        if current.msgid or current.msgstr:
            entries.append(current)
        current = Entry()

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            finish()
            key = None
            continue
        if line.startswith("#~"):
            current.obsolete = True
            continue
        if line.startswith("#,"):
            current.flags |= {flag.strip() for flag in line[2:].split(",")}
            continue
        if line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.startswith('"'):
            value = ast.literal_eval(line)
        else:
            key, value = word, ast.literal_eval(rest)
        if key == "msgctxt":
            current.msgctxt += value
        elif key == "msgid":
            current.msgid += value
        elif key == "msgid_plural":
            current.msgid_plural += value
        elif key and key.startswith("msgstr"):
            index = int(key[7:-1]) if key != "msgstr" else 0
            current.msgstr[index] = current.msgstr.get(index, "") + value
    finish()
    return [e for e in entries if e.msgid and not e.obsolete]


def catalog_path(root: Path, domain: str) -> Path:
    return root / "locale" / "zh_Hans" / "LC_MESSAGES" / f"{domain}.po"


def catalog_problems(root: Path) -> list[str]:
    """Missing catalogs, untranslated and fuzzy entries of the zh_Hans catalogs, one line each."""
    problems = []
    for domain in DOMAINS:
        path = catalog_path(root, domain)
        if not path.exists():
            problems.append(f"{domain}: {path.relative_to(root)} is missing")
            continue
        for entry in read_po(path):
            if "fuzzy" in entry.flags:
                problems.append(f"{domain}: fuzzy: {entry.msgid!r}")
            elif not entry.msgstr or not all(entry.msgstr.values()):
                problems.append(f"{domain}: untranslated: {entry.msgid!r}")
    return problems


def catalog_sizes(root: Path) -> dict[str, tuple[int, int]]:
    """Per domain: (msgids, translated msgids)."""
    sizes = {}
    for domain in DOMAINS:
        path = catalog_path(root, domain)
        entries = read_po(path) if path.exists() else []
        done = sum(1 for e in entries if e.msgstr and all(e.msgstr.values()) and "fuzzy" not in e.flags)
        sizes[domain] = (len(entries), done)
    return sizes
