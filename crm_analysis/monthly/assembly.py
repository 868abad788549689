"""The month's report, assembled while the notebooks are still running.

A notebook's management page and appendix in ``report.html`` depend on that
notebook only, so :class:`ReportAssembly` converts each notebook (with
nbconvert, in the notebook lane's thread) as soon as it has run. When the
last one is done, the HTML is written, and ``report.pdf`` is laid out in one
WeasyPrint pass in this process: the management report is at most 12 pages
(the appendix is in the HTML only; a notebook that is all appendix, such as
the data-quality check, has no PDF page), about two seconds of layout.

It is laid out here, never in a forked process: Pango initialises its fonts
in a thread of its own, and a process forked from one whose fonts are set up
may wait for that thread for ever (a run once hung so). The same notebooks
give the same bytes, whoever runs them (serial run, Dask worker).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

from crm_analysis.monthly.notebooks import report_order

__all__ = ["ReportAssembly"]


class ReportAssembly:
    """``report.html`` and ``report.pdf`` of a month, built notebook by notebook as they finish.

    Parameters
    ----------
    paths : sequence of Path
        The notebooks of the run (their source files), in run order.
    work : Path
        The folder the executed notebooks are written to (same file names) and the report goes to.
    month, as_of, lang, clinic_name
        As for :func:`crm_analysis.report.html.report_html`.
    pdf : bool
        Whether a PDF is written.
    temp_dir : Path, optional
        Where WeasyPrint's temporary font files go.
    """

    def __init__(self, paths: Sequence[Path], work: Path, *, month: str, as_of: str, lang: str,
                 clinic_name: str | None, pdf: bool, temp_dir: Path | None = None) -> None:
        self.order = report_order(list(paths))
        self.runs = list(paths)
        self.work = Path(work)
        self.pdf = pdf
        self.temp_dir = temp_dir
        self._shared = dict(month=month, as_of=as_of, lang=lang, clinic_name=clinic_name)
        self._sections: dict[Path, list[tuple[str, str]]] = {}
        self._appendix: dict[Path, list[tuple[str, str]]] = {}
        self._lock = threading.Lock()

    def add(self, path: Path) -> None:
        """The notebook `path` has run (its executed copy is in `work`): convert it."""
        page, appendix = self._convert(path)
        with self._lock:
            self._sections[path], self._appendix[path] = page, appendix

    def _convert(self, path: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        from crm_analysis.report.html import notebook_sections

        executed = [self.work / path.name]
        lang = self._shared["lang"]
        return notebook_sections(executed, "page", lang), notebook_sections(executed, "appendix", lang)

    def sections(self) -> list[tuple[str, str]]:
        """Every notebook's management page, in report order (converting any not yet added)."""
        for path in self.order:
            if path not in self._sections:
                self.add(path)
        return [section for path in self.order for section in self._sections[path] if section[1].strip()]

    def appendix(self) -> list[tuple[str, str]]:
        """Every notebook's appendix, in run order (data quality first)."""
        self.sections()
        return [section for path in self.runs for section in self._appendix[path] if section[1].strip()]

    def write_html(self, name: str = "report.html") -> Path:
        """Write the report's HTML into `work`: the management pages with a table of contents, then the
        appendix."""
        from crm_analysis.report.html import report_html

        target = self.work / name
        target.write_text(report_html(self.sections(), **self._shared, appendix=self.appendix(), contents=True),
                          encoding="utf-8")
        return target

    def write_pdf(self, name: str = "report.pdf") -> Path:
        """Write the management report's PDF into `work` (its pages numbered "n / N")."""
        from crm_analysis.report.html import report_html
        from crm_analysis.report.pdf import font_face_css, write_pdf

        return write_pdf(report_html(self.sections(), **self._shared, extra_css=font_face_css()),
                         self.work / name, temp_dir=self.temp_dir)
