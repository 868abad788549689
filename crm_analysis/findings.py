"""What loading found: row-level issues and the report of repairs, warnings and quarantine.

:mod:`crm_analysis.validation` produces these; :class:`ValidationReport` travels
with the loaded data as ``clinic.report``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import pandas as pd

from crm_analysis.exceptions import MAX_EXAMPLES, Problem

__all__ = ["RowIssue", "ValidationReport", "row_issue"]


@dataclass
class RowIssue:
    """A rule broken by particular rows (all of their index labels are kept)."""

    table: str
    column: str | None
    check: str
    message: str
    labels: pd.Index
    examples: tuple = ()

    def to_problem(self) -> Problem:
        labels = self.labels
        return Problem(
            table=self.table,
            column=self.column,
            message=self.message,
            rows=tuple(int(r) for r in labels[:MAX_EXAMPLES]),
            examples=tuple(self.examples[:MAX_EXAMPLES]),
            n_rows=len(labels),
            check=self.check,
        )


def row_issue(table: str, column: str | None, check: str, message: str, df: pd.DataFrame,
           mask: pd.Series | np.ndarray, example_col: str | Iterable[str] | None = None) -> RowIssue | None:
    """Build a RowIssue for the rows of `df` where `mask` holds, or None."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return None
    hit = df.loc[mask]
    cols = [example_col] if isinstance(example_col, str) else list(example_col or ([column] if column else []))
    if len(cols) == 1:
        examples = tuple(hit[cols[0]].head(MAX_EXAMPLES).tolist())
    elif cols:
        examples = tuple(tuple(r) for r in hit[cols].head(MAX_EXAMPLES).itertuples(index=False))
    else:
        examples = ()
    return RowIssue(table, column, check, message, hit.index, examples)


@dataclass
class ValidationReport:
    """What loading found and did, besides the tables themselves.

    Attributes
    ----------
    repairs : list of Problem
        Oddities that were repaired (for example exact duplicate rows dropped).
    warnings : list of Problem
        Valid but suspicious data (for example ids in scientific notation).
    quarantined : dict of str to DataFrame
        Rows removed under ``on_invalid="quarantine"``, with a ``problem`` column.
    quarantine_problems : list of Problem
        Why those rows were removed.
    info : list of Problem
        What the mapping did (rows filtered by ``where``, rows collapsed by
        ``distinct``, tables derived).
    """

    repairs: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    quarantined: dict[str, pd.DataFrame] = field(default_factory=dict)
    quarantine_problems: list[Problem] = field(default_factory=list)
    info: list[Problem] = field(default_factory=list)

    def add_quarantined(self, table: str, rows: pd.DataFrame) -> None:
        """Add rows (with a ``problem`` column) to the table's quarantine."""
        if table in self.quarantined:
            rows = pd.concat([self.quarantined[table], rows])
        self.quarantined[table] = rows

    @property
    def n_quarantined(self) -> int:
        return sum(len(df) for df in self.quarantined.values())

    def to_frame(self) -> pd.DataFrame:
        """One row per finding: level, table, column, check, rows affected, message."""
        records = []
        for level, problems in (("quarantined", self.quarantine_problems), ("repaired", self.repairs),
                                ("warning", self.warnings), ("info", self.info)):
            for p in problems:
                records.append({
                    "level": level, "table": p.table, "column": p.column, "check": p.check,
                    "n_rows": p.n_rows, "message": p.message,
                    "example_rows": ", ".join(map(str, p.rows)),
                })
        columns = ["level", "table", "column", "check", "n_rows", "message", "example_rows"]
        return pd.DataFrame.from_records(records, columns=columns)

    def summary(self) -> str:
        """Plain-text account of every finding."""
        if not (self.repairs or self.warnings or self.quarantine_problems or self.info):
            return "No repairs, warnings or quarantined rows."
        lines = []
        for title, problems in (("Quarantined", self.quarantine_problems), ("Repaired", self.repairs),
                                ("Warnings", self.warnings), ("Mapping", self.info)):
            if problems:
                lines.append(f"{title}:")
                lines += [f"  {p}" for p in problems]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        frame = self.to_frame().drop(columns="example_rows")
        if frame.empty:
            return "<p>No repairs, warnings or quarantined rows.</p>"
        return "<h4>Data-quality findings</h4>" + frame.to_html(index=False, escape=True)
