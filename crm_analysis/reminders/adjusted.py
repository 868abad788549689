"""Observational reminder effects: crude, Mantel–Haenszel and a standardised logistic model.

Outside a randomised pilot, reminders go only to appointments booked far
enough ahead, and those carry a higher no-show risk anyway; roll-outs coincide
with seasons and trends; the same patients come again and again. Three
estimates are shown side by side:

* :func:`crude_effect` — no-show rate of reminded vs not reminded
  appointments, unadjusted (what a naive report would say);
* :func:`mantel_haenszel` — among appointments that could have been reminded
  (enough lead time), a risk ratio pooled over lead-time bands
  (``statsmodels`` ``StratifiedTable``; Greenland–Robins interval);
* :class:`ReminderEffectModel` — a logistic model (GLM Binomial, errors
  clustered by patient) of no-show on a natural spline in log(1 + lead days),
  prior no-shows and visits, weekday, hour, department, age band, month of
  year, a linear trend and one indicator per received reminder step. It gives
  adjusted odds ratios and a **standardised (marginal) risk difference**:
  the mean, over a chosen group of appointments, of the predicted no-show
  probability with the reminders each actually received minus the same
  without any reminder, with a delta-method CI from the cluster-robust
  covariance.

The model matrix is built once per call with numpy (same columns and names as
the patsy formula in ``formula_``) and the GLM is fitted by Newton–Raphson in
:mod:`crm_analysis.reminders.glm`, with the CRV1 patient-clustered covariance
of ``statsmodels`` (a test checks both against ``statsmodels``' formula GLM).

All rates are no-show rates among non-cancelled appointments (see
:mod:`crm_analysis.reminders.analysis_table`).
"""

from __future__ import annotations

import math
from html import escape
from typing import Mapping

import numpy as np
import pandas as pd
import patsy
from scipy import sparse, stats
from statsmodels.stats.contingency_tables import StratifiedTable

from crm_analysis.estimates import Estimate
from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.reminders.analysis_table import step_columns
from crm_analysis.reminders.glm import fit_binomial
from crm_analysis.reminders.rules import load_rules

__all__ = ["crude_effect", "mantel_haenszel", "ReminderEffectModel", "period_masks"]

_CATEGORICAL = {"prior_no_shows": "prior_ns", "prior_visits_band": "prior_visits_band", "weekday": "weekday",
                "hour_band": "hour_band", "department": "department", "age_band": "age_band",
                "month_of_year": "month_of_year", "sex": "sex"}
_NUMERIC = {"years": "years"}


def _z(conf_level: float) -> float:
    return float(stats.norm.ppf(0.5 + conf_level / 2))


def _spline_info(term: str, leads: tuple[np.ndarray, np.ndarray]):
    """patsy's design info of the lead-time spline `term`, from the distinct lead times and their counts
    (the same knots as from every appointment's lead time)."""
    values, counts = leads
    lead = np.repeat(values, counts)
    # the design info without the matrix; patsy learns the knots from both chunks (all rows) and sees from the
    # first, one row, that the spline is numeric (one pass over the rows fewer)
    return patsy.incr_dbuilder(f"{term} - 1", lambda: iter([{"lead_days": lead[:1]}, {"lead_days": lead[1:]}]))


def _column(table: pd.DataFrame, name, rows=None):
    """``table[name]``, only the rows of the boolean mask `rows` if given (no copy of the whole table)."""
    return table[name] if rows is None else table[name][rows]


def period_masks(table: pd.DataFrame, rules=None) -> dict[str, np.ndarray]:
    """Eligible non-cancelled appointments of each roll-out period.

    Period k runs from roll-out k's date to the next roll-out (the last to the
    end of the data) and is named by its schedule. Without roll-outs in the
    rules there is one period, ``"all"``, covering the whole table.

    Returns
    -------
    dict of str to boolean ndarray
    """
    r = load_rules(rules)
    base = (table["analysed"] & table["eligible"]).to_numpy()
    rollouts = list(r["rollouts"] or [])
    if not rollouts:
        return {"all": base}
    out = {}
    dates = [pd.Timestamp(x["date"]) for x in rollouts] + [pd.Timestamp.max]
    for item, lo, hi in zip(rollouts, dates[:-1], dates[1:]):
        name = str(item.get("schedule") or f"from {lo:%Y-%m-%d}")
        inside = ((table["scheduled_at"] >= lo) & (table["scheduled_at"] < hi)).to_numpy()
        out[name] = base & inside
    return out


