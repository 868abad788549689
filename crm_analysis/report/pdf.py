"""``report.pdf``: the HTML report printed to A4 by WeasyPrint (pip only: no LaTeX, no browser).

The same HTML always gives the same PDF bytes, on any machine with the same
packages: the font timestamps are fixed, and the PDF is set in bundled fonts
only, whatever fonts the system has.

- **Bundled fonts** (:func:`bundled_fonts`): NanumGothic, which ships with the
  ``koreanize-matplotlib`` dependency (:func:`crm_analysis.plotting.korean_font_path`;
  SIL Open Font License), for Hangul, Latin and digits; and matplotlib's DejaVu
  Sans and DejaVu Sans Mono (``matplotlib/mpl-data/fonts/ttf``; the DejaVu
  licence, free to use, embed and redistribute) for the symbols NanumGothic
  lacks (``−``, ``✓``, ...) and for code. :func:`font_face_css` declares them with
  ``@font-face``; they are embedded (subset) in the PDF, so its text can be
  extracted and searched.
- **No system font**: each rendering reads a fontconfig configuration
  (:data:`FONTCONFIG_CONF`) that lists no font folder, so fontconfig, and
  WeasyPrint through it, sees only the bundled fonts: installing a font
  package (``fonts-noto-cjk``) or lacking one changes nothing, and a glyph no
  bundled font has would show as a box rather than come from the system.
- **Temporary files**: WeasyPrint copies each ``@font-face`` font to a
  temporary folder; it is made in the `temp_dir` given (the monthly run gives
  its private folder, which the next run removes should this one be killed)
  and removed when the PDF is written.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Callable, Iterator, Sequence

from crm_analysis.plotting import korean_font_path

__all__ = ["font_face_css", "bundled_fonts", "write_pdf", "write_pdf_parts", "split_for_pdf", "pdf_bytes",
           "join_pdf_parts", "warm_up", "REPRODUCIBLE_EPOCH",
           "PDF_JOBS", "NO_PAGE_NUMBERS_CSS", "FONTCONFIG_CONF"]

#: The time stamped into embedded fonts (2000-01-01 UTC), so a re-run gives the same PDF bytes.
REPRODUCIBLE_EPOCH = 946_684_800
#: How many processes lay out the report's parts at once (the machines this targets have two cores).
PDF_JOBS = 2
#: Appended to a part's styles by :func:`write_pdf_parts`' callers: the page numbers ("3 / 32") are
#: stamped on afterwards, when the number of pages of the whole report is known.
NO_PAGE_NUMBERS_CSS = "\n@page { @bottom-center { content: none; } }\n"


#: The fontconfig configuration every rendering reads: no font folder (so no system font), only the
#: ``@font-face`` fonts of :func:`font_face_css`; the generic families point at them, and the glyph settings
#: (hinting, bitmaps) are set here rather than taken from the system's configuration.
FONTCONFIG_CONF = """<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig>
  <alias binding="same"><family>sans-serif</family>
    <prefer><family>NanumGothic</family><family>DejaVu Sans</family></prefer></alias>
  <alias binding="same"><family>serif</family>
    <prefer><family>NanumGothic</family><family>DejaVu Sans</family></prefer></alias>
  <alias binding="same"><family>monospace</family>
    <prefer><family>DejaVu Sans Mono</family><family>NanumGothic</family><family>DejaVu Sans</family></prefer></alias>
  <match target="font">
    <edit name="hinting" mode="assign"><bool>false</bool></edit>
    <edit name="hintstyle" mode="assign"><const>hintnone</const></edit>
    <edit name="autohint" mode="assign"><bool>false</bool></edit>
    <edit name="embeddedbitmap" mode="assign"><bool>false</bool></edit>
  </match>
</fontconfig>
"""
#: matplotlib's DejaVu files: (family, weight, style) -> file name in ``mpl-data/fonts/ttf``.
_DEJAVU = {("DejaVu Sans", "normal", "normal"): "DejaVuSans.ttf",
           ("DejaVu Sans", "bold", "normal"): "DejaVuSans-Bold.ttf",
           ("DejaVu Sans", "normal", "italic"): "DejaVuSans-Oblique.ttf",
           ("DejaVu Sans", "bold", "italic"): "DejaVuSans-BoldOblique.ttf",
           ("DejaVu Sans Mono", "normal", "normal"): "DejaVuSansMono.ttf",
           ("DejaVu Sans Mono", "bold", "normal"): "DejaVuSansMono-Bold.ttf",
           ("DejaVu Sans Mono", "normal", "italic"): "DejaVuSansMono-Oblique.ttf",
           ("DejaVu Sans Mono", "bold", "italic"): "DejaVuSansMono-BoldOblique.ttf"}


def bundled_fonts() -> dict[tuple[str, str, str], Path]:
    """The font files the PDF is set in: (CSS family, weight, style) -> file.

    NanumGothic regular and bold (its italic is the upright font, as before), then matplotlib's DejaVu Sans
    and DejaVu Sans Mono in four styles each. Every glyph the report uses is in one of them.

    Raises
    ------
    CrmAnalysisError
        If the koreanize-matplotlib font files are missing.
    """
    import matplotlib

    fonts = {("NanumGothic", weight, style): korean_font_path(name)
             for weight, name in (("normal", "regular"), ("bold", "bold")) for style in ("normal", "italic")}
    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    fonts.update({key: ttf / name for key, name in _DEJAVU.items()})
    return fonts


def font_face_css() -> str:
    """``@font-face`` rules for the :func:`bundled_fonts` (as file URLs), and the font families of the
    report's text (NanumGothic, then DejaVu Sans for the symbols it lacks) and code (DejaVu Sans Mono)."""
    rules = [f'@font-face {{ font-family: "{family}"; src: url("{path.resolve().as_uri()}") format("truetype"); '
             f"font-weight: {weight}; font-style: {style}; }}"
             for (family, weight, style), path in bundled_fonts().items()]
    rules.append('html { font-family: "NanumGothic", "DejaVu Sans"; }')
    rules.append('pre, code, kbd, samp, tt { font-family: "DejaVu Sans Mono", "NanumGothic", "DejaVu Sans"; }')
    return "\n" + "\n".join(rules) + "\n"


