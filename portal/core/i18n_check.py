"""Find human-facing text that is not marked for translation (templates, JavaScript, forms).

Used by ``tests/test_i18n.py`` and ``manage.py i18n_check``. The rules (a heuristic, stated here):

Templates (``templates/**/*.html`` and ``*.txt``): Django's template lexer splits the file; text inside
``{% translate %}``, ``{% blocktranslate %}…{% endblocktranslate %}`` and ``{% comment %}`` counts as
marked, template variables and tags are placeholders. The rest is parsed as HTML: every text node and the
attributes ``title``, ``placeholder``, ``aria-label`` and ``alt`` must contain no letters once marker
names and units (``ALLOWED_TOKENS``) are removed; text in ``<script>``/``<style>`` is ignored, and so is
a single character in ``<kbd>`` (the key to press, the same in every language; named keys such as
"Enter" are words and must be marked). Literal
strings in filter arguments (``default:"…"``) must be written ``default:_("…")`` — they are checked too.

JavaScript (``static/**/*.js``): every string literal (quotes or backticks) that reads like words —
two words of letters separated by a space, or one capitalized word — must be the argument of
``gettext(`` / ``ngettext(`` (the plural form may start the next line). Literals that are CSS selectors, URLs or identifiers do not read like
words; a line ending in the comment ``// i18n: not shown`` is skipped (say why next to it).

Forms (every ``forms.Form`` subclass defined in ``portal.*.forms`` or ``portal.*.views``): each visible field's label and help text
are lazy translation objects.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from django.template.base import Lexer, TokenType
from django.utils.functional import Promise

# Marker names, units, codes and the COCO/calibration metric names (AP, AP50, ECE) that stay as they are
# in every language.
ALLOWED_TOKENS = re.compile(
    r"spermatid-portal|SHA-256|PRM1|PNA|ROSI|µm|CSV|JSON|PDF|UTC|API|\bAP(?:50)?\b|\bECE\b|\bpx\b|\bk\b|\bn\b|\bX\b|\bY\b"
)
CHECKED_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt"}
PLACEHOLDER = "\x00"

# Files another branch edits at the same time, left out of the check until a second pass after the merge
# marks them (``manage.py i18n_check --all`` lists their strings already). Empty: the release's second
# pass is done; ``test_no_file_waits_for_a_second_pass`` keeps it so.
PENDING_SECOND_PASS: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Unmarked:
    """One human-facing string that is not marked: where, and what."""

    file: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.text!r}"


def is_human_text(text: str) -> bool:
    """True when ``text`` holds letters besides the allowed marker names and units."""
    rest = ALLOWED_TOKENS.sub("", text.replace(PLACEHOLDER, " "))
    return re.search(r"[^\W\d_]", rest) is not None


# Filters whose literal argument is shown to people (``date`` formats and the like are not).
_FILTER_LITERAL = re.compile(r"""\|\s*(?:default|default_if_none|yesno)\s*:\s*(["'])(.*?)\1""")


def _template_skeleton(source: str) -> tuple[str, list[tuple[int, str]]]:
    """The template with marked text and template syntax replaced by placeholders (line breaks kept),
    and the unmarked filter-argument literals found in variables."""
    parts: list[str] = []
    literals: list[tuple[int, str]] = []
    closing = None
    for token in Lexer(source).tokenize():
        newlines = "\n" * token.contents.count("\n")
        if closing is not None:
            if token.token_type == TokenType.BLOCK and token.contents.split()[:1] == [closing]:
                closing = None
            parts.append(PLACEHOLDER + newlines if token.token_type != TokenType.TEXT else newlines)
            continue
        if token.token_type == TokenType.TEXT:
            parts.append(token.contents)
            continue
        if token.token_type == TokenType.BLOCK:
            word = (token.contents.split() or [""])[0]
            if word in ("blocktranslate", "blocktrans", "comment"):
                closing = "end" + word
        if token.token_type == TokenType.VAR:
            for match in _FILTER_LITERAL.finditer(token.contents):
                if is_human_text(match.group(2)):
                    literals.append((token.lineno, match.group(2)))
        parts.append(PLACEHOLDER + newlines)
    return "".join(parts), literals


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[int, str]] = []
        self._raw_depth = 0
        self._kbd_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._raw_depth += 1
        if tag == "kbd":
            self._kbd_depth += 1
        for name, value in attrs:
            if name in CHECKED_ATTRIBUTES and value and is_human_text(value):
                self.found.append((self.getpos()[0], value.replace(PLACEHOLDER, "{…}")))

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._raw_depth:
            self._raw_depth -= 1
        if tag == "kbd" and self._kbd_depth:
            self._kbd_depth -= 1

    def handle_data(self, data):
        if self._kbd_depth and len(data.strip()) == 1:
            return  # a key to press: the same letter in every language
        if not self._raw_depth and is_human_text(data):
            self.found.append((self.getpos()[0], " ".join(data.replace(PLACEHOLDER, "{…}").split())))


