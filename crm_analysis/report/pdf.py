"""``report.pdf``: the HTML report printed to A4 by WeasyPrint (pip only: no LaTeX, no browser).

The same HTML always gives the same PDF bytes (the font timestamps are fixed).

Korean text needs a Korean font. The NanumGothic files that ship with the
``koreanize-matplotlib`` dependency (:func:`crm_analysis.plotting.korean_font_path`)
are declared with ``@font-face`` and embedded (subset) in the PDF, so a machine
without Korean system fonts still renders Korean text, and the text can be
extracted and searched.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path
from typing import Callable, Iterator, Sequence

from crm_analysis.plotting import korean_font_path

__all__ = ["font_face_css", "write_pdf", "write_pdf_parts", "split_for_pdf", "REPRODUCIBLE_EPOCH", "PDF_JOBS",
           "NO_PAGE_NUMBERS_CSS"]

#: The time stamped into embedded fonts (2000-01-01 UTC), so a re-run gives the same PDF bytes.
REPRODUCIBLE_EPOCH = 946_684_800
#: How many processes lay out the report's parts at once (the machines this targets have two cores).
PDF_JOBS = 2
#: Appended to a part's styles by :func:`write_pdf_parts`' callers: the page numbers ("3 / 32") are
#: stamped on afterwards, when the number of pages of the whole report is known.
NO_PAGE_NUMBERS_CSS = "\n@page { @bottom-center { content: none; } }\n"


def font_face_css() -> str:
    """``@font-face`` rules for the bundled NanumGothic (regular and bold), as file URLs."""
    rules = []
    for weight, css_weight in (("regular", "normal"), ("bold", "bold")):
        url = korean_font_path(weight).resolve().as_uri()
        for family in ("NanumGothic", "Nanum Gothic"):
            rules.append(f'@font-face {{ font-family: "{family}"; src: url("{url}") format("truetype"); '
                         f"font-weight: {css_weight}; font-style: normal; }}")
            rules.append(f'@font-face {{ font-family: "{family}"; src: url("{url}") format("truetype"); '
                         f"font-weight: {css_weight}; font-style: italic; }}")
    return "\n" + "\n".join(rules) + "\n"


def write_pdf(html: str, path: str | Path, *, base_url: str | Path | None = None) -> Path:
    """Render `html` to an A4 PDF at `path`.

    Parameters
    ----------
    html : str
        A document from :func:`crm_analysis.report.html.report_html`, built
        with ``extra_css=font_face_css()`` so the Korean font is used.
    path : str or Path
        The PDF to write.
    base_url : str or Path, optional
        Where relative links are resolved (the report has none: images are embedded).

    Returns
    -------
    Path
    """
    path = Path(path)
    path.write_bytes(_pdf_bytes(html, base_url))
    return path


def _pdf_bytes(html: str, base_url: str | Path | None = None) -> bytes:
    # WeasyPrint logs every CSS property it does not support (from notebook table styles) and every heading
    # permalink whose anchor the report drops; neither changes the PDF, so keep the run quiet.
    for name in ("weasyprint", "fontTools"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="HarfBuzz-Subset", category=DeprecationWarning)
        from weasyprint import HTML

        with _fixed_font_timestamp():
            return HTML(string=html, base_url=str(base_url) if base_url else None).write_pdf()


def split_for_pdf(sections: Sequence[tuple[str, str]], parts: int = PDF_JOBS) -> list[list[tuple[str, str]]]:
    """Cut the report's sections (``(name, html body)``, in order) into at most `parts` runs of sections
    that take about as long to lay out.

    Each section starts on a new page, so a part's pages are the same as in the
    whole report. Layout time goes mostly on table rows; an image costs about
    as much as ten of them.
    """
    sections = list(sections)
    if parts <= 1 or len(sections) <= 1:
        return [sections]
    cost = [20 + body.count("<tr") + 10 * body.count("<img") for _, body in sections]
    total, done, cuts = sum(cost), 0, []
    for i, c in enumerate(cost[:-1], 1):
        done += c
        if len(cuts) < parts - 1 and done >= total * (len(cuts) + 1) / parts - c / 2:
            cuts.append(i)
    bounds = [0, *cuts, len(sections)]
    return [sections[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


def write_pdf_parts(parts: Sequence[str], path: str | Path, *, numbering: Callable[[int], str],
                    jobs: int = PDF_JOBS) -> Path:
    """Render `parts` (HTML documents whose pages follow one another) in up to `jobs` processes at once, and
    join them into one PDF at `path`, numbered across the parts.

    Parameters
    ----------
    parts : sequence of str
        Documents from :func:`crm_analysis.report.html.report_html` with ``extra_css=font_face_css() +
        NO_PAGE_NUMBERS_CSS``, the first one with the cover.
    path : str or Path
    numbering : callable
        ``numbering(pages) -> html``: a document of `pages` blank pages that shows only the page numbers
        (its pages are laid over the parts' pages, one on one).
    jobs : int
        Processes at once; the parts after the first are laid out in forked processes (not in a daemonic
        process such as a Dask worker, which may not start any: there they are laid out in turn).

    Returns
    -------
    Path

    Notes
    -----
    WeasyPrint lays out in pure Python, on one core; the report's sections each
    start on a new page, so laying out runs of them side by side gives the same
    pages in about half the time. The parts are joined with pypdf, which keeps
    each part's bookmarks; the document's metadata (title) is the first part's.
    The same parts always give the same bytes.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import current_process, get_all_start_methods, get_context

    parts = list(parts)
    path = Path(path)
    import weasyprint  # noqa: F401 - imported once, before the fork, rather than in every process

    if len(parts) > 1 and jobs > 1 and "fork" in get_all_start_methods() and not current_process().daemon:
        with ProcessPoolExecutor(max_workers=min(jobs, len(parts)) - 1, mp_context=get_context("fork")) as pool:
            later = [pool.submit(_pdf_bytes, html) for html in parts[1:]]
            rendered = [_pdf_bytes(parts[0])] + [future.result() for future in later]
    else:
        rendered = [_pdf_bytes(html) for html in parts]
    path.write_bytes(_joined(rendered, numbering))
    return path


def _joined(rendered: list[bytes], numbering: Callable[[int], str]) -> bytes:
    """The parts' pages in order, each overlaid with its page number."""
    from pypdf import PdfReader, PdfWriter

    readers = [PdfReader(io.BytesIO(data)) for data in rendered]
    writer = PdfWriter()
    for reader in readers:
        writer.append(reader)
    numbers = PdfReader(io.BytesIO(_pdf_bytes(numbering(len(writer.pages)))))
    if len(numbers.pages) != len(writer.pages):
        raise RuntimeError(f"the page numbers came out on {len(numbers.pages)} pages, not {len(writer.pages)}")
    for page, number in zip(writer.pages, numbers.pages):
        page.merge_page(number)
        page.compress_content_streams()
    writer.add_metadata(readers[0].metadata)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@contextlib.contextmanager
def _fixed_font_timestamp() -> Iterator[None]:
    """Same HTML, same PDF bytes: fontTools stamps each embedded font subset with the current time
    unless ``SOURCE_DATE_EPOCH`` is set (the reproducible-builds convention); a caller's value wins."""
    if "SOURCE_DATE_EPOCH" in os.environ:
        yield
        return
    os.environ["SOURCE_DATE_EPOCH"] = str(REPRODUCIBLE_EPOCH)
    try:
        yield
    finally:
        os.environ.pop("SOURCE_DATE_EPOCH", None)
