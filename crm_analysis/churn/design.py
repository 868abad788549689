"""Covariate coding for the churn models: categorical levels to 0/1 columns.

A :class:`Design` is learned once from the fitting gaps and then applied to
any gaps or patients, so predictions use exactly the columns of the fit.
Columns are named ``covariate[level]`` (the demo generator's truth uses the
same names, e.g. ``main_department[피부과]``). The reference level of each
covariate has no column; missing values and levels unseen at fit time are
coded as the reference (all zeros).

Because every covariate is categorical and durations are whole days, many
gaps share the same row. :meth:`Design.compress` collapses identical rows into
one with a frequency weight, which lets lifelines fit millions of gaps in
seconds with the same estimates and (model-based) standard errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from crm_analysis.exceptions import CrmAnalysisError

__all__ = ["Design", "learn_design"]


@dataclass(frozen=True)
class Design:
    """Fitted coding of categorical covariates.

    Attributes
    ----------
    levels : Mapping of str to tuple of str
        For each covariate, its reference level first, then the levels that
        get a column.
    """

    levels: Mapping[str, tuple[str, ...]]

    @property
    def columns(self) -> list[str]:
        """Names of the 0/1 columns, ``covariate[level]``."""
        return [f"{cov}[{lev}]" for cov, levs in self.levels.items() for lev in levs[1:]]

    def codes(self, data: pd.DataFrame) -> np.ndarray:
        """Integer level codes (0 = reference), one column per covariate."""
        missing = [c for c in self.levels if c not in data.columns]
        if missing:
            raise CrmAnalysisError(f"the data lacks the covariate column(s) {', '.join(missing)}; build it with "
                                   "crm_analysis.churn.survival_data")
        out = np.zeros((len(data), len(self.levels)), dtype=np.int16)
        for j, (cov, levs) in enumerate(self.levels.items()):
            out[:, j] = _level_codes(data[cov], levs)
        return out

    def matrix(self, data: pd.DataFrame, codes: np.ndarray | None = None) -> pd.DataFrame:
        """The 0/1 design matrix of `data` (float64), indexed like `data`."""
        return self._matrix(self.codes(data) if codes is None else codes, data.index)

    def _matrix(self, codes: np.ndarray, index: pd.Index) -> pd.DataFrame:
        cols = {}
        for j, (cov, levs) in enumerate(self.levels.items()):
            for k, lev in enumerate(levs[1:], start=1):
                cols[f"{cov}[{lev}]"] = (codes[:, j] == k).astype(np.float64)
        return pd.DataFrame(cols, index=index, columns=self.columns)

    def compress(self, gaps: pd.DataFrame) -> pd.DataFrame:
        """Design matrix plus ``duration``, ``event`` and a frequency ``weight``, identical rows merged."""
        codes = self.codes(gaps).astype(np.int64)
        radix = np.array([len(levs) for levs in self.levels.values()], dtype=np.int64)
        key = np.zeros(len(gaps), dtype=np.int64)
        for j in range(codes.shape[1]):
            key = key * radix[j] + codes[:, j]
        duration = gaps["duration"].to_numpy(dtype=np.int64)
        event = gaps["event"].to_numpy(dtype=np.int64)
        if np.prod(radix.astype(float)) * (duration.max(initial=0) + 1) * 2 > 2.0 ** 62:
            raise CrmAnalysisError("too many covariate levels to compress; use fewer covariates")
        key = (key * (duration.max(initial=0) + 1) + duration) * 2 + event
        uniq, first, weight = np.unique(key, return_index=True, return_counts=True)
        out = self._matrix(codes[first], pd.RangeIndex(len(first)))
        out["duration"] = duration[first]
        out["event"] = event[first]
        out["weight"] = weight.astype(np.float64)
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per covariate: its reference and the levels with a column."""
        return pd.DataFrame({"covariate": list(self.levels),
                             "reference": [levs[0] for levs in self.levels.values()],
                             "levels": [", ".join(levs[1:]) for levs in self.levels.values()]})


def learn_design(gaps: pd.DataFrame, spec: Mapping[str, Sequence[str]], min_events: int = 20) -> Design:
    """Choose the levels of each covariate from the fitting gaps.

    Parameters
    ----------
    gaps : DataFrame
        Gaps with the covariate columns and ``event``.
    spec : Mapping of str to sequence of str
        Covariate name to preferred levels, reference first. The reference is
        the first of them present in the data (otherwise the most common
        level). Other levels found in the data are added after the listed ones.
    min_events : int
        Levels with fewer returns (events) than this get no column: they are
        merged into the reference, so the fit stays stable.

    Returns
    -------
    Design
    """
    levels: dict[str, tuple[str, ...]] = {}
    event = gaps["event"].to_numpy() == 1
    for cov, preferred in spec.items():
        if cov not in gaps.columns:
            raise CrmAnalysisError(f"unknown covariate {cov!r}; choose from the columns of survival_data: "
                                   f"{', '.join(map(str, gaps.columns))}")
        counts, events = _level_counts(gaps[cov], event)
        present = [lev for lev in preferred if lev in counts]
        if present:
            ref = present[0]
        else:  # the most common level, ties broken as pandas' value_counts does
            common = gaps[cov].astype("object").value_counts()
            ref = str(common.index[0]) if len(common) else ""
        others = [lev for lev in present[1:]] + sorted(str(v) for v in counts if v not in preferred)
        others = [lev for lev in others if lev != ref and events.get(lev, 0) >= min_events]
        levels[cov] = (ref, *others)
    return Design(levels)


def _level_counts(values: pd.Series, event: np.ndarray) -> tuple[dict, dict]:
    """Rows and events per level present (missing values left out), counted on categorical codes when possible."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        ok = codes >= 0
        k = len(values.cat.categories)
        n = np.bincount(codes[ok], minlength=k)
        n_ev = np.bincount(codes[ok & event], minlength=k)
        cats = values.cat.categories
        return ({cats[i]: int(n[i]) for i in np.flatnonzero(n)}, {cats[i]: int(n_ev[i]) for i in np.flatnonzero(n_ev)})
    values = values.astype("object")
    return values.value_counts().to_dict(), values[event].value_counts().to_dict()


def _level_codes(values: pd.Series, levels: Sequence[str]) -> np.ndarray:
    """Position of each value in `levels`; missing and unknown values give 0 (the reference)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        # look up the few categories, not every row
        lookup = np.append(pd.Index(levels).get_indexer(values.cat.categories.astype("object")), -1)
        code = lookup[values.cat.codes.to_numpy()]
    else:
        code = pd.Index(levels).get_indexer(values.astype("object").to_numpy())
    return np.where(code < 0, 0, code)