def write_pdf(html: str, path: str | Path, *, base_url: str | Path | None = None,
              temp_dir: str | Path | None = None) -> Path:
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
    temp_dir : str or Path, optional
        Where WeasyPrint's temporary font files go (default: the system's temporary folder); removed when
        the PDF is written.

    Returns
    -------
    Path
    """
    path = Path(path)
    path.write_bytes(pdf_bytes(html, base_url, temp_dir))
    return path


#: (process id, lock): one rendering at a time sets FONTCONFIG_FILE; a forked process makes its own lock.
_FONTCONFIG_LOCK: tuple[int, threading.Lock] = (0, threading.Lock())


def _fontconfig_lock() -> threading.Lock:
    global _FONTCONFIG_LOCK
    if _FONTCONFIG_LOCK[0] != os.getpid():  # a lock copied by fork may be held by a thread that is not here
        _FONTCONFIG_LOCK = (os.getpid(), threading.Lock())
    return _FONTCONFIG_LOCK[1]


def _bundled_font_configuration(folder: Path):
    """A WeasyPrint ``FontConfiguration`` that sees no system font (:data:`FONTCONFIG_CONF`) and keeps its
    copies of the ``@font-face`` fonts in `folder`."""
    from weasyprint.text.fonts import FontConfiguration

    conf = folder / "fonts.conf"
    conf.write_text(FONTCONFIG_CONF, encoding="utf-8")
    with _fontconfig_lock():
        # fontconfig reads FONTCONFIG_FILE when the configuration is made (FcInitLoadConfigAndFonts), and only
        # then: it is set for that moment, in this process only.
        before = os.environ.get("FONTCONFIG_FILE")
        os.environ["FONTCONFIG_FILE"] = str(conf)
        try:
            config = FontConfiguration()
        finally:
            if before is None:
                os.environ.pop("FONTCONFIG_FILE", None)
            else:
                os.environ["FONTCONFIG_FILE"] = before
    # WeasyPrint writes each @font-face font into its configuration's folder, made on first use under $TMPDIR
    # unless one is set (and removed when the configuration is garbage collected, which a forked worker
    # ending with os._exit never does): give it ours.
    config._folder = folder
    return config


def pdf_bytes(html: str, base_url: str | Path | None = None, temp_dir: str | Path | None = None) -> bytes:
    """`html` laid out as a PDF in the bundled fonts (the bytes of :func:`write_pdf`'s file)."""
    # WeasyPrint logs every CSS property it does not support (from notebook table styles) and every heading
    # permalink whose anchor the report drops; neither changes the PDF, so keep the run quiet.
    for name in ("weasyprint", "fontTools"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    folder = Path(tempfile.mkdtemp(prefix="weasyprint-", dir=temp_dir))
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="HarfBuzz-Subset", category=DeprecationWarning)
            from weasyprint import HTML

            with _fixed_font_timestamp():
                return HTML(string=html, base_url=str(base_url) if base_url else None).write_pdf(
                    font_config=_bundled_font_configuration(folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def warm_up(temp_dir: str | Path | None = None) -> None:
    """Lay out one short page in the report's styles and bundled fonts, and discard it.

    WeasyPrint's first layout in a process loads Pango, fontconfig and the fonts: most of a second, paid
    again by every process that lays out part of the report. After this, processes forked from this one
    start with all of it loaded.
    """
    from crm_analysis.report.html import report_html

    body = "<h1>한글 Latin 123</h1><p>− ✓ <b>굵게</b> <i>기울임</i> <code>code</code></p><table><tr><td>1</td></tr></table>"
    pdf_bytes(report_html([("warm-up", body)], month="2000-01", as_of="2000-01-31", cover=True,
                          extra_css=font_face_css() + NO_PAGE_NUMBERS_CSS), None, temp_dir)


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
                    jobs: int = PDF_JOBS, temp_dir: str | Path | None = None) -> Path:
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
    temp_dir : str or Path, optional
        Where WeasyPrint's temporary font files go (default: the system's temporary folder).

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
            later = [pool.submit(pdf_bytes, html, None, temp_dir) for html in parts[1:]]
            rendered = [pdf_bytes(parts[0], None, temp_dir)] + [future.result() for future in later]
    else:
        rendered = [pdf_bytes(html, None, temp_dir) for html in parts]
    path.write_bytes(join_pdf_parts(rendered, numbering, temp_dir))
    return path


def join_pdf_parts(rendered: Sequence[bytes], numbering: Callable[[int], str],
                   temp_dir: str | Path | None = None) -> bytes:
    """The PDFs `rendered` (:func:`pdf_bytes` of the parts of :func:`write_pdf_parts`) as one, their pages in
    order, each overlaid with its page number (`numbering` as for :func:`write_pdf_parts`)."""
    from pypdf import PdfReader, PdfWriter

    readers = [PdfReader(io.BytesIO(data)) for data in rendered]
    writer = PdfWriter()
    for reader in readers:
        writer.append(reader)
    numbers = PdfReader(io.BytesIO(pdf_bytes(numbering(len(writer.pages)), None, temp_dir)))
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
