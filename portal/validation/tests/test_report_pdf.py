"""The validation report as PDF in Chinese: same template as the HTML report, CJK glyphs, no tofu boxes.

"No tofu" is checked three ways on the PDF itself (not the HTML):
1. every font in the PDF is embedded, one of them a CJK font (``pdffonts``);
2. the CJK font the report's stylesheet resolves to has a glyph for every Chinese character the PDF
   contains (``pdftotext`` + fontTools cmap);
3. pixels: the Chinese characters, laid out with the report's stylesheet by WeasyPrint and rasterized by
   ``pdftoppm``, are compared cell by cell with the same characters drawn by Pillow straight from the
   known-good font file; a control drawn with a Latin-only font (whose missing glyphs are boxes) must
   not match, so the comparison can tell a glyph from a box.
"""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from django.contrib.staticfiles import finders
from fontTools.ttLib import TTCollection, TTFont
from PIL import Image, ImageDraw, ImageFont
from scipy.ndimage import binary_dilation

from portal.audit.models import AuditEvent
from portal.testing.cast import login_verified
from portal.testing.screenshots import screenshot_dir
from portal.testing.validation import make_unblinded_study
from portal.validation import pdf
from portal.validation.models import Study

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")
STUDY_NAME = "圆形精子细胞验证研究"
SCREENSHOT = screenshot_dir("i18n") / "report-pdf-zh.png"  # docs/screenshots/i18n with UPDATE_SCREENSHOTS=1
CELL = 48  # px per character cell in the pixel check (CJK glyphs advance exactly 1 em)


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=120).stdout


def _tools_present() -> None:
    missing = [tool for tool in ("pdftoppm", "pdftotext", "pdffonts", "fc-match") if shutil.which(tool) is None]
    assert not missing, f"install poppler-utils/fontconfig for this test: {missing}"
    assert pdf.cjk_font_available(), "no CJK font: install fonts-noto-cjk (README, .ci/run)"


