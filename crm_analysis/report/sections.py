"""Report sections that degrade, not die: a skipped section keeps its place with one plain sentence.

In a notebook, each section's cells run inside :func:`section`::

    with section(lang):
        backtest = clv_backtest(clinic, cutoff)
        display(value_view(backtest.summary(), lang))
        backtest.plot_calibration(lang=lang)

When the clinic's data is too thin for the analysis, the analysis raises
:class:`~crm_analysis.exceptions.InsufficientDataError`; :func:`section`
catches that one error (never any other: a bug still fails the run), closes
the charts the block had started, and shows the reason instead. The note
carries the analysis name and reason in its output metadata, so the monthly
run lists every skipped section in ``manifest.json``
(:func:`skipped_sections`). A reason already shown in the notebook is shown
again in a short form.

A result that several sections use is computed once with :func:`attempt`:
on thin data it returns a :class:`Skipped` stand-in that raises the same
error wherever it is used, so each section that needs it is skipped with the
reason and the others still run::

    evaluation = attempt(evaluate_reminders, clinic, as_of)
    with section(lang):
        display(evaluation.pilot_table(lang))
"""

from __future__ import annotations

import contextlib
from html import escape
from pathlib import Path
from typing import Iterator

from crm_analysis.exceptions import InsufficientDataError
from crm_analysis.i18n import check_lang

__all__ = ["section", "attempt", "Skipped", "skip_note", "skipped_sections", "METADATA_KEY"]

#: Output metadata key of a skipped-section note.
METADATA_KEY = "crm_analysis_skipped"


#: Reasons shown in full in this kernel (the notebook), with the cell (execution count) that showed them: other
#: cells show them again in short form; the same cell run again shows them in full.
_SHOWN: dict[tuple[str, str], int | None] = {}


def _cell() -> int | None:
    from IPython import get_ipython

    shell = get_ipython()
    return None if shell is None else shell.execution_count


class Skipped:
    """Stands in for a result the data could not support: using it raises the original error.

    Attributes
    ----------
    error : InsufficientDataError
    """

    def __init__(self, error: InsufficientDataError):
        object.__setattr__(self, "error", error)

    def __getattr__(self, name: str):
        if name.startswith("__") or name.startswith("_repr"):
            raise AttributeError(name)  # IPython and copy probe these; they are not uses of the result
        raise self.error

    def __bool__(self) -> bool:  # `result or default` must not quietly stand in a default
        raise self.error

    def __len__(self) -> int:
        raise self.error

    def __iter__(self):
        raise self.error

    def __getitem__(self, key):
        raise self.error

    def __repr__(self) -> str:
        return f"Skipped({self.error.reason!r})"


def attempt(func, *args, **kwargs):
    """``func(*args, **kwargs)``, or a :class:`Skipped` stand-in if it raises InsufficientDataError."""
    try:
        return func(*args, **kwargs)
    except InsufficientDataError as err:
        return Skipped(err)


def skip_note(err: InsufficientDataError, lang: str = "ko", *, again: bool = False) -> tuple[dict, dict]:
    """The display bundle and metadata of a skipped section's note (HTML-escaped reason).

    With `again`, the reason was shown above: the note says so instead of repeating it.
    """
    head = "분석 생략" if lang == "ko" else "Section skipped"
    if again:
        text = (f"위에서 설명한 이유와 같습니다 ({err.reason_in(lang).split(':')[0]})." if lang == "ko" else
                f"for the reason given above ({err.reason_in(lang).split(':')[0]}).")
    else:
        text = err.reason_in(lang)
    html = f'<p class="skipped"><strong>{head}:</strong> {escape(text)}</p>'
    data = {"text/html": html, "text/plain": f"{head}: {text}"}
    return data, {METADATA_KEY: {"analysis": err.analysis, "reason": err.reason, "reason_ko": err.reason_ko}}


@contextlib.contextmanager
def section(lang: str = "ko") -> Iterator[None]:
    """Run a report section; on :class:`InsufficientDataError` show its reason instead of failing.

    Parameters
    ----------
    lang : {"ko", "en"}
        Language of the note.
    """
    check_lang(lang)
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    try:
        yield
    except InsufficientDataError as err:
        for number in set(plt.get_fignums()) - before:  # a half-drawn chart is not shown
            plt.close(number)
        from IPython.display import display

        key, cell = (err.analysis, err.reason), _cell()
        again = key in _SHOWN and _SHOWN[key] != cell
        if not again:
            _SHOWN[key] = cell
        data, metadata = skip_note(err, lang, again=again)
        display(data, raw=True, metadata=metadata)


def skipped_sections(notebook: str | Path) -> list[dict]:
    """The sections an executed notebook skipped: ``[{"notebook", "analysis", "reason"}]`` in order."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    found: dict[tuple[str, str], dict] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get(METADATA_KEY)
            if meta:
                found.setdefault((meta["analysis"], meta["reason"]),
                                 {"notebook": Path(notebook).name, "analysis": meta["analysis"],
                                  "reason": meta["reason"]})
    return list(found.values())
