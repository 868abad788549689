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
import logging
import os
import warnings
from pathlib import Path
from typing import Iterator

from crm_analysis.plotting import korean_font_path

__all__ = ["font_face_css", "write_pdf", "REPRODUCIBLE_EPOCH"]

#: The time stamped into embedded fonts (2000-01-01 UTC), so a re-run gives the same PDF bytes.
REPRODUCIBLE_EPOCH = 946_684_800


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
    # WeasyPrint logs every CSS property it does not support (from notebook table styles) and every heading
    # permalink whose anchor the report drops; neither changes the PDF, so keep the run quiet.
    for name in ("weasyprint", "fontTools"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    path = Path(path)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="HarfBuzz-Subset", category=DeprecationWarning)
        from weasyprint import HTML

        with _fixed_font_timestamp():
            HTML(string=html, base_url=str(base_url) if base_url else None).write_pdf(str(path))
    return path


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