def template_unmarked(source: str, path: str = "") -> list[Unmarked]:
    """Unmarked human text of one template's source."""
    skeleton, literals = _template_skeleton(source)
    collector = _TextCollector()
    collector.feed(skeleton)
    collector.close()
    found = collector.found + literals
    return [Unmarked(path, line, text) for line, text in sorted(found)]


_JS_LITERAL = re.compile(r"""(?P<q>["'`])(?P<body>(?:\\.|(?!(?P=q)).)*)(?P=q)""")
_WORDS = re.compile(r"[A-Za-z]{2,}[,.:;!?]*\s+[A-Za-z(]")
_CAPITALIZED = re.compile(r"[A-Z][a-z]+[.:!?…]*")
_GETTEXT_BEFORE = re.compile(r"""(?:n?gettext\(|ngettext\(\s*(["'`]).*?\1\s*,)\s*$""")
_NOT_SHOWN = "// i18n: not shown"


def js_unmarked(source: str, path: str = "") -> list[Unmarked]:
    """String literals of a script that read like words and are not passed through ``gettext``."""
    found = []
    previous = ""
    for number, line in enumerate(source.splitlines(), start=1):
        continued, previous = previous, line
        stripped = line.strip()
        if stripped.startswith(("//", "*", "/*")) or line.rstrip().endswith(_NOT_SHOWN):
            continue
        for match in _JS_LITERAL.finditer(line):
            body = match.group("body")
            if match.group("q") == "`":
                body = re.sub(r"\$\{[^}]*\}", " ", body)
            if body == "use strict" or body.startswith(("#", ".", "[", "/", "http")) or "=" in body or "<" in body:
                continue
            if not (_WORDS.search(body) or _CAPITALIZED.fullmatch(body.strip())):
                continue
            before = line[: match.start()]
            if _GETTEXT_BEFORE.search(before) or (not before.strip() and _GETTEXT_BEFORE.search(continued)):
                continue
            found.append(Unmarked(path, number, body))
    return found


def form_unmarked() -> list[Unmarked]:
    """Visible form fields of ``portal.*.forms`` whose label or help text is not a lazy translation."""
    from django import forms

    import portal

    found = []
    for info in pkgutil.iter_modules(portal.__path__):
        modules = []
        for kind in ("forms", "views"):
            try:
                modules.append(importlib.import_module(f"portal.{info.name}.{kind}"))
            except ModuleNotFoundError as exc:
                if exc.name != f"portal.{info.name}.{kind}":
                    raise  # a broken import inside an existing module must fail the check, not hide it
                continue
        for module, (name, cls) in ((m, member) for m in modules for member in inspect.getmembers(m, inspect.isclass)):
            if not issubclass(cls, forms.BaseForm) or cls.__module__ != module.__name__:
                continue
            for field_name, field in cls.base_fields.items():
                if field.widget.is_hidden:
                    continue
                where = f"{module.__name__}.{name}.{field_name}"
                if not isinstance(field.label, Promise):
                    found.append(Unmarked(module.__file__, 0, f"{where} label {field.label!r}"))
                if field.help_text and not isinstance(field.help_text, Promise):
                    found.append(Unmarked(module.__file__, 0, f"{where} help_text {field.help_text!r}"))
    return found


def project_unmarked(root: Path, *, include_pending: bool = False) -> list[Unmarked]:
    """Every unmarked string of the project's templates, scripts and forms (pending files left out
    unless ``include_pending``)."""
    found: list[Unmarked] = []
    files = sorted([*root.glob("templates/**/*.html"), *root.glob("templates/**/*.txt"),
                    *root.glob("static/**/*.js")])
    for file in files:
        relative = file.relative_to(root).as_posix()
        if relative in PENDING_SECOND_PASS and not include_pending:
            continue
        source = file.read_text(encoding="utf-8")
        check = js_unmarked if file.suffix == ".js" else template_unmarked
        found += check(source, relative)
    return found + form_unmarked()
