"""``report.html``: the management report, from the executed notebooks with the code hidden.

Each notebook becomes one section, converted by nbconvert's ``HTMLExporter``
(basic template, ``exclude_input``): markdown text, tables and charts, no
code. The parameters cells, warnings printed to standard error and code cells
without output are left out. Charts are embedded as ``data:`` images, so the
file is self-contained: it can be mailed or opened offline.

The same HTML, with a print stylesheet and the bundled Korean font, is what
:func:`crm_analysis.report.pdf.write_pdf` turns into ``report.pdf``.

Nothing in the report runs: every value from the data is HTML-escaped where it
is shown (:mod:`crm_analysis.cells`), and a Content-Security-Policy
(:data:`REPORT_CSP`) tells the browser to run no script, load nothing and
submit nothing, should anything slip through. The report needs no script:
tables are plain HTML with inline styles and charts are ``data:`` images.
"""

from __future__ import annotations

import copy
from html import escape
from pathlib import Path
from typing import Sequence

import nbformat

from crm_analysis.i18n import check_lang, label

__all__ = ["report_html", "notebook_body", "notebook_sections", "REPORT_CSS", "REPORT_CSP", "CSP_META", "HIDDEN_TAGS"]

#: Cells with one of these tags are not shown in the report.
HIDDEN_TAGS = frozenset({"parameters", "injected-parameters", "remove-cell", "report-hide"})

#: The Content-Security-Policy of every HTML page crm_analysis writes: no script, no plugin, nothing loaded
#: from anywhere but the page itself (its ``data:`` images and fonts, its inline styles), no form, no base URL.
REPORT_CSP = ("default-src 'none'; script-src 'none'; object-src 'none'; img-src data:; font-src data:; "
              "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'")

#: The meta tag carrying :data:`REPORT_CSP`, first in ``<head>`` after the character set.
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{REPORT_CSP}">'

#: Screen and print styles. Fonts: NanumGothic (bundled for the PDF), then the usual Korean system fonts.
REPORT_CSS = """
html { font-family: "NanumGothic", "Nanum Gothic", "Malgun Gothic", "Apple SD Gothic Neo", "Noto Sans KR", sans-serif;
       font-size: 10.5pt; line-height: 1.45; color: #1d2733; }
body { max-width: 60rem; margin: 0 auto; padding: 1.5rem; }
header.cover { border-bottom: 3px solid #2f5d8a; margin-bottom: 1.2rem; padding-bottom: .6rem; }
header.cover h1 { font-size: 20pt; margin: 0 0 .3rem 0; color: #2f5d8a; }
header.cover p { margin: .1rem 0; }
p.note { font-size: 8.5pt; color: #5a6572; }
section.notebook { margin-top: 1.5rem; }
h1 { font-size: 15pt; color: #2f5d8a; } h2 { font-size: 12.5pt; margin-top: 1.2rem; } h3 { font-size: 11pt; }
table { border-collapse: collapse; margin: .5rem 0 1rem 0; font-size: 8.5pt; }
th, td { border-bottom: 1px solid #d5dbe1; padding: 2px 8px; text-align: right; vertical-align: top; }
th { background: #eef2f6; font-weight: bold; text-align: center; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; height: auto; }
pre { white-space: pre-wrap; font-size: 8.5pt; background: #f7f9fb; padding: .4rem; border-radius: 3px; }
.jp-OutputPrompt, .prompt, .input_prompt, .output_prompt { display: none; }
@media print {
  body { max-width: none; padding: 0; }
  section.notebook { page-break-before: always; }
  section.notebook.first { page-break-before: auto; }
  table, img, pre { page-break-inside: avoid; }
  h1, h2, h3 { page-break-after: avoid; }
}
@page { size: A4; margin: 16mm 14mm 18mm 14mm;
        @bottom-center { content: counter(page) " / " counter(pages); font-size: 8pt; color: #5a6572; } }
"""


