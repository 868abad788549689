"""The churn fitter: a Cox model of the time from a visit to the next one.

:class:`ChurnModel` fits a lifelines :class:`~lifelines.CoxPHFitter` to the
per-gap survival data of :func:`~crm_analysis.churn.survival_data`, checks
proportional hazards, fits a Weibull AFT model as the parametric alternative,
and predicts for every patient, *given the days already elapsed since the last
visit*:

- ``p_return_<h>d``: P(return within h days | no return yet), lifelines'
  ``conditional_after``: ``1 − S(e + h | x) / S(e | x)`` with e the elapsed
  days;
- ``p_return_ever``: P(any return), the long-absence tail included;
- ``expected_days``: the restricted mean days to return within
  ``restricted_days`` (365 by default), i.e. E[min(T − e, R) | T > e]. The
  baseline is improper (some patients never return), so an unrestricted mean
  does not exist; a patient unlikely ever to return gets a value near R;
- ``median_days``: conditional median days to return (NaN when a return
  within the longest gap observed is less likely than not);
- ``usual_interval_days``: the patient's own median gap when they have at
  least ``min_own_gaps`` completed gaps, otherwise the model's median gap for
  their covariates among those who return;
- ``overdue_ratio``: elapsed days / usual interval (2.0 = twice as long as
  usual).

Predictions are computed directly from the fitted baseline cumulative hazard
on a whole-day grid (the same linear interpolation lifelines uses), so a
million patients take seconds; a test checks them against lifelines'
``predict_survival_function(..., conditional_after=...)``.

Long absences: the Breslow baseline stops at the longest gap in the data (no
return at all after it) and is noisy where few gaps are still open, so a
horizon reaching past the data used to be silently capped and long-absent
patients looked lost. Beyond the *splice day* (the longest gap with at least
``model.tail_min_at_risk`` gaps still open) the baseline follows a parametric
tail fitted to the long gaps (:mod:`crm_analysis.churn.tail`: power law or
Gompertz, whichever fits better, with a share who never return when its total
hazard is finite); :attr:`ChurnModel.tail_` describes it and ``notes_`` says
it in a sentence. A horizon longer than any gap in the data warns
(:class:`~crm_analysis.exceptions.DataQualityWarning`). ``model.tail: false``
restores the capped baseline (and says so). The back-test reports the
resulting calibration.

Speed: gaps beyond ``max_gaps`` are sampled (seeded, uniformly over gaps)
before fitting, and identical rows (all covariates are categorical and
durations whole days) are merged into frequency weights
(:meth:`~crm_analysis.churn.design.Design.compress`). With integer frequency
weights lifelines gives the same estimates and model-based standard errors as
the uncompressed fit. ``robust=True`` instead fits uncompressed rows with
standard errors clustered on the patient (lifelines ``cluster_col``), which is
safer for real data with patient-level dependence between gaps, but slower.
The hazard-ratio table and plot say which kind of interval they show.

Convergence: lifelines only *warns* when Newton–Raphson does not converge (for
example when a covariate level separates returners from non-returners and its
coefficient runs off towards infinity). :meth:`ChurnModel.fit` turns such a
warning of the Cox fit into a :class:`~crm_analysis.exceptions.ConvergenceError`
(the monthly run then skips the churn sections with its one-sentence reason)
instead of returning nonsense coefficients; a Weibull alternative that does not
converge is left out with a :class:`~crm_analysis.exceptions.ConvergenceWarning`
and a note in :attr:`ChurnModel.notes_`.
"""

from __future__ import annotations

import warnings
from html import escape
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from crm_analysis.churn.design import learn_design
from crm_analysis.churn.rules import load_churn_rules
from crm_analysis.churn.survival_data import (PREDICTION_COVARIATES, TRUTH_COVARIATES, current_gaps,
                                             sorted_by_patient_and_day, survival_data)
from crm_analysis.churn.tail import fit_return_tail, no_return_tail
from crm_analysis.exceptions import (ConvergenceError, ConvergenceWarning, CrmAnalysisError, DataQualityWarning,
                                     InsufficientDataError, shorten)
from crm_analysis.sufficiency import require
from crm_analysis.threads import one_blas_thread

__all__ = ["ChurnModel", "HORIZONS", "CI_ROBUST", "CI_MODEL_BASED"]

#: Default prediction horizons (days).
HORIZONS: tuple[int, ...] = (30, 90, 180)

#: ``ci_method`` of the hazard-ratio table: intervals that allow for a patient's repeated gaps ...
CI_ROBUST = "patient-clustered (robust)"
#: ... and intervals that treat every gap as independent (narrower when a patient's gaps are alike).
CI_MODEL_BASED = "model-based (gaps treated as independent)"

#: The Cox fit's name in messages (English, Korean).
_COX = ("Cox model", "콕스 모형")
#: lifelines' warning before a fit about a nearly constant column: advice, not a failed fit.
_LOW_VARIANCE_ADVICE = "have very low variance. This may harm convergence"


