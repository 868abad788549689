"""The month's report, assembled while the notebooks are still running.

A notebook's management page and appendix in ``report.html`` depend on that
notebook only, and each management page starts on a new page of
``report.pdf`` (the appendix is in the HTML only; a notebook that is all
appendix, such as the data-quality check, has no PDF page). So as soon as a
notebook has run, :class:`ReportAssembly` converts it to its section (in the
notebook lane's thread) and, given a pool of worker processes, has its pages
laid out there at once. When the last notebook is done, only its pages (and
the KPI page's, which runs last) are left to lay out; the parts are then
joined and numbered (:func:`crm_analysis.report.pdf.join_pdf_parts`).

The workers are the run's model workers (:func:`crm_analysis.monthly.month.model_workers`):
they were forked before any thread started, and those that fitted the
shorter models run at a lower priority, so the pages laid out early use
the cores the model fitting leaves idle; once the models are fitted, the run
hands the later notebooks' pages to the model workers (:meth:`ReportAssembly.use`). Without a pool (a run without
models, a Dask worker) the same parts are laid out at the end, two at a time
where processes may be forked (:func:`crm_analysis.report.pdf.write_pdf_parts`).
Either way the same notebooks give the same bytes.
"""

from __future__ import annotations

import threading
from concurrent.futures import Executor, Future
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
        self.work = Path(work)
        self.pdf = pdf
        self.temp_dir = temp_dir
        self._shared = dict(month=month, as_of=as_of, lang=lang, clinic_name=clinic_name)
        self._sections: dict[Path, list[tuple[str, str]]] = {}
        self._appendix: dict[Path, list[tuple[str, str]]] = {}
        self._parts: dict[Path, Future] = {}
        self._pool: Executor | None = None
        self._finish: Executor | None = None
        self._lock = threading.Lock()

    def use(self, pool: Executor | None, finish: Executor | None = None) -> None:
        """Lay out the pages of the notebooks that finish from now on in `pool` (None: at the end), and what
        `pool` has not started on when the last notebook is done in `finish` (default `pool`)."""
        with self._lock:
            self._pool = pool
            self._finish = finish or pool

    def add(self, path: Path) -> None:
        """The notebook `path` has run (its executed copy is in `work`): convert it, and start its pages."""
        page, appendix = self._convert(path)
        with self._lock:
            self._sections[path], self._appendix[path] = page, appendix
            pool = self._pool
        if self.pdf and pool is not None and self._has_page(path):
            self._submit(pool, path)

    def _convert(self, path: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        from crm_analysis.report.html import notebook_sections

        executed = [self.work / path.name]
        lang = self._shared["lang"]
        return notebook_sections(executed, "page", lang), notebook_sections(executed, "appendix", lang)

    def _has_page(self, path: Path) -> bool:
        return any(body.strip() for _, body in self._sections[path])

    def _pdf_order(self) -> list[Path]:
        return [path for path in self.order if self._has_page(path)]

    def _submit(self, pool: Executor, path: Path) -> None:
        from crm_analysis.report.pdf import pdf_bytes

        try:
            future = pool.submit(pdf_bytes, self._part_html(path), None, self.temp_dir)
        except RuntimeError:  # the pool is shutting down (the run failed): nothing more to lay out
            return
        with self._lock:
            self._parts[path] = future

    def _part_html(self, path: Path) -> str:
        from crm_analysis.report.html import report_html
        from crm_analysis.report.pdf import NO_PAGE_NUMBERS_CSS, font_face_css

        return report_html(self._sections[path], **self._shared, cover=path == self.order[0],
                           extra_css=font_face_css() + NO_PAGE_NUMBERS_CSS)

    def sections(self) -> list[tuple[str, str]]:
        """Every notebook's management page, in report order (converting any not yet added)."""
        for path in self.order:
            if path not in self._sections:
                self._sections[path], self._appendix[path] = self._convert(path)
        return [section for path in self.order for section in self._sections[path] if section[1].strip()]

    def appendix(self) -> list[tuple[str, str]]:
        """Every notebook's appendix, in run order (data quality first)."""
        self.sections()
        runs = sorted(self.order, key=lambda p: p.name)
        return [section for path in runs for section in self._appendix[path] if section[1].strip()]

    def write_html(self, name: str = "report.html") -> Path:
        """Write the report's HTML into `work`: the management pages with a table of contents, then the
        appendix."""
        from crm_analysis.report.html import report_html

        target = self.work / name
        target.write_text(report_html(self.sections(), **self._shared, appendix=self.appendix(), contents=True),
                          encoding="utf-8")
        return target

    def write_pdf(self, name: str = "report.pdf") -> Path:
        """Write the report's PDF into `work`: the parts laid out so far, the rest laid out now."""
        from crm_analysis.report.html import report_html
        from crm_analysis.report.pdf import font_face_css, join_pdf_parts, pdf_bytes, write_pdf_parts

        target = self.work / name
        self.sections()  # every notebook converted

        def numbering(pages: int) -> str:  # blank pages that show only "page / pages"
            return report_html([(f"page-{i}", "") for i in range(pages)], **self._shared, cover=False,
                               extra_css=font_face_css())

        with self._lock:
            pool, finish = self._pool, self._finish
        order = self._pdf_order()
        if pool is None:  # the same parts, laid out now (two at a time where processes may be forked)
            return write_pdf_parts([self._part_html(path) for path in order], target, numbering=numbering,
                                   temp_dir=self.temp_dir)
        # what no worker has started on: the first here (this process would only wait), the rest in `finish`
        with self._lock:
            left = [path for path in order if path not in self._parts or self._parts[path].cancel()]
            for path in left:
                self._parts.pop(path, None)
        for path in left[1:]:
            self._submit(finish, path)
        local = {path: pdf_bytes(self._part_html(path), None, self.temp_dir) for path in left[:1]}
        rendered = [local[path] if path in local else self._parts[path].result() if path in self._parts
                    else pdf_bytes(self._part_html(path), None, self.temp_dir) for path in order]
        target.write_bytes(join_pdf_parts(rendered, numbering, self.temp_dir))
        return target
