"""The report assembled as the notebooks finish: the same report whether its pages were laid out early in
worker processes, at the end in a pool, or at the end without one; the KPI page first, with the cover."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import nbformat
import pypdfium2 as pdfium
import pytest

from crm_analysis.monthly.assembly import ReportAssembly

SHARED = dict(month="2026-10", as_of="2026-10-31", lang="ko", clinic_name="테스트 의원")
NAMES = ["00_data_quality", "10_segmentation", "20_churn", "90_monthly_report"]


def _notebook(name: str, rows: int) -> nbformat.NotebookNode:
    table = "\n".join(f"| 진료과 {i} | {i * 1000:,} |" for i in range(rows))
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        f"# {name} 장\n\n설명 문단입니다.\n\n| 진료과 | 금액 |\n|---|---|\n{table}")])


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory):
    """Executed notebooks in a work folder, and their source paths (run order: the KPI page last)."""
    root = tmp_path_factory.mktemp("assembly")
    (root / "src").mkdir()
    (root / "work").mkdir()
    paths = []
    for i, name in enumerate(NAMES):
        nbformat.write(_notebook(name, 10 + 40 * i), root / "work" / f"{name}.ipynb")
        paths.append(root / "src" / f"{name}.ipynb")
    return paths, root / "work"


def _text(pdf) -> list[str]:
    doc = pdfium.PdfDocument(str(pdf))
    try:
        return [doc[i].get_textpage().get_text_range() for i in range(len(doc))]
    finally:
        doc.close()


def _assemble(paths, work, name: str, *, early, pool):
    assembly = ReportAssembly(paths, work, **SHARED, pdf=True)
    assembly.use(pool)
    for path in paths[:early]:
        assembly.add(path)
    html = assembly.write_html(f"{name}.html")
    return html, assembly.write_pdf(f"{name}.pdf")


def test_pages_laid_out_early_in_workers_give_the_report_laid_out_at_the_end(notebooks):
    paths, work = notebooks
    with ProcessPoolExecutor(2, mp_context=get_context("fork")) as pool:
        early_html, early_pdf = _assemble(paths, work, "early", early=3, pool=pool)
        again_html, again_pdf = _assemble(paths, work, "again", early=3, pool=pool)
        late_html, late_pdf = _assemble(paths, work, "late", early=0, pool=pool)
    alone_html, alone_pdf = _assemble(paths, work, "alone", early=0, pool=None)  # a Dask worker's run
    # same bytes, whenever and wherever each part was laid out
    assert early_pdf.read_bytes() == again_pdf.read_bytes() == late_pdf.read_bytes() == alone_pdf.read_bytes()
    assert early_html.read_text() == late_html.read_text() == alone_html.read_text()
    pages = _text(early_pdf)
    print(f"{len(pages)} pages")
    # the KPI page (run last) comes first, after the cover; every page carries "n / N"
    def first(name):
        return next(i for i, text in enumerate(pages) if name in text)

    assert "테스트 의원" in pages[0] and first("90_monthly_report") < first("00_data_quality") < first("20_churn")
    for i, text in enumerate(pages, 1):
        assert f"{i} / {len(pages)}" in text


def test_a_pool_shut_down_leaves_the_pages_to_the_end(notebooks, tmp_path):
    paths, work = notebooks
    pool = ProcessPoolExecutor(1, mp_context=get_context("fork"))
    pool.shutdown()
    assembly = ReportAssembly(paths, work, **SHARED, pdf=True)
    assembly.use(pool, finish=None)
    assembly.add(paths[0])  # the submit fails: nothing is lost, the page is laid out at the end
    assembly.use(None)
    pdf = assembly.write_pdf("shut.pdf")
    assert len(_text(pdf)) >= len(paths)