class ChurnModel:
    """Cox proportional-hazards model of return to the clinic, with a Weibull AFT alternative.

    Parameters
    ----------
    covariates : {"prediction", "truth"} or mapping, optional
        ``"prediction"``: the richer time-varying description
        (:data:`~crm_analysis.churn.survival_data.PREDICTION_COVARIATES`);
        ``"truth"``: the demo generator's fixed covariates
        (:data:`~crm_analysis.churn.survival_data.TRUTH_COVARIATES`); or a
        mapping covariate → preferred levels (reference first). Default from
        the rules (``model.covariates``).
    rules : path, mapping or None
        Churn rules (:func:`~crm_analysis.churn.load_churn_rules`); the
        ``model`` section gives the defaults of the settings below.
    max_gaps, penalizer, weibull_max_gaps, ph_test_gaps, restricted_days, min_own_gaps, seed : optional
        Override the rules' ``model`` settings.
    tail, tail_start_quantile, tail_min_at_risk : optional
        Override the rules' long-absence tail settings (``tail=False``: no return after the longest gap).
    weibull : bool
        Also fit the Weibull AFT alternative (default True).
    ph_test : bool
        Run the proportional-hazards check (default True). A back-test, which
        never reports it, switches it off to save a Cox refit.
    robust : bool
        Cluster-robust standard errors by patient (slower; no compression).
    min_events : int
        Levels with fewer returns get no column (merged into the reference).

    Attributes
    ----------
    as_of_ : Timestamp
    design_ : Design
    cox_ : lifelines.CoxPHFitter
    weibull_ : lifelines.WeibullAFTFitter or None
    tail_ : ReturnTail
        The baseline's long-absence tail beyond ``tail_.splice_day`` (:mod:`crm_analysis.churn.tail`).
    max_day_ : int
        The longest gap in the fitting data (days).
    current_ : DataFrame
        Each patient's open gap at ``as_of_`` (what predictions start from).
    n_gaps_, n_fit_gaps_, n_fit_rows_, n_patients_ : int
        Gaps with a positive duration, gaps used in the fit, rows after
        merging identical gaps into weights, patients.
    ph_test_ : DataFrame
        Proportional-hazards test per covariate (Schoenfeld residuals, rank
        time transform) on a sample of ``ph_test_gaps`` fitting gaps.
    check_gaps_ : DataFrame
        A seeded sample of the fitting gaps used for the checks.
    notes_ : list of str
        What the fit left out and why (e.g. a Weibull alternative that did not converge).

    Examples
    --------
    >>> model = ChurnModel().fit(clinic, "2026-10-31")            # doctest: +SKIP
    >>> model.summary                                              # doctest: +SKIP
    >>> model.predict_return().head()                              # doctest: +SKIP
    """

    def __init__(self, covariates: str | Mapping[str, Sequence[str]] | None = None, *, rules=None,
                 max_gaps: int | None = None, penalizer: float | None = None, weibull: bool = True,
                 weibull_max_gaps: int | None = None, ph_test_gaps: int | None = None,
                 restricted_days: int | None = None, min_own_gaps: int | None = None, seed: int | None = None,
                 robust: bool = False, min_events: int = 20, ph_test: bool = True, tail: bool | None = None,
                 tail_start_quantile: float | None = None, tail_min_at_risk: int | None = None):
        overrides = {k: v for k, v in dict(covariates=covariates if isinstance(covariates, str) else None,
                                           max_gaps=max_gaps, penalizer=penalizer,
                                           weibull_max_gaps=weibull_max_gaps, ph_test_gaps=ph_test_gaps,
                                           restricted_days=restricted_days, min_own_gaps=min_own_gaps,
                                           seed=seed, tail=tail, tail_start_quantile=tail_start_quantile,
                                           tail_min_at_risk=tail_min_at_risk).items() if v is not None}
        self.rules = load_churn_rules(rules)
        m = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.rules["model"].items()}
        m.update(overrides)
        load_churn_rules({"model": m})  # validates the overrides, naming any bad one
        if isinstance(covariates, Mapping):
            self.covariates = {str(k): tuple(v) for k, v in covariates.items()}
        else:
            self.covariates = dict(TRUTH_COVARIATES if m["covariates"] == "truth" else PREDICTION_COVARIATES)
        self.max_gaps = int(m["max_gaps"])
        self.penalizer = float(m["penalizer"])
        self.weibull = bool(weibull)
        self.weibull_max_gaps = int(m["weibull_max_gaps"])
        self.ph_test_gaps = int(m["ph_test_gaps"])
        self.restricted_days = int(m["restricted_days"])
        self.min_own_gaps = int(m["min_own_gaps"])
        self.seed = int(m["seed"])
        self.tail = bool(m["tail"])
        self.tail_start_quantile = float(m["tail_start_quantile"])
        self.tail_min_at_risk = int(m["tail_min_at_risk"])
        self.robust = bool(robust)
        self.min_events = int(min_events)
        self.ph_test = bool(ph_test)

    # ------------------------------------------------------------------ fitting
    def fit(self, clinic, as_of, gaps: pd.DataFrame | None = None) -> "ChurnModel":
        """Fit on the clinic's gaps up to `as_of`.

        Parameters
        ----------
        clinic : ClinicData
            The clinic (only rows dated on or before `as_of` are used).
        as_of : str or Timestamp
            End of the observation; open gaps are censored here.
        gaps : DataFrame, optional
            Pre-built :func:`survival_data` for the same clinic and `as_of`
            (saves rebuilding it).

        Returns
        -------
        ChurnModel
            self.

        Raises
        ------
        ConvergenceError
            If lifelines' Cox fit does not converge (e.g. a covariate level separates returns from
            non-returns completely): no coefficients are returned rather than meaningless ones. It is an
            :class:`~crm_analysis.exceptions.InsufficientDataError`, so the monthly run skips the churn
            sections with its reason.
        CrmAnalysisError
            If there are too few returns to fit a model, or `gaps` holds
            visits after `as_of` (built for a later date: that would be look-ahead).
        """
        from lifelines import CoxPHFitter, WeibullAFTFitter

        self.as_of_ = pd.Timestamp(as_of).normalize()
        require("churn_model", clinic, self.as_of_)
        gaps = survival_data(clinic, self.as_of_) if gaps is None else gaps
        _check_gaps_at(gaps, self.as_of_)
        rng = np.random.default_rng(self.seed)
        # positions, not a copy of every usable gap: only a sample of them is fitted
        usable = np.flatnonzero((gaps["duration"] > 0).to_numpy())
        self.n_gaps_ = len(usable)
        returns = int(gaps["event"].to_numpy()[usable].sum())
        if returns < 10:
            n = returns
            raise InsufficientDataError(
                "churn_model", f"Churn model: only {n} returns (second or later visits) on or before "
                               f"{self.as_of_:%Y-%m-%d}, too few to fit; it needs at least 10 (more history helps).",
                f"이탈 모형: {self.as_of_:%Y-%m-%d}까지 재방문이 {n}건뿐이라 모형을 만들 수 없습니다 "
                "(10건 이상 필요; 더 긴 기간의 자료가 도움이 됩니다).")
        fit_gaps = gaps.iloc[_sample_positions(usable, self.max_gaps, rng)]
        self.n_fit_gaps_ = len(fit_gaps)
        self.design_ = learn_design(fit_gaps, self.covariates, self.min_events)
        self.notes_ = []
        with one_blas_thread():
            cox = CoxPHFitter(penalizer=self.penalizer)
            if self.robust:
                data = self.design_.matrix(fit_gaps).assign(duration=fit_gaps["duration"].to_numpy(),
                                                            event=fit_gaps["event"].to_numpy(),
                                                            patient_id=fit_gaps["patient_id"].to_numpy())
                _converged(lambda: cox.fit(data, "duration", "event", robust=True, cluster_col="patient_id"),
                           _COX)
            else:
                data = self.design_.compress(fit_gaps)
                _converged(lambda: cox.fit(data, "duration", "event", weights_col="weight"), _COX)
            self.n_fit_rows_ = len(data)
            self.cox_ = cox
            self._fit_tail(data)
            self.check_gaps_ = _sample(fit_gaps, max(self.ph_test_gaps, 1), rng).reset_index(drop=True)
            self.weibull_ = None
            if self.weibull:
                wsample = _sample(fit_gaps, self.weibull_max_gaps, rng)
                try:
                    self.weibull_ = _converged(lambda: WeibullAFTFitter(penalizer=self.penalizer).fit(
                        self.design_.compress(wsample), "duration", "event", weights_col="weight"),
                        ("Weibull AFT alternative", "와이블 AFT 대안 모형"))
                except ConvergenceError as err:  # the alternative only: left out, and said so
                    self.notes_.append(f"Weibull AFT alternative left out: {err.reason}")
                    warnings.warn(f"ChurnModel: {err.reason} It is left out of the comparison.", ConvergenceWarning,
                                  stacklevel=2)
            self.ph_test_ = self._ph_test() if self.ph_test else pd.DataFrame(
                {"covariate": ["(not run)"], "test_statistic": [np.nan], "p": [np.nan],
                 "ph_violated_5pct": [False], "n_gaps": [0], "note": ["switched off (ph_test=False)"]})
        self._grid_hazard()
        self.current_ = current_gaps(gaps)
        self.n_patients_ = len(self.current_)
        self._own_interval = _own_median_interval(gaps, self.min_own_gaps)
        return self

    def _fit_tail(self, data: pd.DataFrame) -> None:
        """The long-absence tail of the baseline (:mod:`crm_analysis.churn.tail`), from the Cox fit's rows."""
        max_day = int(np.ceil(data["duration"].max()))
        if not self.tail:
            self.tail_ = no_return_tail(max_day)
            self.notes_.append(f"No return is assumed after the longest gap in the data ({max_day} days; "
                               "model.tail is off), so probabilities whose horizon reaches past it are too low.")
            return
        beta = self.cox_.params_
        lp = (data[beta.index].to_numpy() - self.cox_._norm_mean.to_numpy()) @ beta.to_numpy()
        weight = data["weight"].to_numpy() if "weight" in data else np.ones(len(data))
        self.tail_ = fit_return_tail(data["duration"].to_numpy(), data["event"].to_numpy(), weight, lp,
                                     start_quantile=self.tail_start_quantile, min_at_risk=self.tail_min_at_risk)
        t = self.tail_
        self.notes_.append(f"After day {t.splice_day} (fewer than {self.tail_min_at_risk} gaps still open beyond it) "
                           f"the baseline return hazard is extrapolated: {t.kind} fitted to the time at risk after "
                           f"day {t.start_day} ({t.n_returns:,.0f} returns, exponent {t.exponent:.3g}).")

    def _grid_hazard(self) -> None:
        base = self.cox_.baseline_cumulative_hazard_
        times = base.index.to_numpy(dtype=np.float64)
        self.max_day_ = int(np.ceil(times.max()))
        grid = np.arange(self.max_day_ + self.restricted_days + 2, dtype=np.float64)
        self._H0 = np.interp(grid, times, base.to_numpy().ravel())
        # beyond the splice day the fitted tail replaces the Breslow baseline (flat after the last return)
        splice = self.tail_.splice_day
        self._H0_splice = float(self._H0[splice])
        self._H0[splice + 1:] = self._H0_splice + self.tail_.cumulative(grid[splice + 1:])
        self._norm_mean = self.cox_._norm_mean.to_numpy()
        self._beta = self.cox_.params_.to_numpy()

    def _baseline(self, t: np.ndarray) -> np.ndarray:
        """Baseline cumulative hazard at whole days `t`: the grid, and the tail in closed form past its end."""
        last = len(self._H0) - 1
        t = np.asarray(t, dtype=np.int64)
        out = self._H0[np.minimum(t, last)]
        past = t > last
        if past.any():
            out = np.where(past, self._H0_splice + self.tail_.cumulative(t), out)
        return out

    def _warn_beyond_data(self, horizons: Sequence[int]) -> None:
        """Say so when a horizon is longer than any gap the model saw: its probabilities are extrapolated."""
        longest = max(int(h) for h in horizons)
        if longest <= self.max_day_:
            return
        if self.tail_.kind == "off":
            how = (f"no return is assumed after day {self.max_day_} (model.tail is off), so P(return) is too low; "
                   "switch model.tail on")
        else:
            how = (f"after day {self.tail_.splice_day} P(return) comes from the fitted long-absence tail "
                   f"({self.tail_.kind}), not from observed gaps")
        warnings.warn(f"ChurnModel: a {longest}-day horizon is longer than the longest gap between visits in the "
                      f"data ({self.max_day_} days); {how}. "
                      f"이탈 모형: {longest}일 기간이 자료에서 가장 긴 방문 간격({self.max_day_}일)보다 길어 재방문 확률을 "
                      "자료 밖으로 늘려 계산했습니다.", DataQualityWarning, stacklevel=3)

    def _ph_test(self) -> pd.DataFrame:
        """Schoenfeld-residual test of proportional hazards, refitted on the check sample.

        lifelines' test needs the residuals of the very data the model was fitted to, so the
        Cox model is refitted (same design and penalizer) on the sample and tested there.
        """
        from lifelines import CoxPHFitter
        from lifelines.statistics import proportional_hazard_test

        sample = self.check_gaps_
        data = self.design_.matrix(sample).assign(duration=sample["duration"].to_numpy(),
                                                  event=sample["event"].to_numpy())
        data = data.loc[:, (data != 0).any(axis=0)]
        try:
            refit = _converged(lambda: CoxPHFitter(penalizer=max(self.penalizer, 1e-4)).fit(data, "duration", "event"),
                               ("proportional-hazards check's refit", "비례위험 검정용 재적합"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the test's own numerical chatter
                res = proportional_hazard_test(refit, data, time_transform="rank")
        except ConvergenceError as err:
            return pd.DataFrame({"covariate": ["(test failed)"], "test_statistic": [np.nan], "p": [np.nan],
                                 "ph_violated_5pct": [False], "n_gaps": [len(sample)], "note": [err.reason]})
        except Exception as err:  # noqa: BLE001 - the check is a report, not a reason to fail the fit
            return pd.DataFrame({"covariate": ["(test failed)"], "test_statistic": [np.nan], "p": [np.nan],
                                 "ph_violated_5pct": [False], "n_gaps": [len(sample)], "note": [str(err)[:200]]})
        table = res.summary.reset_index()
        table.columns = ["covariate", *table.columns[1:]]
        table = table[["covariate", "test_statistic", "p"]]
        table["ph_violated_5pct"] = table["p"] < 0.05 / max(len(table), 1)
        table["n_gaps"] = len(sample)
        return table

    # ------------------------------------------------------------------ results
    def _check_fitted(self) -> None:
        if not hasattr(self, "cox_"):
            raise CrmAnalysisError("this ChurnModel is not fitted yet: call .fit(clinic, as_of) first")

    def hazard_ratios(self, alpha: float = 0.05, simultaneous: bool = False) -> pd.DataFrame:
        """Hazard ratios of returning, with confidence intervals.

        Parameters
        ----------
        alpha : float
            1 − confidence level.
        simultaneous : bool
            Bonferroni-adjusted intervals that cover all the hazard ratios at
            once with probability ≥ 1 − alpha.

        Returns
        -------
        DataFrame
            ``covariate``, ``level``, ``term`` (``covariate[level]``),
            ``hazard_ratio``, ``lower``, ``upper``, ``p``, ``se_log_hr`` and
            ``ci_method``: :data:`CI_ROBUST` when the intervals allow for the
            same patient's repeated gaps (``robust=True``, clustered by
            patient), else :data:`CI_MODEL_BASED` (every gap treated as
            independent, so the intervals may be too narrow on real data).
            HR > 1: returns sooner than the reference (less churn).
        """
        self._check_fitted()
        s = self.cox_.summary
        m = len(s) if simultaneous else 1
        z = stats.norm.ppf(1 - alpha / (2 * m))
        coef, se = s["coef"].to_numpy(), s["se(coef)"].to_numpy()
        terms = s.index.astype(str)
        return pd.DataFrame({
            "covariate": [t.split("[", 1)[0] for t in terms],
            "level": [t.split("[", 1)[1].rstrip("]") if "[" in t else "" for t in terms],
            "term": terms,
            "hazard_ratio": np.exp(coef),
            "lower": np.exp(coef - z * se),
            "upper": np.exp(coef + z * se),
            "p": s["p"].to_numpy(),
            "se_log_hr": se,
            "ci_method": CI_ROBUST if self.robust else CI_MODEL_BASED,
        })

    @property
    def summary(self) -> pd.DataFrame:
        """Hazard ratios with 95% CIs (see :meth:`hazard_ratios`)."""
        return self.hazard_ratios()

    def comparison(self, t0: int = 90) -> pd.DataFrame:
        """Cox against Weibull AFT on the check sample: concordance and calibration at `t0` days.

        Calibration is the mean absolute gap between predicted P(return
        within t0) and the observed share (Kaplan–Meier within deciles of the
        prediction, so censoring is handled), plus lifelines'
        ``survival_probability_calibration`` ICI and E50. In-sample; see
        :func:`~crm_analysis.churn.backtest` for out-of-sample comparison.

        Parameters
        ----------
        t0 : int
            Horizon in days of the predicted P(return within t0).

        Returns
        -------
        DataFrame
            One row per fitted model (``cox``, ``weibull_aft``): ``model``,
            ``concordance`` (Harrell's C, higher = better ranking of return
            times), ``calibration_mae``, ``ici``, ``e50``, ``t0_days``,
            ``n_gaps``.
        """
        from lifelines.utils import concordance_index

        from crm_analysis.churn.calibration import decile_calibration, lifelines_calibration

        self._check_fitted()
        rows = []
        sample = self.check_gaps_
        data = self.design_.matrix(sample).assign(duration=sample["duration"].to_numpy(),
                                                  event=sample["event"].to_numpy())
        for name, fitter in (("cox", self.cox_), ("weibull_aft", self.weibull_)):
            if fitter is None:
                continue
            # lifelines' calibration smoother is another small-matrix fit; its log(-log(1 - p)) warns where a
            # predicted probability is 0 or 1, which is only noise in the monthly run's output
            with one_blas_thread(), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                p = 1 - fitter.predict_survival_function(data, times=[t0]).to_numpy().ravel()
                ici, e50 = lifelines_calibration(fitter, data, t0)
            table = decile_calibration(p, data["duration"].to_numpy(), data["event"].to_numpy(), t0)
            rows.append({"model": name, "concordance": concordance_index(data["duration"], -p, data["event"]),
                         "calibration_mae": float(np.average(np.abs(table["predicted"] - table["observed"]),
                                                             weights=table["n"])),
                         "ici": ici, "e50": e50, "t0_days": t0, "n_gaps": len(data)})
        return pd.DataFrame(rows)

    # ------------------------------------------------------------------ predictions
    def _log_partial_hazard(self, state: pd.DataFrame) -> np.ndarray:
        x = self.design_.matrix(state).to_numpy()
        return (x - self._norm_mean) @ self._beta

    def predict_return(self, state: pd.DataFrame | None = None, horizons: Sequence[int] = HORIZONS) -> pd.DataFrame:
        """Per-patient return predictions conditional on the days already elapsed.

        Parameters
        ----------
        state : DataFrame, optional
            Open gaps indexed by ``patient_id`` with the covariates and
            ``elapsed_days`` (:func:`~crm_analysis.churn.current_gaps`);
            default: every patient at the fit's ``as_of``.
        horizons : sequence of int
            Days for ``p_return_<h>d``.

        Returns
        -------
        DataFrame
            Indexed by ``patient_id``: ``elapsed_days``, ``p_return_<h>d``
            for each horizon, ``p_return_ever`` (at all: the long-absence
            tail included, so 1 when its total hazard is unbounded; within the
            longest gap observed when ``model.tail`` is off), ``expected_days``, ``median_days``,
            ``usual_interval_days``, ``overdue_ratio``. See the module
            docstring for definitions.
        """
        self._check_fitted()
        self._warn_beyond_data(horizons)
        state = self.current_ if state is None else state
        e = np.clip(state["elapsed_days"].to_numpy(dtype=np.int64), 0, None)
        ph = np.exp(self._log_partial_hazard(state))
        H0 = self._H0
        h_e = self._baseline(e)
        out = {"elapsed_days": e}
        for h in horizons:
            out[f"p_return_{int(h)}d"] = self._p_return(e, ph, h)
        ever = self._H0_splice + self.tail_.total() if self.tail_.kind != "off" else H0[self.max_day_]
        with np.errstate(invalid="ignore"):  # an unbounded tail: inf · ph = inf, exp(-inf) = 0
            out["p_return_ever"] = 1 - np.exp(-np.clip(ever - h_e, 0, None) * ph)
        out["expected_days"] = self._restricted_mean(e, ph)
        target = h_e + np.log(2) / ph
        med = np.searchsorted(H0[: self.max_day_ + 1], target, side="left").astype(np.float64) - e
        out["median_days"] = np.where(target <= H0[self.max_day_], np.maximum(med, 0), np.nan)
        usual = self._model_usual_interval(ph)
        own = self._own_interval.reindex(state.index).to_numpy(dtype=np.float64)
        out["usual_interval_days"] = np.where(np.isfinite(own), own, usual)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["overdue_ratio"] = e / out["usual_interval_days"]
        return pd.DataFrame(out, index=state.index)

    def predict_probability(self, horizon: int = 180, state: pd.DataFrame | None = None) -> pd.Series:
        """P(return within `horizon` days | elapsed), one value per patient.

        Parameters
        ----------
        horizon : int
            Days.
        state : DataFrame, optional
            Open gaps as for :meth:`predict_return` (default: every patient at ``as_of_``).

        Returns
        -------
        Series
            Indexed by ``patient_id``, named ``p_return_<horizon>d``.
        """
        self._check_fitted()
        self._warn_beyond_data([horizon])
        state = self.current_ if state is None else state
        e = np.clip(state["elapsed_days"].to_numpy(dtype=np.int64), 0, None)
        ph = np.exp(self._log_partial_hazard(state))
        # only this column: the rest of predict_return (restricted means, medians) is the costly part
        return pd.Series(self._p_return(e, ph, horizon), index=state.index, name=f"p_return_{int(horizon)}d")

    def _p_return(self, e: np.ndarray, ph: np.ndarray, horizon: int) -> np.ndarray:
        """1 − S(e + h | x) / S(e | x) from the baseline on the day grid (and its tail beyond)."""
        return 1 - np.exp(-(self._baseline(e + int(horizon)) - self._baseline(e)) * ph)

    def predict_weibull_return(self, state: pd.DataFrame | None = None, horizon: int = 180) -> pd.Series:
        """The Weibull AFT alternative's P(return within `horizon` | elapsed), computed in closed form.

        ``1 − exp(−[((e + h)/λ)^ρ − (e/λ)^ρ])`` with λ from the patient's
        covariates, e the elapsed days and h the horizon (lifelines'
        ``conditional_after``).

        Parameters
        ----------
        state : DataFrame, optional
            Open gaps as for :meth:`predict_return` (default: every patient at ``as_of_``).
        horizon : int
            Days.

        Returns
        -------
        Series
            Indexed by ``patient_id``, named ``p_return_<horizon>d``.

        Raises
        ------
        CrmAnalysisError
            If the model was built with ``weibull=False`` or its Weibull fit did not converge (see ``notes_``).
        """
        self._check_fitted()
        if self.weibull_ is None:
            why = "; ".join(self.notes_) or "use ChurnModel(weibull=True)"
            raise CrmAnalysisError(f"the Weibull AFT model was not fitted: {why}")
        state = self.current_ if state is None else state
        x = self.design_.matrix(state)
        lam_p = self.weibull_.params_.loc["lambda_"]
        rho_p = self.weibull_.params_.loc["rho_"]
        lam = np.exp(x.reindex(columns=[c for c in lam_p.index if c != "Intercept"], fill_value=0).to_numpy()
                     @ lam_p.drop("Intercept").to_numpy() + lam_p["Intercept"])
        rho = np.exp(rho_p["Intercept"])
        e = np.clip(state["elapsed_days"].to_numpy(dtype=np.float64), 0, None)
        cum = (((e + horizon) / lam) ** rho) - ((e / lam) ** rho)
        return pd.Series(1 - np.exp(-cum), index=state.index, name=f"p_return_{int(horizon)}d")

    def _restricted_mean(self, e: np.ndarray, ph: np.ndarray, chunk: int = 2_048) -> np.ndarray:
        """Σ_{k<R} S(e + k | x) / S(e | x): rows of a sliding window over H0 (padded by its tail)."""
        R, H0, last = self.restricted_days, self._H0, len(self._H0) - 1
        windows = np.lib.stride_tricks.sliding_window_view(
            np.concatenate([H0, self._baseline(np.arange(last + 1, last + 1 + R))]), R)
        start = np.minimum(e, last)
        out = np.empty(len(e))
        for lo in range(0, len(e), chunk):  # chunks of a few MB stay in cache; operations in place
            s = start[lo: lo + chunk]
            d = windows[s]
            d -= H0[s][:, None]
            np.negative(d, out=d)
            d *= ph[lo: lo + chunk, None]
            np.exp(d, out=d)
            out[lo: lo + chunk] = d.sum(axis=1)
        return out

    def _model_usual_interval(self, ph: np.ndarray) -> np.ndarray:
        """Median gap among returners: smallest d with S(d) <= (1 + S(max)) / 2."""
        H0 = self._H0[: self.max_day_ + 1]
        s_inf = np.exp(-H0[-1] * ph)
        target = -np.log((1 + s_inf) / 2) / ph
        return np.maximum(np.searchsorted(H0, target, side="left"), 1).astype(np.float64)

    # ------------------------------------------------------------------ display
    def plot_hazard_ratios(self, ax=None, lang: str = "ko", simultaneous: bool = False):
        """Forest plot of the hazard ratios with CIs (log scale).

        Parameters
        ----------
        ax : matplotlib Axes, optional
        lang : {"ko", "en"}
        simultaneous : bool
            Bonferroni-adjusted intervals (see :meth:`hazard_ratios`).

        Returns
        -------
        matplotlib Axes
        """
        from crm_analysis.churn.plots import plot_hazard_ratios

        return plot_hazard_ratios(self.hazard_ratios(simultaneous=simultaneous), ax=ax, lang=lang)

    def plot_calibration(self, t0: int = 90, ax=None, lang: str = "ko"):
        """Predicted against observed P(return within t0) by decile, Cox and Weibull AFT.

        Observed shares are Kaplan–Meier estimates within each decile of the
        check sample (censoring handled; in-sample).

        Parameters
        ----------
        t0 : int
            Horizon in days.
        ax : matplotlib Axes, optional
        lang : {"ko", "en"}

        Returns
        -------
        matplotlib Axes
        """
        from crm_analysis.churn.calibration import decile_calibration
        from crm_analysis.churn.plots import plot_calibration

        self._check_fitted()
        sample = self.check_gaps_
        data = self.design_.matrix(sample)
        tables = {}
        for name, fitter in (("cox", self.cox_), ("weibull_aft", self.weibull_)):
            if fitter is not None:
                p = 1 - fitter.predict_survival_function(data, times=[t0]).to_numpy().ravel()
                tables[name] = decile_calibration(p, sample["duration"].to_numpy(), sample["event"].to_numpy(), t0)
        return plot_calibration(tables, t0, ax=ax, lang=lang)

    def __repr__(self) -> str:
        if not hasattr(self, "cox_"):
            return f"ChurnModel(covariates={list(self.covariates)}, not fitted)"
        return (f"ChurnModel(as_of={self.as_of_:%Y-%m-%d}, patients={self.n_patients_:,}, "
                f"gaps={self.n_gaps_:,}, fitted on {self.n_fit_gaps_:,}, terms={len(self.cox_.params_)})")

    def _repr_html_(self) -> str:
        if not hasattr(self, "cox_"):
            return f"<p>{escape(repr(self))}</p>"
        return (f"<h4>{escape(repr(self))}</h4><p>Cox concordance {self.cox_.concordance_index_:.3f}</p>"
                + self.summary.round(3).to_html(index=False))


def _converged(fit, what: tuple[str, str]):
    """``fit()``, raising :class:`ConvergenceError` when lifelines says it did not converge.

    lifelines reports a failed Newton–Raphson (or a solution that is not unique, as under complete
    separation) with a ``ConvergenceWarning`` and returns the last iterate anyway. Other warnings of the fit
    (scipy's optimiser chatter) are dropped as before; lifelines' advice about a nearly constant column,
    given before a fit that then converges, is passed on.
    """
    from lifelines.exceptions import ConvergenceError as LifelinesConvergenceError
    from lifelines.exceptions import ConvergenceWarning as LifelinesConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", LifelinesConvergenceWarning)
        try:
            result = fit()
        except LifelinesConvergenceError as err:
            raise _convergence_error(what, [str(err)]) from None
    messages = [str(w.message) for w in caught if issubclass(w.category, LifelinesConvergenceWarning)]
    failures = [m for m in messages if _LOW_VARIANCE_ADVICE not in m]
    if failures:
        raise _convergence_error(what, messages)
    for m in messages:
        warnings.warn(m.strip(), LifelinesConvergenceWarning, stacklevel=3)
    return result


def _convergence_error(what: tuple[str, str], messages: list[str]) -> ConvergenceError:
    """The one-sentence reason for a fit that did not converge, naming the separating column if lifelines did."""
    column = next((m.split("Column ", 1)[1].split(" have very low variance when conditioned", 1)[0]
                   for m in messages if "have very low variance when conditioned" in m), None)
    failure = next((m for m in messages if "Newton-Raphson" in m or "suspiciously close" in m),
                   next((m for m in messages if _LOW_VARIANCE_ADVICE not in m), messages[0]))
    detail = shorten(" ".join(failure.split()), 240)
    if column:
        cause_en = f"the covariate {shorten(column)} separates returns from non-returns (almost) completely"
        cause_ko = f"변수 {shorten(column)}이(가) 재방문 여부를 거의 완전히 가름"
    else:
        cause_en = "a covariate level probably separates returns from non-returns, or levels are collinear"
        cause_ko = "어떤 변수 수준이 재방문 여부를 완전히 가르거나 변수끼리 겹치는 것으로 보임"
    return ConvergenceError(
        "churn_model",
        f"Churn model: the {what[0]} did not converge on this clinic's visit gaps ({cause_en}), so its hazard ratios "
        "and return probabilities would be meaningless; merge that level, raise model.penalizer in the churn rules "
        "or add more history.",
        f"이탈 모형: {what[1]}이 이 병원의 방문 간격 자료에서 수렴하지 않아({cause_ko}) 위험비와 재방문 확률을 믿을 수 "
        "없으므로 보여 주지 않습니다 (해당 수준을 합치거나 이탈 규칙의 model.penalizer를 키우거나 더 긴 기간의 자료를 쓰면 됩니다).",
        detail=detail)


def _check_gaps_at(gaps: pd.DataFrame, as_of: pd.Timestamp) -> None:
    """Refuse gaps built for a later date than `as_of` (their covariates and durations would see the future)."""
    if not len(gaps):
        return
    start = gaps["start_date"].to_numpy(dtype="datetime64[ns]")
    is_open = gaps["is_open"].to_numpy(dtype=bool)
    ends = start[is_open] + gaps["duration"].to_numpy(dtype=np.int64)[is_open].astype("timedelta64[D]")
    if start.max() > as_of.to_datetime64() or (ends != as_of.to_datetime64()).any():
        raise CrmAnalysisError(f"the gaps given were not built at {as_of:%Y-%m-%d} (open gaps must end there and no "
                               f"visit may come later); build them with survival_data(clinic, '{as_of:%Y-%m-%d}')")


def _sample(gaps: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(gaps) <= n:
        return gaps
    take = np.sort(rng.choice(len(gaps), size=n, replace=False))
    return gaps.iloc[take]


def _sample_positions(positions: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """:func:`_sample` of the rows at `positions`, as positions (the same draws from `rng`)."""
    if len(positions) <= n:
        return positions
    return positions[np.sort(rng.choice(len(positions), size=n, replace=False))]


def _own_median_interval(gaps: pd.DataFrame, min_gaps: int) -> pd.Series:
    """Median completed gap per patient, for patients with at least `min_gaps` of them.

    Uses the layout of :func:`survival_data` (rows grouped by patient, each group ending with its
    open gap) to group on integer codes rather than on the id strings.
    """
    is_open = gaps["is_open"].to_numpy(dtype=bool)
    group = np.concatenate([[0], np.cumsum(is_open[:-1])]).astype(np.int64)
    done = gaps["event"].to_numpy() == 1
    g, d = group[done], gaps["duration"].to_numpy(dtype=np.int64)[done]
    _, g, d = sorted_by_patient_and_day(g, d)  # completed gaps sorted within each patient
    groups, start, n = np.unique(g, return_index=True, return_counts=True)
    med = (d[start + (n - 1) // 2] + d[start + n // 2]) / 2.0  # middle value, or mean of the two middle ones
    keep = n >= min_gaps
    # taken from the column as it is (Arrow text at scale), not through twenty million Python strings
    ids = gaps["patient_id"].array.take(np.flatnonzero(is_open)[groups[keep]])
    return pd.Series(med[keep], index=pd.Index(ids, name="patient_id"))