def _need_rows(n: int, what: str) -> None:
    if n == 0:
        raise CrmAnalysisError(f"{what}: no appointments to analyse. Check as_of, the appointments table and the "
                               "reminder rules (eligible_min_lead_days, rollouts).")


def crude_effect(table: pd.DataFrame, since: str | pd.Timestamp | None = None, conf_level: float = 0.95) -> Estimate:
    """Unadjusted difference in no-show rate, reminded minus not reminded.

    Parameters
    ----------
    table : DataFrame
        From :func:`~crm_analysis.reminders.analysis_table.appointment_table`.
    since : date, optional
        Only appointments scheduled on or after it (e.g. the first roll-out).
    conf_level : float

    Returns
    -------
    Estimate
        Risk difference with the score (Miettinen–Nurminen) interval of
        ``confint_proportions_2indep`` and the p-value of the matching score test
        ``test_proportions_2indep``; extras hold both rates
        and counts.
    """
    rows = table["analysed"].to_numpy(dtype=bool, copy=True)
    if since is not None:
        rows = rows & (table["scheduled_at"] >= pd.Timestamp(since)).to_numpy()
    y = table["no_show"].to_numpy()[rows]
    x = table["reminded"].to_numpy()[rows].astype(bool)
    _need_rows(int(rows.sum()), "crude reminder comparison")
    c1, n1, c0, n0 = int(y[x].sum()), int(x.sum()), int(y[~x].sum()), int((~x).sum())
    if n1 == 0 or n0 == 0:
        raise CrmAnalysisError("crude reminder comparison needs both reminded and not reminded appointments; "
                               f"found {n1} reminded and {n0} not reminded")
    from crm_analysis.reminders.pilot import two_proportions

    lo, hi, p_value, _ = two_proportions(c1, n1, c0, n0, "diff", 1 - conf_level)
    return Estimate(c1 / n1 - c0 / n0, lo, hi, p_value, "crude difference of proportions (score CI and test)",
                    n1 + n0, "risk_difference", "no-show rate, reminded minus not reminded (unadjusted)", conf_level,
                    {"rate_reminded": c1 / n1, "rate_not_reminded": c0 / n0, "n_reminded": n1, "n_not_reminded": n0})


def mantel_haenszel(table: pd.DataFrame, rules=None, conf_level: float = 0.95) -> Estimate:
    """Mantel–Haenszel risk ratio of no-show, reminded vs not, pooled over lead-time bands.

    Restricted to eligible (long enough lead time) non-cancelled appointments.
    The point estimate is ``StratifiedTable.riskratio_pooled``; the interval
    uses the Greenland–Robins (1985) variance of the log MH risk ratio; the
    p-value is the Cochran–Mantel–Haenszel test (``test_null_odds``).
    Strata without both groups carry no information and are dropped.
    """
    rows = (table["analysed"] & table["eligible"]).to_numpy()
    _need_rows(int(rows.sum()), "Mantel-Haenszel estimate")
    d = pd.DataFrame({"band": table["lead_band"].to_numpy()[rows], "x": table["reminded"].to_numpy()[rows],
                      "y": table["no_show"].to_numpy()[rows].astype(int)})
    counts = d.groupby(["band", "x", "y"]).size().unstack(["x", "y"], fill_value=0)
    counts = counts.reindex(columns=pd.MultiIndex.from_product([[True, False], [1, 0]]), fill_value=0)
    arr = counts.to_numpy().reshape(-1, 2, 2)  # [a b; c d]: exposed events/non-events, unexposed ...
    n1, n0 = arr[:, 0].sum(axis=1), arr[:, 1].sum(axis=1)
    arr = arr[(n1 > 0) & (n0 > 0)]
    if len(arr) == 0:
        raise CrmAnalysisError("Mantel-Haenszel estimate: no lead-time band has both reminded and not reminded "
                               "appointments")
    st = StratifiedTable([t.astype(float) for t in arr])
    rr = float(st.riskratio_pooled)
    a, b, c, dd = (arr[:, 0, 0], arr[:, 0, 1], arr[:, 1, 0], arr[:, 1, 1])
    m1, m0 = a + b, c + dd
    n = m1 + m0
    r_ = (a * m0 / n).sum()
    s_ = (c * m1 / n).sum()
    p_ = ((m1 * m0 * (a + c) - a * c * n) / n ** 2).sum()
    se = math.sqrt(p_ / (r_ * s_))
    z = _z(conf_level)
    test = st.test_null_odds(correction=False)
    return Estimate(rr, rr * math.exp(-z * se), rr * math.exp(z * se), float(test.pvalue),
                    "Mantel-Haenszel risk ratio over lead-time bands (Greenland-Robins CI)", int(n.sum()),
                    "risk_ratio", "no-show risk ratio, reminded vs not, eligible appointments, within lead-time bands",
                    conf_level, {"strata": int(len(arr)), "se_log": se})


