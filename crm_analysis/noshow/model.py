"""The no-show risk model: a logistic regression with splines, per appointment.

:class:`NoShowRiskModel` fits, on the appointments whose outcome is known
(attended or no-show; cancelled ones excluded), the logit of a no-show on
the features of :func:`~crm_analysis.noshow.features.noshow_table`, all known
when the appointment's reminders were planned:

    logit p = b0 + cr(log1p(lead days), df=4) + b·min(earlier no-shows, cap)
              + b·min(earlier cancellations, cap) + cr(age, df=4) + weekday + hour band
              + department + first visit + planned reminder schedule

(``cr`` is patsy's natural cubic regression spline, centred; categories enter as pandas
categoricals, which patsy codes without a per-row pass). A feature that is
constant or mostly missing in the training data (e.g. the hour in an export
that records days only) is left out, and :attr:`NoShowRiskModel.dropped_`
says why. Rare category levels are merged into ``"other"``; a level not seen
in training is read as the most common one, and spline inputs are clipped to
the training range, so :meth:`NoShowRiskModel.predict` never fails on new
appointments.

Any other right-hand side can be given as `formula` (patsy syntax, columns of
the table), e.g. the demo generator's true form
``np.log1p(lead_days) + np.minimum(prior_no_shows, 3) + C(department)``.

The fit is :func:`crm_analysis.reminders.glm.fit_binomial` (``statsmodels``
GLM, Binomial, logit link) with errors clustered by patient.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import patsy

from crm_analysis.exceptions import InsufficientDataError
from crm_analysis.i18n import check_lang, label
from crm_analysis.noshow.features import FEATURE_COLUMNS
from crm_analysis.reminders.glm import fit_binomial

__all__ = ["NoShowRiskModel", "default_terms", "MIN_APPOINTMENTS", "MIN_NO_SHOWS"]

#: Fewest appointments with a known outcome, and fewest no-shows among them, the model is fitted on.
MIN_APPOINTMENTS = 200
MIN_NO_SHOWS = 20

_SPLINE = re.compile(r"\b(?:cr|bs|cc)\(\s*([A-Za-z_]\w*)")
_NAME = re.compile(r"[A-Za-z_]\w*")


def default_terms(lead_df: int = 4, age_df: int = 4, prior_cap: int = 5) -> dict[str, tuple[str, str]]:
    """The default model's ``(column, patsy term)`` per feature (keys of
    :data:`~crm_analysis.noshow.features.FEATURE_COLUMNS`)."""
    return {
        "lead": ("log_lead", f"cr(log_lead, df={lead_df}, constraints='center')"),
        "prior_no_shows": ("prior_no_shows", f"np.minimum(prior_no_shows, {prior_cap})"),
        "prior_cancellations": ("prior_cancellations", f"np.minimum(prior_cancellations, {prior_cap})"),
        "age": ("age", f"cr(age, df={age_df}, constraints='center')"),
        "weekday": ("weekday", "weekday"),
        "hour": ("hour_band", "hour_band"),
        "department": ("department", "department"),
        "first_visit": ("first_visit", "first_visit"),
        "reminder": ("reminder_plan", "reminder_plan"),
    }


def _feature_of(term: str) -> str:
    """The feature a patsy term reads (its term name when no known column appears in it)."""
    names = set(_NAME.findall(term))
    for feature, columns in FEATURE_COLUMNS.items():
        if names & set(columns):
            return feature
    return term


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class NoShowRiskModel:
    """Logistic no-show risk per appointment, with splines for lead time and age.

    Parameters
    ----------
    formula : str, optional
        Right-hand side in patsy syntax on the columns of
        :func:`~crm_analysis.noshow.features.noshow_table`. Default: the
        spline model of the module docstring, without the features that are
        constant or missing in the training data.
    features : sequence of str, optional
        With the default formula: the features to use (keys of
        :data:`~crm_analysis.noshow.features.FEATURE_COLUMNS`); default all.
        ``("prior_no_shows",)`` and ``("lead",)`` are the back-test's baselines.
    lead_df, age_df : int
        Degrees of freedom of the lead-time and age splines.
    prior_cap : int
        Earlier no-shows and cancellations are capped at this count.
    min_level_count : int
        Category levels with fewer training appointments are merged into ``"other"``.
    cov_type : str
        ``"cluster"`` (errors clustered by patient) or ``"nonrobust"``.

    Attributes
    ----------
    params_ : Series
        Coefficients (logit scale), by design column.
    cov_ : DataFrame
        Their covariance.
    formula_ : str
        The right-hand side fitted.
    dropped_ : dict of str to str
        Features left out of the default formula, with the reason.
    n_, n_no_shows_ : int
        Appointments fitted on and no-shows among them.
    risk_cuts_ : ndarray
        The 10 %, ..., 90 % quantiles of the training appointments' predicted risk (for risk deciles).

    Examples
    --------
    >>> model = NoShowRiskModel().fit(noshow_table(clinic, "2026-10-31"))  # doctest: +SKIP
    >>> model.predict(table).head()                                         # doctest: +SKIP
    """

    def __init__(self, formula: str | None = None, *, features=None, lead_df: int = 4, age_df: int = 4,
                 prior_cap: int = 5, min_level_count: int = 30, cov_type: str = "cluster"):
        self.formula = formula
        self.features = tuple(features) if features is not None else None
        self.lead_df = lead_df
        self.age_df = age_df
        self.prior_cap = prior_cap
        self.min_level_count = min_level_count
        self.cov_type = cov_type

    # ------------------------------------------------------------------ design
    def _choose_terms(self, table: pd.DataFrame) -> tuple[str, dict[str, str]]:
        terms = default_terms(self.lead_df, self.age_df, self.prior_cap)
        wanted = self.features if self.features is not None else tuple(terms)
        unknown = [f for f in wanted if f not in terms]
        if unknown:
            raise ValueError(f"unknown features {unknown}; choose from {list(terms)}")
        kept, dropped = [], {}
        for feature in wanted:
            column, term = terms[feature]
            if column not in table:
                dropped[feature] = f"column {column!r} is absent"
                continue
            values = table[column]
            if values.isna().mean() > 0.5:
                dropped[feature] = f"{column!r} is missing for most appointments"
                continue
            if values.dtype == object or isinstance(values.dtype, pd.CategoricalDtype):
                counts = values.astype(str).value_counts()
                if (counts >= self.min_level_count).sum() + (counts[counts < self.min_level_count].sum()
                                                             >= self.min_level_count) < 2:
                    dropped[feature] = f"{column!r} has one value only ({counts.index[0]!r})"
                    continue
            else:
                distinct = values.dropna().nunique()
                if distinct < 2:
                    dropped[feature] = f"{column!r} is constant"
                    continue
                df = re.search(r"df=(\d+)", term)
                if df and distinct <= int(df.group(1)) + 1:
                    term = column  # too few distinct values for the spline: a straight line
            kept.append(term)
        if not kept:
            raise InsufficientDataError(
                "noshow_risk", "The no-show risk model has no usable feature: every one is constant or missing.",
                "노쇼 위험 모형에 쓸 수 있는 변수가 없습니다 (모두 한 값이거나 비어 있음).")
        return " + ".join(kept), dropped

    def _prepare(self, table: pd.DataFrame, fitting: bool) -> pd.DataFrame:
        """The columns the formula reads, with fixed category levels, filled and clipped numbers."""
        if fitting:
            names = set(_NAME.findall(self.formula_))
            self.columns_ = [c for c in table.columns if c in names]
            splined = set(_SPLINE.findall(self.formula_))
            self.levels_, self.fill_, self.ranges_ = {}, {}, {}
            for c in self.columns_:
                v = table[c]
                if v.dtype == object or isinstance(v.dtype, pd.CategoricalDtype) or v.dtype == bool:
                    counts = v.astype(str).value_counts()
                    rare = counts.index[counts < self.min_level_count]
                    if len(rare) and counts[rare].sum() >= 1 and len(counts) - len(rare) >= 1:
                        counts = pd.concat([counts.drop(rare), pd.Series({"other": counts[rare].sum()})])
                    self.levels_[c] = list(counts.sort_values(ascending=False, kind="stable").index)
                else:
                    x = v.astype(float)
                    self.fill_[c] = float(x.median()) if x.notna().any() else 0.0
                    if c in splined:
                        self.ranges_[c] = (float(x.min()), float(x.max()))
        missing = [c for c in self.columns_ if c not in table]
        if missing:
            raise KeyError(f"the table lacks the model's columns {missing}; build it with noshow_table()")
        out = {}
        for c in self.columns_:
            v = table[c]
            if c in self.levels_:
                levels = self.levels_[c]
                s = v.astype(str)
                s = s.where(s.isin(levels), "other" if "other" in levels else levels[0])
                s = s.where(s.isin(levels), levels[0])
                out[c] = pd.Categorical(s.to_numpy(), categories=levels)
            else:
                x = v.astype(float).fillna(self.fill_[c]).to_numpy()
                if c in self.ranges_:
                    x = np.clip(x, *self.ranges_[c])
                out[c] = x
        return pd.DataFrame(out, index=table.index)

    def _design(self, table: pd.DataFrame) -> np.ndarray:
        frame = self._prepare(table, fitting=False)
        return np.asarray(patsy.build_design_matrices([self.design_info_], frame, NA_action="raise")[0])

    # ---------------------------------------------------------------- pickling
    def __getstate__(self) -> dict:
        """The fitted state without patsy's design info (which does not pickle): the formula, the column names
        and the state of each stateful transform (spline knots and centring constraints) instead."""
        state = dict(self.__dict__)
        info = state.pop("design_info_", None)
        if info is not None:
            transforms = {}
            for factor, factor_info in info.factor_infos.items():
                for name, obj in ((factor_info.state or {}).get("transforms") or {}).items():
                    transforms[(factor.name(), name)] = {k: (v.copy() if isinstance(v, np.ndarray) else v)
                                                         for k, v in vars(obj).items()}
            state["_design_state"] = {"column_names": list(info.column_names), "transforms": transforms}
        return state

    def __setstate__(self, state: dict) -> None:
        """Rebuild the design info from the formula on a small frame of the training levels and ranges, then put
        back each stateful transform's fitted state, so that predictions equal the original model's."""
        state = dict(state)
        design = state.pop("_design_state", None)
        self.__dict__.update(state)
        if design is not None:
            self.design_info_ = self._rebuild_design_info(design)

    def _rebuild_design_info(self, design: dict):
        n = max(50, *(len(v) for v in self.levels_.values())) if self.levels_ else 50
        probe = {}
        for c in self.columns_:
            if c in self.levels_:
                levels = self.levels_[c]
                probe[c] = pd.Categorical(np.resize(np.asarray(levels, dtype=object), n), categories=levels)
            elif c in self.ranges_:
                probe[c] = np.linspace(*self.ranges_[c], n)
            else:
                probe[c] = np.full(n, self.fill_[c])
        info = patsy.dmatrix(self.formula_, pd.DataFrame(probe), NA_action="raise", return_type="matrix").design_info
        restored = set()
        for factor, factor_info in info.factor_infos.items():
            for name, obj in ((factor_info.state or {}).get("transforms") or {}).items():
                saved = design["transforms"].get((factor.name(), name))
                if saved is None:
                    raise ValueError(f"the pickled no-show model has no state for {factor.name()!r}")
                obj.__dict__.clear()
                obj.__dict__.update(saved)
                restored.add((factor.name(), name))
        if list(info.column_names) != design["column_names"] or restored != set(design["transforms"]):
            raise ValueError("the pickled no-show model's design could not be rebuilt (columns differ): fit it again")
        return info

    # --------------------------------------------------------------------- fit
    def fit(self, table: pd.DataFrame) -> "NoShowRiskModel":
        """Fit on the appointments of `table` whose outcome is known.

        Parameters
        ----------
        table : DataFrame
            From :func:`~crm_analysis.noshow.features.noshow_table` (rows with a missing ``no_show``,
            i.e. cancelled or still booked, are left out).

        Returns
        -------
        NoShowRiskModel
            self, fitted.

        Raises
        ------
        InsufficientDataError
            Fewer than :data:`MIN_APPOINTMENTS` known outcomes or :data:`MIN_NO_SHOWS` no-shows, no
            usable feature, or a fit that does not converge.
        """
        known = table.loc[table["no_show"].notna().to_numpy()]
        y = known["no_show"].to_numpy(dtype=float)
        n_events = int(y.sum())
        if len(known) < MIN_APPOINTMENTS or min(n_events, len(y) - n_events) < MIN_NO_SHOWS:
            raise InsufficientDataError(
                "noshow_risk",
                f"The no-show risk model needs at least {MIN_APPOINTMENTS} attended or missed appointments with "
                f"{MIN_NO_SHOWS} no-shows and {MIN_NO_SHOWS} attended; the data has {len(y)} with {n_events} "
                "no-shows. Use a longer history.",
                f"노쇼 위험 모형에는 진료 여부가 확정된 예약 {MIN_APPOINTMENTS}건 이상(노쇼 {MIN_NO_SHOWS}건 이상)이 "
                f"필요하지만 {len(y)}건(노쇼 {n_events}건)뿐입니다. 더 긴 기간의 자료를 쓰세요.")
        if self.formula is None:
            self.formula_, self.dropped_ = self._choose_terms(known)
        else:
            self.formula_, self.dropped_ = self.formula, {}
        frame = self._prepare(known, fitting=True)
        x = patsy.dmatrix(self.formula_, frame, NA_action="raise", return_type="matrix")
        self.design_info_ = x.design_info
        x = np.asarray(x)
        names = list(self.design_info_.column_names)
        groups = pd.factorize(known["patient_id"].astype(str))[0] if "patient_id" in known else np.arange(len(y))
        res = fit_binomial(x, y, groups, names, self.cov_type)
        self.params_ = res.params
        self.cov_ = res.cov_params()
        self.bse_ = res.bse
        self.pvalues_ = res.pvalues
        self.n_, self.n_no_shows_ = len(y), n_events
        self.mean_design_ = x.mean(axis=0)
        self.groups_ = {}
        for term, sl in self.design_info_.term_name_slices.items():
            if term != "Intercept":
                self.groups_.setdefault(_feature_of(term), []).extend(range(sl.start, sl.stop))
        fitted = _expit(x @ self.params_.to_numpy())
        self.risk_cuts_ = np.quantile(fitted, np.linspace(0.1, 0.9, 9))
        self.observed_rate_ = float(y.mean())
        return self

    # ----------------------------------------------------------------- results
    @property
    def summary(self) -> pd.DataFrame:
        """Coefficients with 95 % CIs, p-values and odds ratios, one row per design column."""
        z = 1.959963984540054
        b, se = self.params_, self.bse_
        out = pd.DataFrame({"coef": b, "se": se, "lower": b - z * se, "upper": b + z * se, "p": self.pvalues_})
        out["odds_ratio"] = np.exp(out["coef"])
        out["or_lower"] = np.exp(out["lower"])
        out["or_upper"] = np.exp(out["upper"])
        out.index.name = "term"
        return out

    def _repr_html_(self) -> str:
        dropped = "".join(f"<li>{k}: {v}</li>" for k, v in self.dropped_.items())
        head = (f"<h4>No-show risk model (logistic)</h4><p>{self.n_:,} appointments, {self.n_no_shows_:,} "
                f"no-shows ({self.observed_rate_:.1%}); formula: <code>{self.formula_}</code></p>")
        if dropped:
            head += f"<p>Features left out:</p><ul>{dropped}</ul>"
        return head + self.summary.round(4).to_html()

    def predict(self, table: pd.DataFrame) -> pd.Series:
        """Predicted no-show probability of each appointment of `table` (index kept), as if not cancelled."""
        eta = self._design(table) @ self.params_.to_numpy()
        return pd.Series(_expit(eta), index=table.index, name="no_show_risk")

    def risk_decile(self, risk) -> np.ndarray:
        """Risk decile (1 = lowest 10 % of the training appointments' risk, ..., 10) of each probability."""
        return np.searchsorted(self.risk_cuts_, np.asarray(risk, dtype=float), side="right") + 1

    def contributions(self, table: pd.DataFrame) -> pd.DataFrame:
        """Per appointment and feature: its logit contribution above the training average.

        Sum over the feature's design columns of coefficient × (value − training mean); positive
        values raise the risk above that of an average appointment.
        """
        x = self._design(table) - self.mean_design_
        b = self.params_.to_numpy()
        cols = {f: x[:, idx] @ b[idx] for f, idx in self.groups_.items()}
        return pd.DataFrame(cols, index=table.index)

    def reasons(self, table: pd.DataFrame, lang: str = "ko") -> pd.Series:
        """The plain-language main reason of each appointment's risk.

        The feature contributing most above the average (:meth:`contributions`), in words, e.g.
        ``"이전 노쇼 2회"`` / ``"2 earlier no-shows"`` or ``"예약 후 45일 뒤 진료"`` /
        ``"booked 45 days ahead"``; when no feature raises the risk above average,
        ``"평균보다 높은 위험 요인 없음"`` / ``"no risk factor above average"``.

        Parameters
        ----------
        table : DataFrame
            From :func:`~crm_analysis.noshow.features.noshow_table`.
        lang : {"ko", "en"}

        Returns
        -------
        Series of str
            Indexed like `table`.
        """
        from crm_analysis.noshow.reasons import reason_texts

        check_lang(lang)
        contrib = self.contributions(table)
        if contrib.shape[1] == 0:
            return pd.Series(label("noshow_reason_none", lang), index=table.index, name="risk_reason")
        values = contrib.to_numpy()
        top = values.argmax(axis=1)
        positive = values[np.arange(len(values)), top] > 0
        feature = np.where(positive, np.asarray(contrib.columns, dtype=object)[top], None)
        return reason_texts(table, pd.Series(feature, index=table.index), lang)
