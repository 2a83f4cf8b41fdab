"""The validation report as PDF: the HTML report's own template, printed by WeasyPrint.

``report.html`` is rendered exactly as for the browser, then laid out for print (its ``@media print``
rules) plus ``static/validation/report_pdf.css`` (A4, a CJK-capable font stack) and a running footer
in the request's language. Only the portal's static files are fetched; any other URL is refused, so
nothing in a study's text can make the server fetch a remote or local resource.

Fonts: Chinese text needs a CJK font known to fontconfig (Debian ``fonts-noto-cjk``; ``fc-list :lang=zh``
lists it). ``cjk_font_available()`` tells whether one is installed.
"""
from __future__ import annotations

import subprocess
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.staticfiles import finders

# A base URL that never resolves: every relative URL of the page becomes absolute under it, and the
# fetcher below maps only /static/… to files.
BASE_URL = "https://portal.invalid/"
PDF_STYLESHEET = "validation/report_pdf.css"


def _css_string(text: str) -> str:
    """``text`` as a CSS string literal: every character but letters, digits and CJK escaped."""
    out = []
    for char in text:
        if char.isalnum() or char == " ":
            out.append(char)
        else:
            out.append(f"\\{ord(char):06x}")
    return '"' + "".join(out) + '"'


def _static_only_fetcher():
    from weasyprint.urls import URLFetcher

    static_prefix = "/" + settings.STATIC_URL.strip("/") + "/"

    class StaticOnlyFetcher(URLFetcher):
        """Serve the portal's static files from disk; refuse every other URL."""

        def fetch(self, url, headers=None):
            scheme, netloc, url_path, _query, _fragment = urlsplit(url)
            if f"{scheme}://{netloc}/" == BASE_URL and url_path.startswith(static_prefix):
                found = finders.find(url_path[len(static_prefix):])
                if found:
                    return super().fetch(f"file://{found}")
            raise ValueError(f"not fetched for the PDF: {url}")

    return StaticOnlyFetcher(allowed_protocols={"file"})


def report_pdf(*, html: str, footer: str) -> bytes:
    """The PDF of a rendered report page (``html``), with ``footer`` and page numbers on every page."""
    from weasyprint import CSS, HTML

    fetcher = _static_only_fetcher()
    stylesheet_path = finders.find(PDF_STYLESHEET)
    footer_css = (
        "@page { @bottom-left { content: " + _css_string(footer) + "; font-size: 8pt; }"
        " @bottom-right { content: counter(page) \" / \" counter(pages); font-size: 8pt; } }"
    )
    document = HTML(string=html, base_url=BASE_URL, url_fetcher=fetcher, media_type="print")
    return document.write_pdf(stylesheets=[CSS(filename=stylesheet_path, url_fetcher=fetcher),
                                           CSS(string=footer_css, url_fetcher=fetcher)])


def cjk_font_available() -> bool:
    """True when fontconfig knows a font for Chinese (``fc-list :lang=zh``)."""
    try:
        listed = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return listed.returncode == 0 and bool(listed.stdout.strip())
