"""``report.html``: the management report, from the executed notebooks with the code hidden.

Each notebook becomes one section, converted by nbconvert's ``HTMLExporter``
(basic template, ``exclude_input``): markdown text, tables and charts, no
code. The parameters cells, warnings printed to standard error and code cells
without output are left out. Charts are embedded as ``data:`` images, so the
file is self-contained: it can be mailed or opened offline.

**Management pages and appendix.** A notebook's cells up to the first one
tagged ``appendix`` (:data:`APPENDIX_TAG`) are its management page: one
figure, one sentence, one next step. The cells from there on (data quality,
model diagnostics, detailed tables) are its appendix, which only the HTML
report shows, after the management pages, under one "Appendix" heading. The
PDF holds the management pages only.

**One language.** A markdown cell tagged ``lang-ko`` or ``lang-en`` is shown
only in a report in that language (:data:`LANG_TAG`); untagged cells in both.

**Anchors and contents.** Every ``id`` in a section is prefixed with the
section's own id (``p-20_churn-…`` for a management page, ``a-20_churn-…`` for
an appendix), so headings that recur across notebooks ("Next steps") keep
unique anchors; the HTML opens with a table of contents linking to them.

**Alt text.** A chart shown with :func:`crm_analysis.plotting.describe_figures`
carries its description in its output's metadata; it becomes the image's
``alt`` text (escaped).

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
import re
from html import escape
from pathlib import Path
from typing import Sequence

import nbformat

from crm_analysis.i18n import check_lang, label

__all__ = ["report_html", "notebook_body", "notebook_sections", "REPORT_CSS", "REPORT_CSP", "CSP_META", "HIDDEN_TAGS",
           "APPENDIX_TAG", "LANG_TAG", "PARTS"]

#: Cells with one of these tags are not shown in the report.
HIDDEN_TAGS = frozenset({"parameters", "injected-parameters", "remove-cell", "report-hide"})
#: The first cell with this tag starts the notebook's appendix (shown in the HTML report only).
APPENDIX_TAG = "appendix"
#: A markdown cell tagged ``LANG_TAG.format(lang)`` is shown only in a report in `lang`.
LANG_TAG = "lang-{}"
#: Which cells of a notebook :func:`notebook_body` converts: its management page, its appendix, or all.
PARTS = ("page", "appendix", "all")

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
nav.contents { font-size: 9pt; margin: 0 0 1rem 0; } nav.contents ol { margin: .2rem 0 .2rem 1.2rem; padding: 0; }
h1.appendix { border-top: 3px solid #2f5d8a; padding-top: .6rem; margin-top: 2.5rem; }
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


def _described_image(output: dict) -> dict:
    """A chart output with an ``alt`` in its metadata as an HTML ``<img>`` carrying that text (escaped)."""
    meta = output.get("metadata", {}).get("image/png", {})
    alt = meta.get("alt") if isinstance(meta, dict) else None
    if output.get("output_type") not in ("display_data", "execute_result") or "image/png" not in output.get(
            "data", {}) or not alt:
        return output
    data = "".join(output["data"]["image/png"]).replace("\n", "")
    out = copy.deepcopy(output)
    out["data"] = {"text/html": f'<img src="data:image/png;base64,{data}" alt="{escape(str(alt))}">'}
    out["metadata"] = {}
    return out


def _shown(nb: nbformat.NotebookNode, part: str = "all", lang: str | None = None) -> nbformat.NotebookNode:
    """A copy of `nb` with the cells of `part` (:data:`PARTS`) in `lang`, without hidden cells, stderr output
    and code cells that show nothing; described charts as images with their alt text."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, not {part!r}")
    others = {LANG_TAG.format(x) for x in ("ko", "en") if x != lang} if lang else set()
    nb = copy.deepcopy(nb)
    cells, appendix = [], False
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        appendix = appendix or APPENDIX_TAG in tags
        if (part == "page" and appendix) or (part == "appendix" and not appendix):
            continue
        if HIDDEN_TAGS & tags or others & tags:
            continue
        if cell.cell_type == "code":
            cell.outputs = [_described_image(o) for o in cell.get("outputs", [])
                            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
            if not cell.outputs:
                continue
        cells.append(cell)
    nb.cells = cells
    return nb


def notebook_body(nb: nbformat.NotebookNode | str | Path, part: str = "all", lang: str | None = None) -> str:
    """The HTML body of one executed notebook, code hidden.

    Parameters
    ----------
    nb : NotebookNode, str or Path
        An executed notebook or its path.
    part : {"all", "page", "appendix"}
        The management page (cells before the first one tagged ``appendix``), the appendix, or both.
    lang : {"ko", "en"}, optional
        Leave out the cells tagged for the other language.

    Returns
    -------
    str
        HTML fragment (no ``<html>``/``<head>``), images embedded; empty if the part has no cell.
    """
    from nbconvert import HTMLExporter

    if not isinstance(nb, nbformat.NotebookNode):
        nb = nbformat.read(str(nb), as_version=4)
    shown = _shown(nb, part, lang)
    if not shown.cells:
        return ""
    if _EXPORTER.get("html") is None:  # loading the template is the slow part: once per process
        _EXPORTER["html"] = HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                                         exclude_output_prompt=True, anchor_link_text="")
    body, _ = _EXPORTER["html"].from_notebook_node(shown)
    return body


