"""The report assembled as the notebooks finish: the same report whether the notebooks were converted as they
finished or at the end; the KPI page first, with the cover; the appendix in the HTML only."""

from __future__ import annotations

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


def _assemble(paths, work, name: str, *, early):
    assembly = ReportAssembly(paths, work, **SHARED, pdf=True)
    for path in paths[:early]:
        assembly.add(path)
    html = assembly.write_html(f"{name}.html")
    return html, assembly.write_pdf(f"{name}.pdf")


def test_notebooks_converted_as_they_finish_give_the_report_converted_at_the_end(notebooks):
    paths, work = notebooks
    early_html, early_pdf = _assemble(paths, work, "early", early=3)
    late_html, late_pdf = _assemble(paths, work, "late", early=0)
    assert early_pdf.read_bytes() == late_pdf.read_bytes()
    assert early_html.read_text() == late_html.read_text()
    pages = _text(early_pdf)
    print(f"{len(pages)} pages")
    # the KPI page (run last) comes first, after the cover; every page carries "n / N"
    def first(name):
        return next(i for i, text in enumerate(pages) if name in text)

    assert "테스트 의원" in pages[0] and first("90_monthly_report") < first("00_data_quality") < first("20_churn")
    for i, text in enumerate(pages, 1):
        assert f"{i} / {len(pages)}" in text


def test_the_appendix_is_in_the_html_only(notebooks, tmp_path):
    paths, work = notebooks
    appendix = nbformat.v4.new_markdown_cell("## 상세 표\n\n부록에만 있는 문단입니다.")
    appendix.metadata["tags"] = ["appendix"]
    for path in paths:
        nb = nbformat.read(str(work / path.name), as_version=4)
        nb.cells.append(appendix)
        nbformat.write(nb, tmp_path / path.name)
    assembly = ReportAssembly(paths, tmp_path, **SHARED, pdf=True)
    html = assembly.write_html().read_text(encoding="utf-8")
    pdf_text = "\n".join(_text(assembly.write_pdf()))
    assert html.count("부록에만 있는 문단입니다.") == len(paths) and "부록에만 있는 문단입니다." not in pdf_text
    assert html.index("90_monthly_report") < html.index("부록에만 있는 문단입니다.")