def _shown(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of `nb` without hidden cells, stderr output, and code cells that show nothing."""
    nb = copy.deepcopy(nb)
    cells = []
    for cell in nb.cells:
        if HIDDEN_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", [])
                            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
            if not cell.outputs:
                continue
        cells.append(cell)
    nb.cells = cells
    return nb


def notebook_body(nb: nbformat.NotebookNode | str | Path) -> str:
    """The HTML body of one executed notebook, code hidden.

    Parameters
    ----------
    nb : NotebookNode, str or Path
        An executed notebook or its path.

    Returns
    -------
    str
        HTML fragment (no ``<html>``/``<head>``), images embedded.
    """
    from nbconvert import HTMLExporter

    if not isinstance(nb, nbformat.NotebookNode):
        nb = nbformat.read(str(nb), as_version=4)
    if _EXPORTER.get("html") is None:  # loading the template is the slow part: once per process
        _EXPORTER["html"] = HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                                         exclude_output_prompt=True, anchor_link_text="")
    body, _ = _EXPORTER["html"].from_notebook_node(_shown(nb))
    return body


_EXPORTER: dict = {}


def notebook_sections(notebooks: Sequence[str | Path | nbformat.NotebookNode]) -> list[tuple[str, str]]:
    """``(name, HTML body)`` of each notebook, for :func:`report_html` (convert once, assemble twice)."""
    return [(Path(nb).stem if isinstance(nb, (str, Path)) else f"notebook-{i}", notebook_body(nb))
            for i, nb in enumerate(notebooks)]


def report_html(notebooks: Sequence[str | Path | nbformat.NotebookNode], *, month: str, as_of: str,
                lang: str = "ko", clinic_name: str | None = None, extra_css: str = "", cover: bool = True) -> str:
    """The whole report as one self-contained HTML document.

    Parameters
    ----------
    notebooks : sequence
        Executed notebooks (paths or nodes) in report order: the KPI page
        (``90_monthly_report``) first, then the analyses; or their :func:`notebook_sections`.
    month : str
        ``YYYY-MM``.
    as_of : str
        The month's last day.
    lang : {"ko", "en"}
        Language of the cover text.
    clinic_name : str, optional
        Shown on the cover.
    extra_css : str
        Appended to :data:`REPORT_CSS` (the PDF adds its ``@font-face`` rules here).
    cover : bool
        Open with the cover (title, month, the note on hidden counts); False for the later parts of a
        PDF laid out in parts (:func:`crm_analysis.report.pdf.write_pdf_parts`).

    Returns
    -------
    str
    """
    check_lang(lang)
    title = label("report_title", lang)
    facts = [f"{label('report_month', lang)}: {escape(month)}",
             f"{label('report_generated_from', lang)}: {escape(as_of)}"]
    if clinic_name:
        facts.insert(0, f"{label('report_clinic', lang)}: {escape(clinic_name)}")
    converted = [nb if isinstance(nb, tuple) else
                 (Path(nb).stem if isinstance(nb, (str, Path)) else f"notebook-{i}", notebook_body(nb))
                 for i, nb in enumerate(notebooks)]
    sections = []
    for i, (name, body) in enumerate(converted):
        sections.append(f'<section class="notebook{" first" if i == 0 else ""}" id="{escape(name)}">\n'
                        f"{body}\n</section>")
    return ("<!DOCTYPE html>\n"
            f'<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n{CSP_META}\n'
            f"<title>{escape(title)} {escape(month)}</title>\n<style>{REPORT_CSS}{extra_css}</style>\n</head>\n<body>\n"
            + (f'<header class="cover">\n<h1>{escape(title)}</h1>\n<p>{" · ".join(facts)}</p>\n'
               f'<p class="note">{escape(label("report_suppressed_note", lang))}</p>\n</header>\n' if cover else "")
            + "\n".join(sections) + "\n</body>\n</html>\n")