class ReminderEffectModel:
    """Logistic no-show model with received reminder steps, standardised to risk differences.

    Parameters
    ----------
    rules : path, mapping or None
        Reminder rules; the ``model`` section sets the spline degrees of
        freedom, the covariates, the covariance type and rare-level merging.
    conf_level : float
        Level of every interval, default 0.95.

    Attributes
    ----------
    result_ : statsmodels GLMResults
        The fitted model (cluster-robust covariance by patient).
    formula_ : str
    steps_ : list of str
        The ``rem_<step>`` exposure terms.
    levels_ : dict
        Category levels kept per covariate (rarer ones merged into "other").
    n_ : int
        Appointments in the fit.

    Examples
    --------
    >>> model = ReminderEffectModel().fit(table)              # doctest: +SKIP
    >>> model.marginal_effect(table, mask)                    # doctest: +SKIP
    """

    def __init__(self, rules=None, conf_level: float = 0.95):
        self.rules = load_rules(rules)
        self.conf_level = conf_level

    # ----------------------------------------------------------------- data
    def _raw(self, table: pd.DataFrame, src: str, rows=None) -> tuple[np.ndarray, np.ndarray]:
        """A categorical covariate as (codes, distinct values as strings); prior no-shows capped at "3+".

        Only the distinct values are converted to strings (fast on 100,000s of rows).
        """
        v = _column(table, src, rows)
        v = v.clip(lower=0) if src == "lead_days" else v
        codes, uniques = pd.factorize(v)  # about half the time of use_na_sentinel=False on text
        if len(codes) and codes.min() < 0:  # missing values: a level of their own, numbered in order
            codes, uniques = pd.factorize(v, use_na_sentinel=False)
        u = np.asarray(uniques)
        if src == "prior_no_shows":
            u = np.minimum(u, 3).astype(str)
            u = np.where(u == "3", "3+", u)
        return codes, u.astype(str).astype(object)

    def _codes(self, table: pd.DataFrame, name: str, src: str, rows=None, raw=None) -> np.ndarray:
        """Integer codes into ``categories_[name]``: rare levels -> "other", unseen -> the reference level.

        `raw`: the column's :meth:`_raw` codes, when already at hand.
        """
        codes, u = self._raw(table, src, rows) if raw is None else raw
        cats = self.categories_[name]
        levels = self.levels_.get(name)
        if levels is not None:
            u = np.where(pd.Index(u).isin(levels), u, "other")
        ucodes = pd.Index(cats).get_indexer(u)
        ucodes[ucodes < 0] = cats.index(self.reference_[name])
        return ucodes[codes]

    def _design(self, table: pd.DataFrame, steps: dict | int | None = None, rows=None, raw=None) -> np.ndarray:
        """The model matrix of `table` (columns ``names_``; only `rows`, a boolean mask, if given), with reminder
        steps as received or overridden; `raw`: :meth:`_raw` codes already at hand, by column."""
        n = len(table) if rows is None else int(np.count_nonzero(rows))
        k = len(self.names_)
        x = np.zeros((n, k), order="F")  # column-major: the GLM's products and the column fills run faster
        flat = x.reshape(-1, order="F")  # one-hot cells are set through flat positions (a view)
        measured = []  # columns of measured values, the only ones that can be missing or infinite
        j = 0
        for kind, name, src, width in self.blocks_:
            if kind == "intercept":
                x[:, j] = 1.0
            elif kind == "categorical":
                cats = self.categories_[name]
                ref = cats.index(self.reference_[name])
                column = np.arange(len(cats)) - (np.arange(len(cats)) > ref)  # the reference has no column
                codes = self._codes(table, name, src, rows, (raw or {}).get(src))
                hit = np.flatnonzero(codes != ref)
                flat[(j + column[codes[hit]]) * n + hit] = 1.0
            elif kind == "spline":
                lead = _column(table, "lead_days", rows).clip(lower=0).to_numpy(dtype=float)
                inverse, values = pd.factorize(lead, use_na_sentinel=False)  # each distinct lead time's basis, once
                basis = np.asarray(patsy.build_design_matrices([self.spline_info_], {"lead_days": values})[0])
                x[:, j:j + width] = basis[inverse]
                measured += range(j, j + width)
            elif kind == "numeric":
                x[:, j] = _column(table, src, rows).to_numpy(dtype=float)
                measured.append(j)
            j += width
        j = k - len(self.steps_)  # the step indicators are the last columns
        x[:, j:] = self._steps_under(_column(table, self.steps_, rows).to_numpy(dtype=float), steps)
        if not np.isfinite(x[:, measured + list(range(j, k))]).all():
            raise CrmAnalysisError("reminder effect model: missing or infinite values in lead_days, years or the "
                                   "reminder step columns; rebuild the table with appointment_table()")
        return x

    def _steps_under(self, received: np.ndarray, steps: dict | int | None) -> np.ndarray:
        """Step columns (``steps_``) as received, or overridden by `steps` (0/1 for all, or per step; None keeps)."""
        out = received.copy()
        for i, col in enumerate(self.steps_):
            value = steps.get(col) if isinstance(steps, dict) else steps
            if value is not None:
                out[:, i] = value
        return out

    def fit(self, table: pd.DataFrame) -> "ReminderEffectModel":
        """Fit on the non-cancelled appointments of `table` (an analysis table); returns self.

        The model matrix is built once with numpy (treatment-coded categories
        with patsy's column names, patsy's natural cubic spline basis ``cr``
        in log(1 + lead days)) and the logistic GLM is fitted by Newton–Raphson
        with the patient-clustered (CRV1) covariance of ``statsmodels``.
        """
        cfg = self.rules["model"]
        rows = table["analysed"].to_numpy(dtype=bool)  # columns are read for these rows (no copy of the table)
        _need_rows(int(rows.sum()), "reminder effect model")
        self.steps_ = [c for c in step_columns(table) if _column(table, c, rows).sum() > 0]
        if not self.steps_:
            raise CrmAnalysisError("reminder effect model: no appointment received a reminder, so there is "
                                   "no effect to estimate")
        self.covariates_ = [c for c in cfg["covariates"] if c in table.columns]
        self.levels_, self.categories_, self.reference_ = {}, {}, {}
        min_count = int(cfg["min_level_count"])
        cat_terms, raw = [], {}
        for src, name in _CATEGORICAL.items():
            if src not in self.covariates_:
                continue
            codes, u = raw[src] = self._raw(table, src, rows)
            # counted on integer codes numbered in order of first appearance, as pandas numbers the texts,
            # so value_counts orders ties exactly as on the texts (the reference level depends on it)
            level, labels = pd.factorize(u)
            labels = np.asarray(labels, dtype=object)
            counts = pd.Series(level[codes]).value_counts()
            keep = list(labels[counts.index[counts >= min_count]])
            if len(keep) < 2 and (len(keep) == len(counts) or counts.sum() - counts[counts >= min_count].sum()
                                  < min_count):
                self.covariates_.remove(src)  # a single level carries no information
                continue
            self.levels_[name] = keep
            merged, merged_labels = pd.factorize(np.where(pd.Index(labels).isin(keep), labels, "other"))
            counts = pd.Series(merged[level[codes]]).value_counts()
            merged_labels = np.asarray(merged_labels, dtype=object)
            self.categories_[name] = sorted(merged_labels[counts.index])
            self.reference_[name] = merged_labels[counts.index[0]]
            cat_terms.append((src, name))
        lead = _column(table, "lead_days", rows).clip(lower=0)
        blocks, names = [("intercept", "Intercept", None, 1)], ["Intercept"]
        if lead.nunique() <= 5:  # too few lead times for a spline: one level each
            self.levels_["lead_days"] = None
            self.categories_["lead_days"] = sorted(str(v) for v in lead.unique())
            self.categories_["lead_days"].sort(key=float)
            self.reference_["lead_days"] = self.categories_["lead_days"][0]
            cat_terms.insert(0, ("lead_days", "lead_days"))
        for src, name in cat_terms:
            ref = self.reference_[name]
            term = f"C({name})" if src == "lead_days" else f"C({name}, Treatment(reference={ref!r}))"
            levels = [c for c in self.categories_[name] if c != ref]
            blocks.append(("categorical", name, src, len(levels)))
            names += [f"{term}[T.{c}]" for c in levels]
        if "lead_days" not in self.categories_:
            term = f"cr(np.log1p(lead_days), df={int(cfg['lead_spline_df'])}, constraints='center')"
            # kept to rebuild the basis after unpickling (patsy's design info does not pickle)
            self._spline_leads = np.unique(lead.to_numpy(dtype=float), return_counts=True)
            self.spline_info_ = _spline_info(term, self._spline_leads)
            blocks.append(("spline", term, "lead_days", len(self.spline_info_.column_names)))
            names += list(self.spline_info_.column_names)
        for src, name in _NUMERIC.items():
            if src in self.covariates_ and _column(table, src, rows).astype(float).std() > 0:
                blocks.append(("numeric", name, src, 1))
                names.append(name)
        blocks += [("step", s, s, 1) for s in self.steps_]
        names += self.steps_
        self.blocks_, self.names_ = blocks, names
        terms = [b[1] for b in blocks if b[0] == "spline"] + ["C(lead_days)"] * ("lead_days" in self.categories_)
        terms += [f"C({name}, Treatment(reference={self.reference_[name]!r}))" for src, name in cat_terms
                  if src != "lead_days"]
        terms += [b[1] for b in blocks if b[0] in ("numeric", "step")]
        self.formula_ = "no_show ~ " + " + ".join(terms)  # as patsy would write it (same columns)
        groups = pd.factorize(_column(table, "patient_id", rows))[0]
        x = self._design(table, rows=rows, raw=raw)
        y = _column(table, "no_show", rows).to_numpy(dtype=float)
        self.result_ = fit_binomial(x, y, groups, names, cfg["cov_type"])
        self.n_ = len(y)
        self.n_patients_ = int(groups.max() + 1)
        return self

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("spline_info_", None)  # rebuilt from the lead times in __setstate__
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        spline = [b for b in state.get("blocks_", ()) if b[0] == "spline"]
        if spline and "_spline_leads" in state:
            self.spline_info_ = _spline_info(spline[0][1], state["_spline_leads"])

    def input_columns(self, table: pd.DataFrame) -> list[str]:
        """The columns of `table` the model reads, besides the ``rem_`` step indicators."""
        wanted = ["analysed", "no_show", "patient_id", "lead_days", *self.rules["model"]["covariates"]]
        return [c for c in dict.fromkeys(wanted) if c in table.columns]

    def _check_fitted(self) -> None:
        if not hasattr(self, "result_"):
            raise CrmAnalysisError("ReminderEffectModel is not fitted yet: call .fit(table) first")

    # ------------------------------------------------------------ outputs
    @property
    def summary(self) -> pd.DataFrame:
        """Coefficients as odds ratios with CIs and p-values (one row per term)."""
        self._check_fitted()
        res = self.result_
        ci = res.conf_int(alpha=1 - self.conf_level)
        return pd.DataFrame({"coef": res.params, "se": res.bse, "odds_ratio": np.exp(res.params),
                             "ci_low": np.exp(ci[0]), "ci_high": np.exp(ci[1]), "p_value": res.pvalues})

    def predict_proba(self, table: pd.DataFrame, steps: dict | int | None = None) -> np.ndarray:
        """Predicted no-show probability of each row of `table`.

        Parameters
        ----------
        table : DataFrame
        steps : dict or int, optional
            Counterfactual reminder steps: ``0`` for "no reminder", or a dict
            like ``{"rem_2h": 0}`` overriding some steps. None: as received.
        """
        self._check_fitted()
        x = self._design(table, steps)
        return 1.0 / (1.0 + np.exp(-(x @ self.result_.params.to_numpy())))

    def contrast(self, table: pd.DataFrame, treated: dict | int | None, control: dict | int | None, rows=None):
        """Predicted probabilities of the rows under two scenarios, with the pieces of their model matrices.

        For delta-method gradients of quantities built from the probabilities (as
        :class:`~crm_analysis.reminders.bookings.BookingEffectModel` combines two models). One design build.

        Parameters
        ----------
        table : DataFrame
        treated, control : dict, int or None
            Reminder steps of each scenario, as in :meth:`predict_proba`.
        rows : boolean array, optional
            The rows of `table` (default all).

        Returns
        -------
        tuple
            ``(p1, p0, xc, s1, s0)``: probabilities under `treated` and `control`, the covariate columns
            (shared; the first columns of ``names_``) and the step columns under each scenario (the last).
        """
        beta = self.result_.params.to_numpy()
        x = self._design(table, None, rows)
        j = len(self.names_) - len(self.steps_)  # the step indicators are the last columns
        xc, received = x[:, :j], x[:, j:]
        s1, s0 = self._steps_under(received, treated), self._steps_under(received, control)
        eta = xc @ beta[:j]
        p1, p0 = 1 / (1 + np.exp(-(eta + s1 @ beta[j:]))), 1 / (1 + np.exp(-(eta + s0 @ beta[j:])))
        return p1, p0, xc, s1, s0

    def marginal_effect(self, table: pd.DataFrame, mask=None, treated: dict | int | None = None,
                        control: dict | int = 0, estimand: str = "") -> tuple[Estimate, Estimate]:
        """Standardised risk difference and risk ratio over the rows of `table` in `mask`.

        The mean predicted no-show probability under `treated` (default: the
        reminders each appointment actually received) minus that under
        `control` (default: no reminder), with delta-method CIs from the
        cluster-robust covariance. The estimand is conditional on the chosen
        appointments (their covariates and received reminders are held fixed).

        Returns
        -------
        (Estimate, Estimate)
            Risk difference and risk ratio.

        See Also
        --------
        marginal_effects : several treatments over the same appointments.
        """
        return self.marginal_effects(table, {"": treated}, mask, control, estimand)[""]

    def marginal_effects(self, table: pd.DataFrame, treated: Mapping[str, dict | int | None], mask=None,
                         control: dict | int = 0, estimand: str | Mapping[str, str] = "") -> dict[str, tuple]:
        """:meth:`marginal_effect` of several treatments against one control, over the same rows.

        The model matrix of the rows is built once.

        Parameters
        ----------
        table : DataFrame
        treated : mapping of str to (dict, int or None)
            Name -> treatment (as in :meth:`marginal_effect`).
        mask : boolean array, optional
        control : dict or int
        estimand : str or mapping of str to str
            One description for all, or one per name.

        Returns
        -------
        dict of str to (Estimate, Estimate)
            Risk difference and risk ratio per name of `treated`.
        """
        self._check_fitted()
        rows = None if mask is None else np.asarray(mask, dtype=bool)
        n = len(table) if rows is None else int(rows.sum())
        _need_rows(n, "marginal reminder effect")
        beta = self.result_.params.to_numpy()
        cov = self.result_.cov_params().to_numpy()
        x = self._design(table, None, rows)
        j = len(self.names_) - len(self.steps_)  # the step indicators are the last columns
        xc, received = x[:, :j], x[:, j:]
        eta = xc @ beta[:j]
        n_patients = int(_column(table, "patient_id", rows).nunique())

        def mean_and_gradient(spec):  # mean(p) and d mean(p) / d beta under one scenario
            steps = self._steps_under(received, spec)
            p = 1 / (1 + np.exp(-(eta + steps @ beta[j:])))
            w = p * (1 - p)
            return p.mean(), np.concatenate([w @ xc, w @ steps]) / n

        m0, d0 = mean_and_gradient(control)
        out = {}
        for key, spec in treated.items():
            m1, d1 = mean_and_gradient(spec)
            what = estimand if isinstance(estimand, str) else estimand[key]
            out[key] = self._effect_estimates(m1, m0, d1, d0, cov, n, n_patients, what)
        return out

    def _effect_estimates(self, m1: float, m0: float, d1: np.ndarray, d0: np.ndarray, cov: np.ndarray, n: int,
                          n_patients: int, estimand: str) -> tuple[Estimate, Estimate]:
        """Risk difference and ratio of two mean probabilities, with delta-method CIs from their gradients."""
        grad = d1 - d0
        se = math.sqrt(max(grad @ cov @ grad, 0.0))
        z = _z(self.conf_level)
        rd = m1 - m0
        p_rd = 2 * stats.norm.sf(abs(rd) / se) if se > 0 else float("nan")
        extras = {"mean_p_treated": m1, "mean_p_control": m0, "se": se, "n_patients": n_patients}
        method = "logistic GLM, standardised, delta method, patient-clustered SE"
        rd_est = Estimate(rd, rd - z * se, rd + z * se, p_rd, method, n, "risk_difference", estimand,
                          self.conf_level, extras)
        glog = d1 / m1 - d0 / m0
        se_log = math.sqrt(max(glog @ cov @ glog, 0.0))
        lrr = math.log(m1 / m0)
        p_rr = 2 * stats.norm.sf(abs(lrr) / se_log) if se_log > 0 else float("nan")
        low, high = np.exp([lrr - z * se_log, lrr + z * se_log])  # inf, not OverflowError, when se_log is huge
        rr_est = Estimate(m1 / m0, float(low), float(high), p_rr, method, n,
                          "risk_ratio", estimand, self.conf_level, {**extras, "se_log": se_log})
        return rd_est, rr_est

    def avoided_by_group(self, table: pd.DataFrame, groups, mask=None) -> pd.DataFrame:
        """No-shows avoided (expected, with CI) per group: sum over rows of p(no reminder) − p(as received).

        Parameters
        ----------
        groups : array-like
            A group label per row of `table` (e.g. the month).
        mask : boolean array, optional
            Rows to count (default: every non-cancelled row).
        """
        self._check_fitted()
        mask = table["analysed"].to_numpy() if mask is None else np.asarray(mask, dtype=bool)
        g = np.asarray(groups)[mask]
        p1, p0, xc, s1, s0 = self.contrast(table, None, 0, mask)
        cov = self.result_.cov_params().to_numpy()
        codes, labels = pd.factorize(pd.Series(g), sort=True)
        onehot = sparse.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))),
                                   shape=(len(labels), len(codes)))
        w1, w0 = p1 * (1 - p1), p0 * (1 - p0)
        grad = np.hstack([np.asarray(onehot @ (xc * (w0 - w1)[:, None])),
                          np.asarray(onehot @ (s0 * w0[:, None]) - onehot @ (s1 * w1[:, None]))])
        avoided = pd.Series(onehot @ (p0 - p1), index=pd.Index(labels))
        se = np.sqrt(np.einsum("ij,jk,ik->i", grad, cov, grad))
        z = _z(self.conf_level)
        out = pd.DataFrame({"no_shows_avoided": avoided.to_numpy(), "ci_low": avoided.to_numpy() - z * se,
                            "ci_high": avoided.to_numpy() + z * se}, index=avoided.index)
        return out

    def odds_ratio(self, steps: list[str] | None = None) -> Estimate:
        """Adjusted odds ratio of receiving all of `steps` (default: every step term) vs none."""
        self._check_fitted()
        steps = self.steps_ if steps is None else [s if s.startswith("rem_") else f"rem_{s}" for s in steps]
        missing = [s for s in steps if s not in self.steps_]
        if missing:
            raise CrmAnalysisError(f"no reminder step {missing} in the model; available: {self.steps_}")
        names = list(self.result_.params.index)
        r = np.zeros(len(names))
        for s in steps:
            r[names.index(s)] = 1.0
        est = float(r @ self.result_.params.to_numpy())
        se = math.sqrt(max(float(r @ self.result_.cov_params().to_numpy() @ r), 0.0))
        p_value = 2 * stats.norm.sf(abs(est) / se) if se > 0 else float("nan")
        z = _z(self.conf_level)
        label = "+".join(s[4:] for s in steps)
        return Estimate(math.exp(est), math.exp(est - z * se), math.exp(est + z * se), float(p_value),
                        "logistic GLM, patient-clustered SE", self.n_, "odds_ratio",
                        f"adjusted odds ratio of no-show, reminder steps {label} received vs none", self.conf_level,
                        {"log_odds": est, "se_log": se})

    def __repr__(self) -> str:
        if not hasattr(self, "result_"):
            return "ReminderEffectModel(not fitted)"
        return f"ReminderEffectModel(n={self.n_:,}, steps={[s[4:] for s in self.steps_]})"

    def _repr_html_(self) -> str:
        if not hasattr(self, "result_"):
            return "<p>ReminderEffectModel (not fitted)</p>"
        rows = self.summary.loc[self.steps_].round(3)
        return (f"<h4>ReminderEffectModel</h4><p>{escape(self.formula_)}<br>n = {self.n_:,} appointments, "
                f"{self.n_patients_:,} patients</p>" + rows.to_html())
