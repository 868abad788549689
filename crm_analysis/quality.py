"""Data-quality overview of one clinic: how much data, over which months, how complete.

Pure functions on a :class:`~crm_analysis.clinic.ClinicData`. They never modify
their input and return new frames with documented columns. Every output is an
aggregate (counts and shares per table, column or month): no names, phone
numbers, emails, ids or example values, so the frames can go into reports as
they are.

:func:`quality_summary` bundles them into one :class:`QualitySummary` that
displays itself in a notebook.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

import numpy as np
import pandas as pd

from crm_analysis.clinic import ClinicData
from crm_analysis.contract import TABLES
from crm_analysis.i18n import LABELS, LANGS, check_lang, column_label, label, localise_columns, table_label
from crm_analysis.number_format import format_number
from crm_analysis.privacy import DEFAULT_MIN_COUNT, suppress_small_counts

__all__ = [
    "COVERAGE_DATES",
    "row_counts",
    "monthly_coverage",
    "missing_rates",
    "findings",
    "quality_summary",
    "QualitySummary",
]

#: The date that places each table's rows in a month, and the name of the count.
#: ``pregnancies.due_date`` is a forecast, not an event, so pregnancies are
#: counted by ``outcome_date`` (outcomes recorded per month).
COVERAGE_DATES: dict[str, tuple[str, str]] = {
    "patients": ("first_visit_date", "new_patients"),
    "visits": ("visit_date", "visits"),
    "appointments": ("scheduled_at", "appointments"),
    "reminders": ("sent_at", "reminders"),
    "contacts": ("sent_at", "contacts"),
    "pregnancies": ("outcome_date", "pregnancy_outcomes"),
    "vaccinations": ("vaccination_date", "vaccinations"),
}

_FINDING_COLUMNS = ["level", "table", "table_ko", "table_en", "column", "column_ko", "column_en", "check", "n_rows",
                    "message"]


def row_counts(clinic: ClinicData) -> pd.DataFrame:
    """Rows per contract table, with rows set aside during loading.

    Parameters
    ----------
    clinic : ClinicData

    Returns
    -------
    pandas.DataFrame
        One row per contract table, in contract order, with columns

        - ``table``, ``table_ko``, ``table_en``: contract name and labels;
        - ``present`` (bool): whether the source provided the table;
        - ``rows`` (int): rows loaded (0 when absent);
        - ``quarantined`` (int): rows removed under ``on_invalid="quarantine"``.

    See Also
    --------
    monthly_coverage : the same rows spread over calendar months.
    """
    quarantined = clinic.report.quarantined
    names = list(TABLES)
    return pd.DataFrame({
        "table": names,
        "table_ko": [TABLES[n].ko for n in names],
        "table_en": [TABLES[n].en for n in names],
        "present": [clinic.has(n) for n in names],
        "rows": np.array([len(clinic.tables[n]) if clinic.has(n) else 0 for n in names], dtype="int64"),
        "quarantined": np.array([len(quarantined[n]) if n in quarantined else 0 for n in names], dtype="int64"),
    })


def monthly_coverage(clinic: ClinicData) -> pd.DataFrame:
    """Rows per calendar month for every dated table present.

    Each table is placed by its main date (see :data:`COVERAGE_DATES`):
    new patients by ``first_visit_date``, visits by ``visit_date``,
    appointments by ``scheduled_at``, reminders and contacts by ``sent_at``,
    pregnancies by ``outcome_date``. Appointments scheduled after
    ``clinic.as_of`` are bookings still ahead, not data, and are left out.
    Rows without the date are not counted.

    Months run without gaps from the earliest dated row to the month of
    ``as_of`` (or of the latest dated row when ``as_of`` is not set), so a
    month in which an export recorded nothing shows as 0.

    Parameters
    ----------
    clinic : ClinicData

    Returns
    -------
    pandas.DataFrame
        Index: a monthly ``PeriodIndex`` named ``month``. One int64 column per
        table present, named as in :data:`COVERAGE_DATES` (``new_patients``,
        ``visits``, ``appointments``, ``reminders``, ``contacts``,
        ``pregnancy_outcomes``), in contract order. Empty (no rows) when no
        table has a dated row.

    See Also
    --------
    row_counts : totals per table.
    """
    cutoff = None if clinic.as_of is None else clinic.as_of.normalize() + pd.Timedelta(days=1)
    counts: dict[str, pd.Series] = {}
    for name, (date_col, key) in COVERAGE_DATES.items():
        if not clinic.has(name):
            continue
        dates = clinic.tables[name][date_col]
        if name == "appointments" and cutoff is not None:
            dates = dates[dates < cutoff]
        counts[key] = dates.dropna().dt.to_period("M").value_counts()
    months = [m for c in counts.values() for m in (c.index.min(), c.index.max()) if len(c)]
    if clinic.as_of is not None and months:
        months.append(clinic.as_of.to_period("M"))
    if not months:
        index = pd.PeriodIndex([], freq="M", name="month")
    else:
        index = pd.period_range(min(months), max(months), freq="M", name="month")
    return pd.DataFrame({key: c.reindex(index, fill_value=0).astype("int64") for key, c in counts.items()},
                        index=index, columns=list(counts))


def missing_rates(clinic: ClinicData) -> pd.DataFrame:
    """Share of missing values in every column of every table present.

    Optional columns a source did not provide are added empty by the loader,
    so they show as entirely missing here.

    Parameters
    ----------
    clinic : ClinicData

    Returns
    -------
    pandas.DataFrame
        One row per (table, column), sorted by ``missing_rate`` from highest
        to lowest (ties in contract order), with a fresh 0-based index and
        columns

        - ``table``, ``table_ko``, ``table_en``: contract table and labels;
        - ``column``, ``column_ko``, ``column_en``: contract column and labels;
        - ``n_rows`` (int): rows in the table;
        - ``n_missing`` (int): missing values;
        - ``missing_rate`` (float): ``n_missing / n_rows``, NaN for an empty table.
    """
    parts = []
    for name, table in TABLES.items():
        if not clinic.has(name):
            continue
        df = clinic.tables[name]
        columns = [c for c in table.columns if c.name in df.columns]
        n_missing = df[[c.name for c in columns]].isna().sum().to_numpy(dtype="int64")
        n_rows = len(df)
        parts.append(pd.DataFrame({
            "table": name,
            "table_ko": table.ko,
            "table_en": table.en,
            "column": [c.name for c in columns],
            "column_ko": [c.ko for c in columns],
            "column_en": [c.en for c in columns],
            "n_rows": np.full(len(columns), n_rows, dtype="int64"),
            "n_missing": n_missing,
            "missing_rate": n_missing / n_rows if n_rows else np.full(len(columns), np.nan),
        }))
    if not parts:
        return pd.DataFrame(columns=["table", "table_ko", "table_en", "column", "column_ko", "column_en",
                                     "n_rows", "n_missing", "missing_rate"])
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values("missing_rate", ascending=False, kind="stable", na_position="last").reset_index(drop=True)


def findings(clinic: ClinicData) -> pd.DataFrame:
    """The loading report as a table, without example values or row numbers.

    Example values and row numbers can point at individual patients, so they
    are left out; the analyst finds them in ``clinic.report`` (and quarantined
    rows in ``clinic.report.quarantined``).

    Parameters
    ----------
    clinic : ClinicData

    Returns
    -------
    pandas.DataFrame
        One row per finding, quarantined first, then repairs, then warnings,
        with columns ``level`` (``"quarantined"``, ``"repaired"`` or
        ``"warning"``), ``table``, ``table_ko``, ``table_en``, ``column``,
        ``column_ko``, ``column_en`` (None when the finding is about a whole
        table; names outside the contract, such as ``"mapping"``, are their
        own labels), ``check`` (rule name) with ``check_ko`` / ``check_en``,
        ``n_rows`` (int: rows concerned) and ``message`` (English, with its
        details) with ``message_ko`` (what the rule means, from the labels) /
        ``message_en`` (the message).
    """
    frame = clinic.report.to_frame().reset_index(drop=True)
    tables, columns = frame["table"].tolist(), frame["column"].tolist()
    for lang in LANGS:
        frame[f"table_{lang}"] = pd.Series([LABELS[f"finding_table_{t}"][lang] if f"finding_table_{t}" in LABELS
                                            else table_label(t, lang) for t in tables], index=frame.index,
                                           dtype="object")
        frame[f"column_{lang}"] = pd.Series([None if pd.isna(c) else column_label(t, c, lang)
                                             for t, c in zip(tables, columns)], index=frame.index, dtype="object")
    out = frame[_FINDING_COLUMNS].copy()
    out["n_rows"] = out["n_rows"].astype("int64")
    # The rule's name and meaning in each language (labels `finding_<check>`); the English message with its
    # details stays the analyst's (clinic.report). A rule without a label is shown by its code.
    checks = out["check"].astype(str).tolist()
    for lang in LANGS:
        out[f"check_{lang}"] = [LABELS[f"finding_{c}"][lang] if f"finding_{c}" in LABELS else c for c in checks]
        out[f"message_{lang}"] = [LABELS[f"finding_{c}_text"][lang] if f"finding_{c}_text" in LABELS
                                  else label("finding_other_text", lang) for c in checks]
    out["message_en"] = out["message"].astype(str)  # the English message says more: keep it
    return out


@dataclass(frozen=True)
class QualitySummary:
    """Data-quality overview of one clinic, ready to display.

    Attributes
    ----------
    row_counts : DataFrame
        From :func:`row_counts`.
    coverage : DataFrame
        From :func:`monthly_coverage`.
    missing : DataFrame
        From :func:`missing_rates`.
    findings : DataFrame
        From :func:`findings`.
    as_of : Timestamp or None
        The clinic's ``as_of``.
    lang : {"ko", "en"}
        Language of :meth:`summary` and the HTML view.
    """

    row_counts: pd.DataFrame
    coverage: pd.DataFrame
    missing: pd.DataFrame
    findings: pd.DataFrame
    as_of: pd.Timestamp | None
    lang: str = "ko"

    def _lines(self) -> list[tuple[str, str]]:
        lang = self.lang
        present = self.row_counts[self.row_counts["present"]]
        absent = self.row_counts[~self.row_counts["present"]]
        tables = ", ".join(f"{t} {format_number(n, 'count', lang, hidden_below=DEFAULT_MIN_COUNT)}"
                           for t, n in zip(present[f"table_{lang}"], present["rows"]))
        lines = [
            (label("as_of", lang), f"{self.as_of:%Y-%m-%d}" if self.as_of is not None else label("not_given", lang)),
            (label("tables_present", lang), tables),
            (label("tables_absent", lang), ", ".join(absent[f"table_{lang}"]) or label("none", lang)),
        ]
        if len(self.coverage):
            empty = self.coverage.index[self.coverage["visits"].eq(0).to_numpy(dtype=bool, na_value=False)] \
                if "visits" in self.coverage else self.coverage.index[:0]
            lines += [
                (label("coverage_span", lang), f"{self.coverage.index[0]} – {self.coverage.index[-1]} "
                                               f"({label('n_months', lang).format(n=len(self.coverage))})"),
                (label("empty_months", lang), _month_list(empty) or label("none", lang)),
            ]
        levels = self.findings["level"].value_counts()
        counts = [f"{label(f'{lvl}_level', lang)} {int(levels[lvl])}"
                  for lvl in ("quarantined", "repaired", "warning") if lvl in levels]
        lines.append((label("findings", lang), ", ".join(counts) or label("none", lang)))
        rate = self.missing["missing_rate"].astype("float64")  # hidden rates (missing) are neither 0 nor 1
        lines.append((label("empty_columns", lang), f"{int((rate == 1).sum())}"))
        top = self.missing[((rate > 0) & (rate < 1)).to_numpy()].head(3)
        worst = ", ".join(f"{t}.{c} {r:.0%}" for t, c, r in
                          zip(top[f"table_{lang}"], top[f"column_{lang}"], top["missing_rate"]))
        lines.append((label("most_missing", lang), worst or label("none", lang)))
        return lines

    def summary(self) -> str:
        """Plain-text overview: tables, months covered, months without visits, findings, gaps in columns."""
        lines = [label("summary_title", self.lang)]
        lines += [f"  {key}: {value}" for key, value in self._lines()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        lang = self.lang
        items = "".join(f"<li><b>{escape(k)}</b>: {escape(v)}</li>" for k, v in self._lines())
        return (f"<h4>{escape(label('summary_title', lang))}</h4><ul>{items}</ul>"
                + localise_columns(self.row_counts, lang).to_html(index=False))


def quality_summary(clinic: ClinicData, lang: str = "ko", min_count: int = DEFAULT_MIN_COUNT) -> QualitySummary:
    """Everything above for one clinic, in one frozen object, its counts ready to publish.

    Counts from 1 to ``min_count - 1`` are hidden (missing) with
    :func:`crm_analysis.privacy.suppress_small_counts`, and so is what would reveal them:
    rows and rows set aside per table; rows per month (secondary suppression down each
    table's months, which add up to its rows); missing values per column (with the share
    missing, and hidden too when the values *present* are that few); rows per finding.
    The monthly coverage keeps float columns (NaN where hidden) so that it still plots;
    ``coverage.attrs["kinds"]`` marks them as counts for
    :func:`crm_analysis.i18n.localised_view`.

    Parameters
    ----------
    clinic : ClinicData
    lang : {"ko", "en"}
        Language of the text and HTML views (the frames keep both labels).
    min_count : int
        The suppression threshold.

    Returns
    -------
    QualitySummary

    Raises
    ------
    ValueError
        If `lang` is not supported.

    Examples
    --------
    >>> from crm_analysis import load_clinic  # doctest: +SKIP
    >>> print(quality_summary(load_clinic("data/demo", as_of="2026-10-31")).summary())  # doctest: +SKIP
    """
    check_lang(lang)
    return QualitySummary(row_counts=_published_row_counts(row_counts(clinic), min_count),
                          coverage=_published_coverage(monthly_coverage(clinic), min_count),
                          missing=_published_missing(missing_rates(clinic), min_count),
                          findings=suppress_small_counts(findings(clinic), ["n_rows"], min_count, additive="rows"),
                          as_of=clinic.as_of, lang=lang)


def _published_row_counts(counts: pd.DataFrame, min_count: int) -> pd.DataFrame:
    """Rows and rows set aside per table, each hidden when small (no total is published)."""
    counts = suppress_small_counts(counts, ["rows"], min_count, additive="rows")
    return suppress_small_counts(counts, ["quarantined"], min_count, additive="rows")


def _published_coverage(coverage: pd.DataFrame, min_count: int) -> pd.DataFrame:
    """Rows per month, small counts hidden down each table's months; floats with NaN, for the chart too."""
    out = suppress_small_counts(coverage, list(coverage.columns), min_count, additive="columns")
    out = out.astype("float64") if len(out.columns) else out
    out.attrs["kinds"] = dict.fromkeys(out.columns, "count")
    return out


def _published_missing(missing: pd.DataFrame, min_count: int) -> pd.DataFrame:
    """Missing values per column: hidden when they, or the values present, are few; the share with them."""
    if missing.empty:
        return missing
    out = missing.assign(n_present=missing["n_rows"] - missing["n_missing"])
    out = suppress_small_counts(out, ["n_missing", "n_present", "n_rows"], min_count, total_column="n_rows",
                                additive="rows")
    hidden = (out["n_missing"].isna() | out["n_rows"].isna()).to_numpy()  # the share and one count give the other
    return out.assign(missing_rate=out["missing_rate"].astype("Float64").mask(hidden)).drop(columns="n_present")


def _month_list(months: pd.Index, limit: int = 6) -> str:
    shown = ", ".join(str(m) for m in months[:limit])
    return shown + (f" (+{len(months) - limit})" if len(months) > limit else "")
