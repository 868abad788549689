"""Exceptions and warnings raised by crm_analysis.

Every warning derives from :class:`CrmAnalysisWarning`, so callers can filter
them with one category. Bad input data raises :class:`DataValidationError`,
which carries *all* the problems found, not only the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

__all__ = [
    "CrmAnalysisError",
    "CampaignConfigError",
    "DataValidationError",
    "MappingError",
    "MissingTableError",
    "InsufficientDataError",
    "ConvergenceError",
    "SourceError",
    "PatientNotFoundError",
    "CardIndexError",
    "RuleFileError",
    "RunFailed",
    "NotebookFailed",
    "PrivacyLeak",
    "Problem",
    "CrmAnalysisWarning",
    "DataRepairWarning",
    "DataQualityWarning",
    "ConvergenceWarning",
    "MAX_EXAMPLES",
    "MAX_SHOWN_CHARS",
    "MAX_SHOWN_LINE",
    "MAX_SHOWN_MESSAGE",
    "shorten",
    "quoted",
]

#: How many row numbers and example values a problem shows.
MAX_EXAMPLES = 5

#: The longest value a message quotes: a longer one (a 1 MB id, a broken header) is cut there, with its length.
MAX_SHOWN_CHARS = 80

#: The longest line of another library's error a message repeats (a parser's error may quote a whole row).
MAX_SHOWN_LINE = 240

#: The longest one-line error the command prints: the last guard against a value quoted whole somewhere.
MAX_SHOWN_MESSAGE = 2_000


def shorten(text: object, limit: int = MAX_SHOWN_CHARS) -> str:
    """`text` as a message may show it: cut to `limit` characters, saying how long it was.

    Every message that repeats something from the input (a value, a column name, a line of a
    parser's error) passes it through here (or :func:`quoted`), so a huge value cannot make a huge
    message.

    Parameters
    ----------
    text : object
        Shown as ``str(text)``.
    limit : int
        Characters kept.

    Returns
    -------
    str

    Examples
    --------
    >>> shorten("P" + "9" * 99, 10)
    'P999999999… (100 characters)'
    >>> shorten("P1")
    'P1'
    """
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def quoted(value: Any, limit: int = MAX_SHOWN_CHARS) -> str:
    """An example value as a message quotes it: its ``repr``, a long text cut to `limit` characters.

    Parameters
    ----------
    value : object
        A value from the input; numpy and pandas scalars are shown as plain Python values, and
        tuples (the values of several columns) element by element.
    limit : int
        Characters kept of each value.

    Returns
    -------
    str

    Examples
    --------
    >>> quoted("P" + "9" * 99, 10)
    "'P999999999'… (100 characters)"
    >>> quoted(("P1", 3))
    "('P1', 3)"
    """
    value = _plain(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(quoted(v, limit) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else f"{value[:limit]!r}… ({len(value):,} characters)"
    return shorten(repr(value), limit)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input.

    Parameters
    ----------
    table : str
        Contract table (or source file) the problem is in.
    column : str or None
        Column concerned, if any.
    message : str
        What is wrong and, where possible, how to fix it.
    rows : tuple of int
        The first few row numbers concerned, counted from 1 as in a spreadsheet
        (header excluded). Empty when the problem is not about rows.
    examples : tuple
        The first few offending values.
    n_rows : int
        How many rows are concerned in total.
    check : str
        Short machine-readable name of the rule broken.
    """

    table: str
    column: str | None
    message: str
    rows: tuple[int, ...] = ()
    examples: tuple[Any, ...] = ()
    n_rows: int = 0
    check: str = ""

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        text = f"[{where}] {self.message}"
        if self.n_rows and self.rows:
            shown = ", ".join(str(r) for r in self.rows)
            more = f" (+{self.n_rows - len(self.rows)} more)" if self.n_rows > len(self.rows) else ""
            text += f" — {self.n_rows:,} row(s): {shown}{more}"
        elif self.n_rows:
            text += f" — {self.n_rows:,} row(s)"
        if self.examples:
            text += "; examples: " + ", ".join(quoted(v) for v in self.examples)
        return text


def _plain(value: Any) -> Any:
    """Turn numpy/pandas scalars into plain Python values for display."""
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if hasattr(value, "isoformat") and hasattr(value, "hour"):
        text = str(value)
        return text[:-9] if text.endswith(" 00:00:00") else text
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (ValueError, TypeError):
            return value
    return value


class CrmAnalysisError(Exception):
    """Base class of all crm_analysis errors.

    Every error pickles with its attributes, whatever its constructor takes: the monthly run keeps a
    model's thin-data error with the month's fitted models and hands both to the notebooks.
    """

    def __reduce__(self):
        return _rebuild_error, (type(self), self.args, dict(self.__dict__))


def _rebuild_error(cls: type, args: tuple, state: dict) -> BaseException:
    """An error of class `cls` with `args` and attributes `state`, made without calling its ``__init__``."""
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


@dataclass
class DataValidationError(CrmAnalysisError):
    """The input data breaks the data contract.

    Attributes
    ----------
    problems : list of Problem
        Every problem found, in table order.
    """

    problems: Sequence[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        n = len(self.problems)
        head = f"{n} data problem{'s' if n != 1 else ''} found:"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])

    @property
    def tables(self) -> list[str]:
        """Tables named by the problems, in order of first appearance."""
        return list(dict.fromkeys(p.table for p in self.problems))


