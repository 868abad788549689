"""report.pdf laid out in parts side by side: the same pages, numbers and bookmarks as one layout, byte-stable."""

from __future__ import annotations

import numpy as np
import pypdfium2 as pdfium
import pytest

from crm_analysis.report.html import report_html
from crm_analysis.report.pdf import NO_PAGE_NUMBERS_CSS, font_face_css, split_for_pdf, write_pdf, write_pdf_parts

SHARED = dict(month="2026-10", as_of="2026-10-31", lang="ko", clinic_name="테스트 의원")


def _section(n: int, rows: int) -> tuple[str, str]:
    table = "".join(f"<tr><td>진료과 {i}</td><td>{i * 1000:,}</td></tr>" for i in range(rows))
    return (f"{n:02d}_section", f"<h1>제{n}장 내원 분석</h1><p>환자 {n}명의 설명 문단입니다.</p>"
                                f"<h2>표 {n}</h2><table><tr><th>진료과</th><th>금액</th></tr>{table}</table>")


SECTIONS = [_section(1, 5), _section(2, 60), _section(3, 12), _section(4, 90), _section(5, 3)]


def _numbering(pages: int) -> str:
    return report_html([(f"page-{i}", "") for i in range(pages)], **SHARED, cover=False, extra_css=font_face_css())


def _parts(sections, jobs):
    return [report_html(run, **SHARED, cover=i == 0, extra_css=font_face_css() + NO_PAGE_NUMBERS_CSS)
            for i, run in enumerate(split_for_pdf(sections, jobs))]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pdf")
    whole = write_pdf(report_html(SECTIONS, **SHARED, extra_css=font_face_css()), folder / "whole.pdf")
    parts = write_pdf_parts(_parts(SECTIONS, 2), folder / "parts.pdf", numbering=_numbering)
    return whole, parts


def test_split_keeps_the_order_and_balances_the_layout_work():
    runs = split_for_pdf(SECTIONS, 2)
    assert [s for run in runs for s in run] == SECTIONS
    assert len(runs) == 2
    cost = [sum(body.count("<tr") for _, body in run) for run in runs]
    print("table rows per part:", cost)
    assert max(cost) < sum(cost) * 0.75
    assert split_for_pdf(SECTIONS, 1) == [SECTIONS] and split_for_pdf(SECTIONS[:1], 2) == [SECTIONS[:1]]
    assert len(split_for_pdf(SECTIONS, 9)) <= len(SECTIONS)


def test_parts_give_the_pages_of_one_layout_pixel_for_pixel(rendered):
    whole, parts = (pdfium.PdfDocument(p) for p in rendered)
    assert len(parts) == len(whole) > 5
    for i in range(len(whole)):
        text = parts[i].get_textpage().get_text_range()
        assert text.split() == whole[i].get_textpage().get_text_range().split()
        assert f"{i + 1} / {len(whole)}" in text, f"page {i + 1} is numbered across the parts"
        a = np.asarray(parts[i].render(scale=0.5).to_pil().convert("L"), dtype=int)
        b = np.asarray(whole[i].render(scale=0.5).to_pil().convert("L"), dtype=int)
        assert np.abs(a - b).mean() < 0.5, f"page {i + 1} looks different"


def test_parts_keep_bookmarks_and_title(rendered):
    import pypdf

    whole, parts = (pdfium.PdfDocument(p) for p in rendered)

    def toc(doc):
        return [(t.level, t.get_title(), t.get_dest().get_index()) for t in doc.get_toc()]

    assert toc(parts) == toc(whole) and len(toc(whole)) >= 10
    assert pypdf.PdfReader(rendered[1]).metadata.title == pypdf.PdfReader(rendered[0]).metadata.title


def test_the_same_parts_give_the_same_bytes(rendered, tmp_path):
    again = write_pdf_parts(_parts(SECTIONS, 2), tmp_path / "again.pdf", numbering=_numbering, jobs=1)
    assert again.read_bytes() == rendered[1].read_bytes()


def test_warm_up_lays_out_a_page_and_leaves_no_file(tmp_path):
    """warm_up loads WeasyPrint's fonts in this process (so forked ones start warm) and keeps nothing."""
    from crm_analysis.report.pdf import warm_up

    warm_up(tmp_path)
    assert list(tmp_path.iterdir()) == []