_EXPORTER: dict = {}


def notebook_sections(notebooks: Sequence[str | Path | nbformat.NotebookNode], part: str = "all",
                      lang: str | None = None) -> list[tuple[str, str]]:
    """``(name, HTML body)`` of each notebook's `part` (see :func:`notebook_body`), for :func:`report_html`
    (convert once, assemble twice)."""
    return [(Path(nb).stem if isinstance(nb, (str, Path)) else f"notebook-{i}", notebook_body(nb, part, lang))
            for i, nb in enumerate(notebooks)]


_ID = re.compile(r'(\sid=")([^"]*)(")')
_HREF = re.compile(r'(\shref="#)([^"]*)(")')
_SELECTOR = re.compile(r"#(T_[0-9A-Za-z_]+)")
_STYLE = re.compile(r"(<style[^>]*>)(.*?)(</style>)", re.S)
_HEADING = re.compile(r'<h([12])\s+id="([^"]*)"[^>]*>(.*?)</h\1>', re.S)
_TAG = re.compile(r"<[^>]+>")


def _prefixed(body: str, prefix: str) -> str:
    """`body` with every id, in-page link and styled-table selector prefixed with `prefix` (unique anchors)."""
    body = _ID.sub(lambda m: f"{m[1]}{prefix}-{m[2]}{m[3]}", body)
    body = _HREF.sub(lambda m: f"{m[1]}{prefix}-{m[2]}{m[3]}", body)
    return _STYLE.sub(lambda m: m[1] + _SELECTOR.sub(lambda s: f"#{prefix}-{s[1]}", m[2]) + m[3], body)


def _contents(blocks: Sequence[tuple[str, str]], heading: str) -> str:
    """A table of contents of the level-1 and level-2 headings of `blocks` (``(kind, html)``)."""
    items, open_sub = [], False
    for _, html in blocks:
        for level, anchor, text in _HEADING.findall(html):
            text = _TAG.sub("", text).strip()
            if not text:
                continue
            if level == "1":
                if open_sub:
                    items.append("</ol></li>")
                items.append(f'<li><a href="#{anchor}">{text}</a><ol>')
                open_sub = True
            elif open_sub:
                items.append(f'<li><a href="#{anchor}">{text}</a></li>')
            else:
                items.append(f'<li><a href="#{anchor}">{text}</a></li>')
    if open_sub:
        items.append("</ol></li>")
    return f'<nav class="contents"><h2>{escape(heading)}</h2><ol>{"".join(items)}</ol></nav>\n' if items else ""


def report_html(notebooks: Sequence[str | Path | nbformat.NotebookNode], *, month: str, as_of: str,
                lang: str = "ko", clinic_name: str | None = None, extra_css: str = "", cover: bool = True,
                appendix: Sequence[tuple[str, str]] = (), contents: bool = False) -> str:
    """The whole report as one self-contained HTML document.

    Parameters
    ----------
    notebooks : sequence
        Executed notebooks (paths or nodes) in report order: the KPI page
        (``90_monthly_report``) first, then the analyses; or their :func:`notebook_sections`
        (their management pages, for the report). Each starts on a new page.
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
    appendix : sequence of (name, HTML body)
        The notebooks' appendices (:func:`notebook_sections` with ``part="appendix"``), shown after the
        management pages under one "Appendix" heading (the HTML report; the PDF has none).
    contents : bool
        Open with a table of contents of the sections' headings.

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
                 (Path(nb).stem if isinstance(nb, (str, Path)) else f"notebook-{i}", notebook_body(nb, "all", lang))
                 for i, nb in enumerate(notebooks)]
    blocks = [("page", _prefixed(body, f"p-{name}"), name) for name, body in converted]
    extra = [("appendix", _prefixed(body, f"a-{name}"), name) for name, body in appendix if body.strip()]
    sections = [f'<section class="notebook{" first" if i == 0 else ""}" id="p-{escape(name)}">\n{body}\n</section>'
                for i, (_, body, name) in enumerate(blocks)]
    if extra:
        heading = label("report_appendix", lang)
        sections.append(f'<section class="notebook appendix" id="appendix">\n'
                        f'<h1 class="appendix" id="appendix-title">{escape(heading)}</h1>\n'
                        f'<p class="note">{escape(label("report_appendix_note", lang))}</p>\n</section>')
        sections += [f'<section class="notebook appendix-part" id="a-{escape(name)}">\n{body}\n</section>'
                     for _, body, name in extra]
    toc = ""
    if contents:
        toc = _contents([(k, b) for k, b, _ in blocks]
                        + ([("appendix", f'<h1 id="appendix-title">{escape(label("report_appendix", lang))}</h1>')]
                           if extra else [])
                        + [(k, b) for k, b, _ in extra], label("report_contents", lang))
    return ("<!DOCTYPE html>\n"
            f'<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n{CSP_META}\n'
            f"<title>{escape(title)} {escape(month)}</title>\n<style>{REPORT_CSS}{extra_css}</style>\n</head>\n<body>\n"
            + (f'<header class="cover">\n<h1>{escape(title)}</h1>\n<p>{" · ".join(facts)}</p>\n'
               f'<p class="note">{escape(label("report_suppressed_note", lang))}</p>\n</header>\n' if cover else "")
            + toc + "\n".join(sections) + "\n</body>\n</html>\n")