@pytest.fixture
def chinese_report_pdf(cast, client, tmp_path):
    """A report PDF of an unblinded study, downloaded in zh-hans; returns (path, study)."""
    cast.a.validator.first_name, cast.a.validator.last_name = "伟", "张"
    cast.a.validator.save()
    study = make_unblinded_study(cast, cast.a)
    Study.objects.filter(pk=study.pk).update(name=STUDY_NAME)
    login_verified(client, cast.a.admin)
    response = client.get(f"/validation/studies/{study.pk}/report.pdf", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    path = tmp_path / "report.pdf"
    path.write_bytes(response.content)
    return path, study


def _font_file_for(family: str) -> tuple[str, int]:
    file, index = _run("fc-match", "-f", "%{file}:%{index}", family).rsplit(":", 1)
    return file, int(index)


def _cmap(file: str, index: int) -> set[int]:
    font = TTCollection(file).fonts[index] if file.endswith(".ttc") else TTFont(file)
    return set(font.getBestCmap())


def _report_font_family() -> str:
    css = open(finders.find(pdf.PDF_STYLESHEET), encoding="utf-8").read()
    return re.search(r'font-family:\s*"([^"]+)"', css).group(1)


def _cells(image: Image.Image, count: int, top: int) -> list[np.ndarray]:
    """The ink of each character cell, cropped to its bounding box and scaled to 32x32 (bool)."""
    gray = np.asarray(image.convert("L"))
    out = []
    for i in range(count):
        cell = gray[top: top + CELL + CELL // 2, CELL // 2 + i * CELL: CELL // 2 + (i + 1) * CELL] < 128
        ys, xs = np.nonzero(cell)
        if not len(xs):
            out.append(np.zeros((32, 32), bool))
            continue
        box = Image.fromarray(cell[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1].astype(np.uint8) * 255)
        out.append(np.asarray(box.resize((32, 32))) > 127)
    return out


def _similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of the two inks, each grown by one pixel (two rasterizers differ by ~1 px)."""
    a, b = binary_dilation(a), binary_dilation(b)
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def _pillow_line(text: str, font: ImageFont.FreeTypeFont) -> Image.Image:
    image = Image.new("L", (CELL * (len(text) + 1), CELL * 2), 255)
    draw = ImageDraw.Draw(image)
    for i, char in enumerate(text):
        draw.text((CELL // 2 + i * CELL, CELL // 2), char, font=font, fill=0)
    return image


def _weasyprint_line(text: str, tmp_path) -> Image.Image:
    from weasyprint import CSS, HTML

    width = CELL * (len(text) + 1)
    page = CSS(string=f"@page {{ size: {width}px {CELL * 2}px; margin: 0 }} "
                      f"body {{ margin: 0; padding: {CELL // 2}px; font-size: {CELL}px; line-height: 1; "
                      f"white-space: nowrap }}")
    stylesheet = CSS(filename=finders.find(pdf.PDF_STYLESHEET))
    (tmp_path / "line.pdf").write_bytes(
        HTML(string=f'<html lang="zh-Hans"><body>{text}</body></html>').write_pdf(stylesheets=[stylesheet, page]))
    _run("pdftoppm", "-r", "96", "-png", "-singlefile", str(tmp_path / "line.pdf"), str(tmp_path / "line"))
    return Image.open(tmp_path / "line.png")


def test_the_report_pdf_is_in_chinese_and_audited(chinese_report_pdf):
    _tools_present()
    path, study = chinese_report_pdf
    text = _run("pdftotext", "-layout", str(path), "-")
    assert STUDY_NAME in text
    assert "设盲验证报告" in text  # the running footer, in the request's language
    assert "挑选细胞（模型挑选 vs 胚胎学家挑选）" in text  # the study design's translated label
    assert "张" in text and "伟" in text  # the validator's signature name
    assert AuditEvent.objects.filter(action="validation.report.pdf", object_id=str(study.pk)).count() == 1
    # page 1 as PNG (what a reader sees), kept as the docs' screenshot
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    _run("pdftoppm", "-r", "70", "-png", "-f", "1", "-l", "1", "-singlefile", str(path), str(SCREENSHOT.with_suffix("")))
    with Image.open(SCREENSHOT) as page:
        ink = np.asarray(page.convert("L")) < 128
    assert page.size[0] > 500 and ink.mean() > 0.005  # a page with text on it


def test_the_report_pdf_embeds_a_cjk_font_that_covers_every_character(chinese_report_pdf):
    _tools_present()
    path, _study = chinese_report_pdf
    fonts = _run("pdffonts", str(path)).splitlines()[2:]
    assert fonts, "the PDF lists no fonts"
    assert all(" yes " in line for line in fonts), "a font is not embedded:\n" + "\n".join(fonts)
    assert any("CJK" in line for line in fonts), "no CJK font in the PDF:\n" + "\n".join(fonts)
    used = set(CJK.findall(_run("pdftotext", str(path), "-")))
    assert len(used) > 20
    covered = _cmap(*_font_file_for(_report_font_family()))
    assert not sorted(c for c in used if ord(c) not in covered)


def test_the_report_pdf_characters_render_as_glyphs_not_boxes(chinese_report_pdf, tmp_path):
    _tools_present()
    path, _study = chinese_report_pdf
    sample = "".join(sorted({c for c in CJK.findall(_run("pdftotext", str(path), "-")) if c >= "\u3400"}))[:40]
    assert len(sample) >= 20
    file, index = _font_file_for(_report_font_family())
    known_good = _cells(_pillow_line(sample, ImageFont.truetype(file, CELL, index=index)), len(sample), CELL // 2 - 8)
    rendered = _cells(_weasyprint_line(sample, tmp_path), len(sample), CELL // 2 - 8)
    latin_only = ImageFont.truetype(_font_file_for("DejaVu Sans")[0], CELL)
    boxes = _cells(_pillow_line(sample, latin_only), len(sample), CELL // 2 - 8)

    scores = [_similarity(r, k) for r, k in zip(rendered, known_good, strict=True)]
    controls = [_similarity(b, k) for b, k in zip(boxes, known_good, strict=True)]
    bad = [(char, round(score, 2)) for char, score in zip(sample, scores, strict=True) if score < 0.6]
    assert not bad, f"characters that do not look like the known-good glyph: {bad}"
    # the measure tells boxes from glyphs: every box of the Latin-only font fails the same threshold
    assert max(controls) < 0.6 < min(scores)
