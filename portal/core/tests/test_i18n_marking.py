"""Every human-facing string is marked for translation, and the zh_Hans catalogs are complete.

The scanner's rules are in ``portal/core/i18n_check.py``; ``manage.py i18n_check`` prints the same list.
"""
from __future__ import annotations

import gettext
import re
from pathlib import Path

from django.conf import settings

from portal.core.i18n_catalogs import catalog_path, catalog_problems, read_po
from portal.core.i18n_check import PENDING_SECOND_PASS, js_unmarked, project_unmarked, template_unmarked

ROOT = Path(settings.BASE_DIR)


def test_every_template_script_and_form_string_is_marked_for_translation():
    unmarked = project_unmarked(ROOT)
    assert not unmarked, "strings not marked for translation:\n" + "\n".join(map(str, unmarked))


def test_no_file_waits_for_a_second_pass():
    # Files edited by a parallel branch may be listed while it is open; after its merge they are marked and
    # the list emptied (manage.py i18n_check --all prints what is left).
    assert not PENDING_SECOND_PASS, "files still left out of the check: " + ", ".join(sorted(PENDING_SECOND_PASS))


def test_the_scanner_finds_unmarked_template_text_and_attributes():
    found = template_unmarked(
        '{% load i18n %}<h1 title="Open file">Upload images</h1>\n<p>{{ n }} cells left</p>'
        '<a aria-label="{% translate \'Close\' %}">{% translate "Cancel" %}</a>'
        '<p>{% blocktranslate %}Marked {{ x }} text{% endblocktranslate %}</p>'
        '<code>{{ id }}</code> · 12 µm/px <script>const s = "not text";</script>'
        '{{ value|default:"not set" }}{{ value|date:"Y-m-d" }}',
        "t.html",
    )
    assert [(u.line, u.text) for u in found] == [
        (1, "Open file"), (1, "Upload images"), (2, "not set"), (2, "{…} cells left"),
    ]


def test_the_scanner_lets_single_keys_pass_but_not_named_keys():
    found = template_unmarked(
        '{% load i18n %}<p><kbd>a</kbd> <kbd>D</kbd> {% translate "accept" %}</p><p><kbd>Enter</kbd></p>', "t.html",
    )
    assert [(u.line, u.text) for u in found] == [(1, "Enter")]


def test_the_scanner_finds_script_literals_not_passed_through_gettext():
    source = "\n".join([
        'status.textContent = "Pick added.";',
        'status.textContent = gettext("Pick removed.");',
        'el.className = "flag scale-warning";  // i18n: not shown',
        'document.querySelector(".thumb[data-id=\'x\']");',
        'const n = ngettext("%(count)s image", "%(count)s images", k);',
        'const label = `Cell ${id} added`;',
        'fetch(url, {method: "POST"});',
    ])
    assert [(u.line, u.text) for u in js_unmarked(source, "t.js")] == [(1, "Pick added."), (6, "Cell   added")]


def test_the_zh_hans_catalogs_have_no_untranslated_or_fuzzy_entries():
    problems = catalog_problems(ROOT)
    assert not problems, "\n".join(problems)


def test_the_compiled_catalogs_match_the_po_files():
    # The .mo files are committed (a run needs no msgfmt): each must hold every .po translation.
    for domain in ("django", "djangojs"):
        po = catalog_path(ROOT, domain)
        with open(po.with_suffix(".mo"), "rb") as handle:
            compiled = gettext.GNUTranslations(handle)
        for entry in read_po(po):
            if entry.msgid_plural:
                assert compiled.ngettext(entry.msgid, entry.msgid_plural, 1) == entry.msgstr[0], entry.msgid
            elif entry.msgctxt:
                assert compiled.pgettext(entry.msgctxt, entry.msgid) == entry.msgstr[0], entry.msgid
            else:
                assert compiled.gettext(entry.msgid) == entry.msgstr[0], entry.msgid


def test_clinical_terms_are_translated_consistently():
    catalog = {e.msgid: e.msgstr.get(0, "") for e in read_po(catalog_path(ROOT, "django"))}
    assert catalog["Make a pick list of accepted round spermatids"].count("圆形精子细胞") == 1
    assert "PRM1" in catalog["PRM1 mRNA in situ hybridization"] and "PNA" in catalog["PRM1 and/or PNA positive"]
    for msgid, msgstr in catalog.items():
        for marker in ("PRM1", "PNA", "ROSI", "µm"):
            assert msgid.count(marker) == msgstr.count(marker), (marker, msgid, msgstr)
        if "Review" in msgid.split() or msgid.startswith("Review"):
            assert "审核" in msgstr, (msgid, msgstr)
        if msgid.startswith("Validation"):
            assert "验证" in msgstr, (msgid, msgstr)


def test_no_script_declares_the_gettext_shim_at_top_level():
    # Several of our scripts load on one page (e.g. validation/common.js with score.js); a top-level
    # `const gettext` in two of them is a redeclaration SyntaxError that stops the second script.
    top_level = re.compile(r"^(?:const|let|var|function)\s+(?:gettext|ngettext|interpolate)\b", re.MULTILINE)
    offenders = [str(path.relative_to(ROOT)) for path in sorted((ROOT / "static").rglob("*.js"))
                 if "vendor" not in path.parts and top_level.search(path.read_text(encoding="utf-8"))]
    assert not offenders, "move the shim into the script's function scope: " + ", ".join(offenders)
