"""report.pdf is set in bundled fonts only: the same bytes with or without the system's fonts (issue 16, point 7).

A report with every kind of character the monthly report shows (Hangul, Latin, digits, the symbols of its
tables and notes, a code block) is rendered twice through the run's path (:func:`write_pdf_parts`, forked):
here, with the machine's own fontconfig set-up and fonts, and in a subprocess whose fontconfig sees only the
folders of the bundled font files (``FONTCONFIG_FILE`` pointing at a fonts.conf that lists nothing else). The
two PDFs must be the same bytes, and every font embedded in them must be one of the bundled files.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import pypdf
from fontTools.ttLib import TTFont

from crm_analysis.plotting import korean_font_path
from crm_analysis.report.html import report_html
from crm_analysis.report.pdf import NO_PAGE_NUMBERS_CSS, bundled_fonts, font_face_css, write_pdf_parts

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHARED = dict(month="2026-10", as_of="2026-10-31", lang="ko", clinic_name="테스트 의원")
#: The bundled fonts' folders: NanumGothic (koreanize-matplotlib) and matplotlib's DejaVu fonts.
BUNDLED_DIRS = (korean_font_path("regular").parent, Path(matplotlib.get_data_path()) / "fonts" / "ttf")
#: What the report's text is made of: Hangul, Latin, digits and the symbols its tables and notes use.
TEXT = ("내원 환자 1,234명 · 재방문율 45.6% → 52.1% (±3.2%p, ≥ 30일) 매출 ₩12,345,000 − 전월 대비 ✓ "
        "Latin ABC xyz 0123456789 – — … × ° ‰ ½ © ® ™ « » ← ↑ ↓ ▲ ▼ ● ○ ■ □ ★ ※ ≤ ≠ ≈ ∞ √ µ §")


def _sections() -> list[tuple[str, str]]:
    table = "".join(f"<tr><td>진료과 {i} · 피부과</td><td>₩{i * 1000:,}</td><td>{i - 3:+d}% → ±{i}</td></tr>"
                    for i in range(8))
    return [("00_text", f"<h1>글꼴 점검 Fonts</h1><p>{TEXT}</p><p><b>굵게 {TEXT}</b></p><p><i>기울임 {TEXT}</i></p>"),
            ("10_table", f"<h2>표 −1.5%</h2><table><tr><th>진료과</th><th>금액</th><th>변화</th></tr>{table}</table>"
                         f"<pre>코드 출력 code output: x = 1 − 2 → ✓ ≥ ₩</pre><code>inline 코드 ±</code>")]


def render(path: str | Path) -> Path:
    """The test report in two parts, numbered, as the monthly run renders it."""
    parts = [report_html([section], **SHARED, cover=i == 0, extra_css=font_face_css() + NO_PAGE_NUMBERS_CSS)
             for i, section in enumerate(_sections())]

    def numbering(pages: int) -> str:
        return report_html([(f"page-{i}", "") for i in range(pages)], **SHARED, cover=False, extra_css=font_face_css())

    return write_pdf_parts(parts, path, numbering=numbering, jobs=2)


def _font_identity(data: bytes) -> tuple[str, str]:
    names = TTFont(io.BytesIO(data), lazy=True)["name"]
    return str(names.getDebugName(1)), str(names.getDebugName(5))


def _embedded_fonts(pdf: Path) -> set[tuple[str, str, tuple[str, str]]]:
    """(base font name, font program's family and version) of every font embedded in `pdf`."""
    found = set()
    for page in pypdf.PdfReader(pdf).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descendants = font.get("/DescendantFonts")
            descriptor = (descendants[0].get_object() if descendants else font)["/FontDescriptor"].get_object()
            program = descriptor.get("/FontFile2") or descriptor.get("/FontFile3") or descriptor.get("/FontFile")
            assert program is not None, f"{font['/BaseFont']} is not embedded"
            found.add((str(font["/BaseFont"]), _font_identity(program.get_object().get_data())))
    return found


def test_every_character_of_the_report_has_a_bundled_glyph():
    cmaps = [TTFont(path, lazy=True).getBestCmap() for path in set(bundled_fonts().values())]
    assert all(path.is_file() and path.parent in BUNDLED_DIRS for path in bundled_fonts().values())
    missing = [c for c in sorted(set(TEXT)) if not c.isspace() and not any(ord(c) in cmap for cmap in cmaps)]
    assert not missing


def test_the_pdf_is_the_same_without_the_systems_fonts_and_embeds_only_bundled_ones(tmp_path):
    here = render(tmp_path / "here.pdf")
    conf = tmp_path / "fonts.conf"
    conf.write_text('<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">\n<fontconfig>\n'
                    + "".join(f"  <dir>{folder}</dir>\n" for folder in BUNDLED_DIRS)
                    + f"  <cachedir>{tmp_path / 'fc-cache'}</cachedir>\n</fontconfig>\n", encoding="utf-8")
    alone = tmp_path / "bundled_only.pdf"
    done = subprocess.run([sys.executable, "-c", "import sys; from tests.report.test_pdf_fonts import render; "
                                                 "render(sys.argv[1])", str(alone)],
                          cwd=PROJECT_ROOT, env={**os.environ, "FONTCONFIG_FILE": str(conf)}, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert "Fontconfig error" not in done.stderr, done.stderr

    embedded = _embedded_fonts(here)
    print("embedded with the system's fonts:", sorted(embedded))
    print("embedded with the bundled fonts only:", sorted(_embedded_fonts(alone)))
    bundled = {_font_identity(p.read_bytes()) for folder in BUNDLED_DIRS for p in folder.glob("*.ttf")}
    assert {identity for _, identity in embedded} <= bundled, "a system font is embedded"
    assert {"NanumGothic", "DejaVu Sans Mono"} <= {family for _, (family, _) in embedded}
    assert here.read_bytes() == alone.read_bytes(), "the PDF depends on the system's fonts"