class MappingError(DataValidationError):
    """The mapping file is malformed or does not fit the source."""


class SourceError(CrmAnalysisError, ValueError):
    """The source cannot be used as given: two files claim one table, a file is truncated, the month
    lies outside the data. Bad input (the CLI exits 2); also a :class:`ValueError`."""


class InsufficientDataError(CrmAnalysisError):
    """The clinic's data is too thin for one analysis: a table, a column, months of history or a minimum
    count is missing. The analysis is skipped with :attr:`reason`; the rest of the run goes on.

    Parameters
    ----------
    analysis : str
        Name of the analysis (a key of :data:`crm_analysis.sufficiency.REQUIREMENTS`).
    reason : str
        One plain English sentence: what is missing and what would make it work.
    reason_ko : str, optional
        The same sentence in Korean (the reports' default language).
    """

    def __init__(self, analysis: str, reason: str, reason_ko: str | None = None):
        self.analysis = analysis
        self.reason = reason
        self.reason_ko = reason_ko or reason
        super().__init__(reason)

    def reason_in(self, lang: str) -> str:
        """The reason in `lang` (``"ko"`` or ``"en"``)."""
        return self.reason_ko if lang == "ko" else self.reason


class MissingTableError(InsufficientDataError):
    """An analysis needs an optional table that this clinic's data does not have."""

    def __init__(self, table: str, needed_for: str):
        self.table = table
        self.needed_for = needed_for
        super().__init__(
            needed_for,
            f"{needed_for} needs the '{table}' table, which this clinic's data does not include. "
            f"Add a '{table}' file or sheet to the source, or map it in the mapping file.",
            f"{needed_for}: 이 병원 자료에 '{table}' 테이블이 없어 분석하지 못했습니다. "
            f"자료에 '{table}' 파일(시트)을 넣거나 매핑 파일에 연결하면 분석됩니다.",
        )


class ConvergenceError(InsufficientDataError):
    """A model's fit did not converge on this clinic's data, so its estimates would be meaningless.

    Typically a covariate level separates the outcome completely (every gap of a group ends in a
    return, or none does) and its coefficient runs off towards infinity. The fitter raises this instead
    of returning the coefficients. It is an :class:`InsufficientDataError` (the data cannot support the
    model): the monthly run keeps it with the month's models and the sections that need the model are
    skipped with :attr:`reason`, one sentence, while the rest of the run goes on.

    Parameters
    ----------
    analysis, reason, reason_ko
        As for :class:`InsufficientDataError`.
    detail : str
        What the fitting library reported (for analysts; not shown in the report).
    """

    def __init__(self, analysis: str, reason: str, reason_ko: str | None = None, detail: str = ""):
        super().__init__(analysis, reason, reason_ko)
        self.detail = detail


class PatientNotFoundError(CrmAnalysisError, LookupError):
    """No patient matches the phone number or id looked up (:func:`crm_analysis.profile.patient_card`).

    Also a :class:`LookupError`, so ``except LookupError`` catches it. The
    message never repeats the phone number searched for.
    """


class CardIndexError(CrmAnalysisError, ValueError):
    """A card index (``cards.sqlite``) cannot be read: missing, not an index, or of another schema version.

    The message names the file and says how to get a usable one. Also a :class:`ValueError`: an index
    given on the command line that cannot be used is bad input (the CLI exits 2).
    """


class CampaignConfigError(CrmAnalysisError, ValueError):
    """A campaign definition, template or send list breaks a rule.

    The message names the campaign and says how to fix it. Also a
    :class:`ValueError`, so callers catching that keep working.
    """


class RuleFileError(CrmAnalysisError, ValueError):
    """An analyst's rule folder or file cannot be used (missing, unknown name, not valid YAML).

    Also a :class:`ValueError`: bad input, so the command exits with status 2.
    """


class RunFailed(CrmAnalysisError):
    """The monthly run failed; nothing was published. The message is one line."""


class NotebookFailed(RunFailed):
    """A notebook raised an error during the monthly run."""


class PrivacyLeak(RunFailed):
    """A report artefact shows a patient's name, phone number or email; the month was not published."""


class CrmAnalysisWarning(UserWarning):
    """Base class of all crm_analysis warnings."""


class DataRepairWarning(CrmAnalysisWarning):
    """Input data was repaired (for example exact duplicate rows were dropped)."""


class DataQualityWarning(CrmAnalysisWarning):
    """Input data is valid but looks odd (for example an age above 100)."""


class ConvergenceWarning(CrmAnalysisWarning):
    """A fit did not converge and the analysis fell back (for example the churn model's Weibull
    alternative was left out); the message says what was dropped and why."""
