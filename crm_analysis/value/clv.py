"""Patient lifetime value: a BG/NBD visit model with a Gamma-Gamma spend model, and a back-test.

Model choice
------------
*Visits* follow the BG/NBD model (Fader, Hardie & Lee 2005). While "alive", a
patient makes visits at a Poisson rate λ ~ Gamma(r, α) (heterogeneous across
patients); after each visit the patient drops out with probability
p ~ Beta(a, b). A visit is a distinct visit *day*. It needs only each
patient's repeat visits ``x``, the time of the last one ``t_x`` and the time
observed ``T``, fits in seconds even at a million patients (on distinct
``(x, t_x, T)`` rows with analytic gradients: :mod:`~crm_analysis.value.clv_fit`),
and its dropout-after-a-visit story is how clinic patients actually lapse (the
demo generator's return process has exactly this form: a per-gap dropout mass,
then a gap). Gaps in the demo are
Weibull with shape 0.75 rather than exponential, which BG/NBD does not
capture; it is still better at ranking than carrying last year forward (see
the back-test), and a survival-based model would be the next step.

*Spend per visit* follows the Gamma-Gamma model (Fader, Hardie & Lee 2005b):
each visit's spend multiplier z ~ Gamma(p, ν_i) with ν_i ~ Gamma(q, γ). The
raw charges also depend on what was done (a dermatology visit costs more than
an ENT visit, an inpatient stay is paid per day), which is not a patient's
spending habit, so each visit total is first **normalised** by the clinic's
mean charge per day of care for its (department, visit type), times its days
of care. ``z`` is then comparable across departments, and on the demo clinic
(where visit total = base × z exactly) the fitted (p, q, γ) recover the
generator's truth. A patient's expected spend per future visit day is
E[z | their visits] times their own mean normalising base per visit day.

Expected value over a horizon = E[visit days in (as_of, as_of + horizon]]
× expected spend per visit day. Money is not discounted (horizons are short).

:func:`clv_backtest` fits at a cut-off, predicts the next period and compares
with what happened, against the naive "last 12 months' value carried
forward".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats

from crm_analysis.exceptions import InsufficientDataError
from crm_analysis.features import day_numbers, patient_features_and_visit_rows
from crm_analysis.ids import id_positions
from crm_analysis.sufficiency import require
from crm_analysis.value.clv_fit import distinct_rows, fit_bgnbd, fit_gamma_gamma

__all__ = ["CLVModel", "ClvBacktest", "clv_backtest", "visit_spend_multipliers"]


# ----------------------------------------------------------------------------- data

def visit_spend_multipliers(clinic, as_of) -> pd.DataFrame:
    """Per-visit spend normalised by what the visit was (on or before `as_of`).

    Each visit's total charge is divided by the mean charge per day of care of
    its (department, visit type) among visits up to `as_of`, times its days of
    care (``max(inpatient_days, 1)``).

    Returns
    -------
    DataFrame
        Columns ``patient_id``, ``visit_date``, ``total``, ``base`` (the
        normalising charge) and ``z`` (= total / base).
    """
    v = clinic.tables["visits"]
    rows, total, base = _spend_rows(clinic, as_of)
    return pd.DataFrame({"patient_id": v["patient_id"].to_numpy()[rows], "visit_date": v["visit_date"].to_numpy()[rows],
                         "total": total, "base": base, "z": total / base})


def _spend_rows(clinic, as_of) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The visits of :func:`visit_spend_multipliers` as a mask over the visits table, with their total and base."""
    as_of = pd.Timestamp(as_of).normalize()
    v = clinic.tables["visits"]
    keep = (v["visit_date"] <= as_of).to_numpy()
    total = v["charge_insured"].fillna(0).to_numpy()[keep] + v["charge_self_pay"].fillna(0).to_numpy()[keep]
    care = np.maximum(v["inpatient_days"].fillna(0).to_numpy(dtype="float64")[keep], 1.0)
    # (department, visit type) groups from per-column labels: a MultiIndex of Python tuples is slow
    dept, kind = _labels(v["department"], keep), _labels(v["visit_type"], keep)
    codes, _ = pd.factorize(dept * (kind.max(initial=0) + 1) + kind)
    per_day = np.bincount(codes, weights=total, minlength=codes.max() + 1) / \
        np.bincount(codes, weights=care, minlength=codes.max() + 1)
    base = per_day[codes] * care
    ok = (base > 0) & (total > 0)
    rows = np.zeros(len(v), dtype=bool)
    rows[np.flatnonzero(keep)[ok]] = True
    return rows, total[ok], base[ok]


def _labels(values: pd.Series, keep: np.ndarray) -> np.ndarray:
    """Integer label of each kept value; a missing value is labelled as the text '?' would be."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = list(values.cat.categories.astype("object"))
        codes = values.cat.codes.to_numpy().astype(np.int64)[keep]
        return np.where(codes < 0, cats.index("?") if "?" in cats else len(cats), codes)
    return pd.factorize(values.astype("object").fillna("?").to_numpy()[keep])[0].astype(np.int64)


def _model_data(clinic, as_of, unit_days):
    f, visit_rows = patient_features_and_visit_rows(clinic, as_of, full=False)  # the few features the model reads
    rows, total, base = _spend_rows(clinic, as_of)
    # the spend rows are visits up to as_of, so each one's patient is the feature row it was counted by
    code = visit_rows[rows]
    z = total / base
    good = code >= 0
    n = len(f)
    n_z = np.bincount(code[good], minlength=n)
    sum_z = np.bincount(code[good], weights=z[good], minlength=n)
    sum_base = np.bincount(code[good], weights=base[good], minlength=n)
    freq = f["frequency"].to_numpy()
    end = day_numbers([pd.Timestamp(as_of)])[0]
    first = day_numbers(f["first_visit_date"])
    last = np.where(f["last_visit_date"].isna(), first, day_numbers(f["last_visit_date"].fillna(pd.Timestamp(0))))
    d = pd.DataFrame({
        "x": np.maximum(freq - 1, 0).astype("float64"),
        "t_x": (last - first) / unit_days,
        "T": (end - first) / unit_days,
        "n_z": n_z,
        "z_mean": np.where(n_z > 0, sum_z / np.maximum(n_z, 1), np.nan),
        "base_per_visit_day": np.where(freq > 0, sum_base / np.maximum(freq, 1), np.nan),
        "value_12m": f["value_12m"].to_numpy(),
    }, index=f.index)
    return d


# ----------------------------------------------------------------------------- model

class CLVModel:
    """BG/NBD visits × Gamma-Gamma spend: expected visits and value per patient.

    Parameters
    ----------
    time_unit_days : float
        Time unit of the BG/NBD parameters (7: weeks).
    horizon_days : int
        Default prediction horizon (365: the next 12 months).

    Attributes
    ----------
    params_ : dict
        Fitted ``r, alpha, a, b`` (visits) and ``p, q, gamma`` (spend).
    data_ : DataFrame
        Per patient at ``as_of_``: ``x`` (repeat visit days), ``t_x``, ``T``
        (in time units), ``n_z``, ``z_mean``, ``base_per_visit_day``,
        ``value_12m``.
    as_of_ : Timestamp
    summary : DataFrame
        Parameters with standard errors and 95% intervals (Wald on the log scale).

    Examples
    --------
    >>> model = CLVModel().fit(clinic, as_of="2025-10-31")      # doctest: +SKIP
    >>> model.predict_value().sort_values().tail()               # doctest: +SKIP
    """

    #: Fit on sufficient statistics (distinct rows with multiplicities); False fits per patient with
    #: Nelder-Mead as before this was added (kept as the reference the tests compare with).
    _sufficient = True

    def __init__(self, time_unit_days: float = 7.0, horizon_days: int = 365):
        if time_unit_days <= 0 or horizon_days <= 0:
            raise ValueError("time_unit_days and horizon_days must be positive")
        self.time_unit_days = float(time_unit_days)
        self.horizon_days = int(horizon_days)

    def fit(self, clinic, as_of) -> "CLVModel":
        """Fit both models on the data up to `as_of` (end of that day)."""
        if as_of is None:
            raise ValueError("CLVModel.fit needs an explicit as_of date")
        self.as_of_ = pd.Timestamp(as_of).normalize()
        require("clv", clinic, self.as_of_)
        d = _model_data(clinic, self.as_of_, self.time_unit_days)
        if len(d) < 20:
            raise InsufficientDataError("clv", f"Lifetime value: it needs at least 20 patients registered by "
                                               f"{self.as_of_:%Y-%m-%d}; the data has {len(d)}.",
                                        f"생애가치: {self.as_of_:%Y-%m-%d}까지 등록 환자가 20명 이상 필요한데 "
                                        f"{len(d)}명뿐입니다.")
        self.summary = self._fit_data(d)
        return self

    def _fit_data(self, d: pd.DataFrame) -> pd.DataFrame:
        """Fit both models on the per-patient summary `d` (the columns of ``data_``).

        Sets the fitted attributes but ``summary``, which it returns.
        """
        bg = fit_bgnbd(d["x"].to_numpy(), d["t_x"].to_numpy(), d["T"].to_numpy(), sufficient=self._sufficient)
        n_z = d["n_z"].to_numpy(dtype="float64")
        spend = n_z > 0
        gg = fit_gamma_gamma(n_z[spend], d["z_mean"].to_numpy()[spend], sufficient=self._sufficient)
        self.data_ = d
        self.params_ = dict(zip(("r", "alpha", "a", "b", "p", "q", "gamma"), [*bg.params, *gg.params]))
        self.converged_ = bg.converged and gg.converged
        se = np.sqrt(np.maximum(np.concatenate([np.diag(bg.cov_log), np.diag(gg.cov_log)]), 0))
        est = np.array([*bg.params, *gg.params])
        summary = pd.DataFrame({
            "model": ["visits (BG/NBD)"] * 4 + ["spend (Gamma-Gamma)"] * 3,
            "estimate": est,
            "se_log": se,
            "lower_95": est * np.exp(-1.96 * se),
            "upper_95": est * np.exp(1.96 * se),
        }, index=pd.Index(list(self.params_), name="parameter"))
        self.loglik_ = {"visits": bg.loglik, "spend": gg.loglik}
        self.n_patients_ = len(d)
        return summary

    def _check(self):
        if not hasattr(self, "params_"):
            raise RuntimeError("call fit(clinic, as_of) before predicting")

    def predict_alive(self) -> pd.Series:
        """Probability that each patient is still 'alive' (will come again) at ``as_of_``."""
        self._check()
        r, alpha, a, b = (self.params_[k] for k in ("r", "alpha", "a", "b"))
        d = self.data_
        x, tx, T = d["x"].to_numpy(), d["t_x"].to_numpy(), d["T"].to_numpy()
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            log_term = np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
            p = np.where(x > 0, 1.0 / (1.0 + np.exp(log_term)), 1.0)
        return pd.Series(p, index=d.index, name="p_alive")

    def predict_visits(self, horizon_days: int | None = None) -> pd.Series:
        """Expected distinct visit days in (as_of, as_of + horizon]."""
        self._check()
        t = (horizon_days or self.horizon_days) / self.time_unit_days
        r, alpha, a, b = (self.params_[k] for k in ("r", "alpha", "a", "b"))
        d = self.data_
        x, T = d["x"].to_numpy(), d["T"].to_numpy()
        alive = self.predict_alive().to_numpy()
        # Fader, Hardie & Lee (2005) eq. 10; the closed form also holds for a < 1 (analytic
        # continuation; checked against numerical integration), only a == 1 needs a nudge.
        a = a if abs(a - 1) > 1e-9 else 1 + 1e-9
        # the hypergeometric part depends on (x, T) only: once per distinct pair, then per patient
        first, pair = distinct_rows(x, T)
        xs, Ts = x[first], T[first]
        z = t / (alpha + Ts + t)
        with np.errstate(over="ignore", invalid="ignore"):
            h = special.hyp2f1(r + xs, b + xs, a + b + xs - 1, z)
            term = 1 - np.exp((r + xs) * (np.log(alpha + Ts) - np.log(alpha + Ts + t))) * h
            e = ((a + b + xs - 1) / (a - 1) * term)[pair] * alive
        # where the hypergeometric series is unstable, fall back to alive × rate × t (no later dropout)
        rough = alive * (r + x) / (alpha + T) * t
        e = np.where(np.isfinite(e) & (e >= 0), e, rough)
        return pd.Series(e, index=d.index, name="expected_visits")

    def predict_spend(self) -> pd.Series:
        """Expected charge (KRW) per future visit day: E[z | visits] × own base per visit day."""
        self._check()
        p, q, gamma = (self.params_[k] for k in ("p", "q", "gamma"))
        d = self.data_
        n, zbar = d["n_z"].to_numpy(dtype="float64"), np.nan_to_num(d["z_mean"].to_numpy())
        ez = (gamma + n * zbar) * p / (p * n + q - 1)
        base = d["base_per_visit_day"].to_numpy()
        base = np.where(np.isfinite(base), base, np.nanmean(base))
        return pd.Series(ez * base, index=d.index, name="expected_spend_per_visit")

    def predict_value(self, horizon_days: int | None = None) -> pd.Series:
        """Expected value (KRW) over the horizon: expected visits × expected spend per visit."""
        return (self.predict_visits(horizon_days) * self.predict_spend()).rename("expected_value")

    def predict_frame(self, horizon_days: int | None = None) -> pd.DataFrame:
        """``p_alive``, ``expected_visits``, ``expected_spend_per_visit``, ``expected_value`` per patient."""
        return pd.concat([self.predict_alive(), self.predict_visits(horizon_days), self.predict_spend(),
                          self.predict_value(horizon_days)], axis=1)

    def plot_value_distribution(self, ax=None, horizon_days: int | None = None):
        """Histogram of expected value over the horizon (log scale)."""
        import matplotlib.pyplot as plt

        ax = ax or plt.subplots(figsize=(6, 3.5))[1]
        v = self.predict_value(horizon_days)
        ax.hist(np.log10(v[v > 0] + 1), bins=40)
        ax.set_xlabel("log10(expected value, KRW)")
        ax.set_ylabel("patients")
        return ax

    def _repr_html_(self) -> str:
        if not hasattr(self, "params_"):
            return "<p>CLVModel (not fitted)</p>"
        return (f"<h4>CLVModel: BG/NBD × Gamma-Gamma, as of {self.as_of_:%Y-%m-%d}</h4>"
                f"<p>{self.n_patients_:,} patients; horizon {self.horizon_days} days</p>" + self.summary.to_html())

    def __repr__(self) -> str:
        fitted = f", as_of={self.as_of_:%Y-%m-%d}" if hasattr(self, "as_of_") else ""
        return f"CLVModel(time_unit_days={self.time_unit_days:g}, horizon_days={self.horizon_days}{fitted})"


# ----------------------------------------------------------------------------- back-test

@dataclass(frozen=True)
class ClvBacktest:
    """Result of :func:`clv_backtest`.

    Attributes
    ----------
    cutoff, horizon_days
        Fit date and prediction horizon.
    patients : DataFrame
        Per patient: ``predicted`` (model), ``naive`` (last 12 months carried
        forward), ``actual`` (charges in the horizon).
    calibration : DataFrame
        By decile of predicted value: patients, mean predicted, mean naive,
        mean actual.
    spearman_model, spearman_naive : float
        Rank correlation of predicted and actual value.
    total_error_model, total_error_naive : float
        (Σ predicted − Σ actual) / Σ actual.
    """

    cutoff: pd.Timestamp
    horizon_days: int
    patients: pd.DataFrame = field(repr=False)
    calibration: pd.DataFrame = field(repr=False)
    spearman_model: float
    spearman_naive: float
    total_error_model: float
    total_error_naive: float

    def summary(self) -> pd.DataFrame:
        """One row per method (``clv_model``: BG/NBD × Gamma-Gamma; ``naive``: last 12 months carried
        forward): rank correlation, total predicted, total actual, total error."""
        actual = self.patients["actual"].sum()
        return pd.DataFrame({
            "method": ["clv_model", "naive"],
            "spearman": [self.spearman_model, self.spearman_naive],
            "total_predicted": [self.patients["predicted"].sum(), self.patients["naive"].sum()],
            "total_actual": [actual, actual],
            "total_error": [self.total_error_model, self.total_error_naive],
        })

    def plot_calibration(self, ax=None, lang: str = "en"):
        """Mean predicted (model and naive) and actual value by decile of predicted value."""
        import matplotlib.pyplot as plt

        from crm_analysis.i18n import label

        ax = ax or plt.subplots(figsize=(6, 3.5))[1]
        c = self.calibration
        ax.plot(c["decile"], c["actual_mean"], "o-", label=label("seg_actual_mean", lang))
        ax.plot(c["decile"], c["predicted_mean"], "s--", label=label("seg_predicted_mean", lang))
        ax.plot(c["decile"], c["naive_mean"], "^:", label=label("seg_naive_mean", lang))
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_title(label("seg_calibration_title", lang))
        ax.set_xlabel(label("seg_decile", lang))
        ax.legend()
        return ax

    def _repr_html_(self) -> str:
        return (f"<h4>CLV back-test: fit {self.cutoff:%Y-%m-%d}, next {self.horizon_days} days</h4>"
                + self.summary().to_html(index=False) + "<h5>Calibration by decile</h5>"
                + self.calibration.to_html(index=False))

    def __repr__(self) -> str:
        return (f"ClvBacktest(cutoff={self.cutoff:%Y-%m-%d}, spearman model={self.spearman_model:.3f} "
                f"vs naive={self.spearman_naive:.3f})")


def clv_backtest(clinic, cutoff, horizon_days: int = 365, model: CLVModel | None = None) -> ClvBacktest:
    """Fit at `cutoff`, predict the next `horizon_days`, compare with what happened.

    Parameters
    ----------
    clinic : ClinicData
        Must hold data to at least ``cutoff + horizon_days``.
    cutoff : str or Timestamp
        Fit date; only data up to it is used for fitting.
    horizon_days : int
        Length of the prediction period (365 = next 12 months).
    model : CLVModel, optional
        Unfitted model with the settings to use.

    Returns
    -------
    ClvBacktest

    Raises
    ------
    ValueError
        If the data ends before the end of the horizon.
    """
    cutoff = pd.Timestamp(cutoff).normalize()
    end = cutoff + pd.Timedelta(days=horizon_days)
    data_end = clinic.as_of if getattr(clinic, "as_of", None) is not None else clinic.tables["visits"]["visit_date"].max()
    if end > data_end:  # the caller's cut-off, not thin data
        raise ValueError(f"the back-test needs data to {end:%Y-%m-%d} (cutoff + {horizon_days} days); "
                         f"the data ends {data_end:%Y-%m-%d}. Choose an earlier cutoff.")
    require("clv_backtest", clinic, end)
    model = (model or CLVModel(horizon_days=horizon_days)).fit(clinic, cutoff)
    pred = model.predict_value(horizon_days)
    naive = model.data_["value_12m"] * horizon_days / 365.0
    v = clinic.tables["visits"]
    win = ((v["visit_date"] > cutoff) & (v["visit_date"] <= end)).to_numpy()
    total = (v["charge_insured"].fillna(0) + v["charge_self_pay"].fillna(0)).to_numpy()[win]
    code = id_positions(v["patient_id"], pred.index, win)
    ok = code >= 0
    actual = np.bincount(code[ok], weights=total[ok], minlength=len(pred))
    df = pd.DataFrame({"predicted": pred.to_numpy(), "naive": naive.to_numpy(), "actual": actual}, index=pred.index)
    decile = pd.qcut(df["predicted"].rank(method="first"), 10, labels=range(1, 11))
    g = df.groupby(decile, observed=False)
    cal = pd.DataFrame({"patients": g.size(), "predicted_mean": g["predicted"].mean(),
                        "naive_mean": g["naive"].mean(), "actual_mean": g["actual"].mean()})
    cal = cal.rename_axis("decile").reset_index()
    cal["decile"] = cal["decile"].astype(int)
    sp_model = float(stats.spearmanr(df["predicted"], df["actual"]).statistic)
    sp_naive = float(stats.spearmanr(df["naive"], df["actual"]).statistic)
    tot = df["actual"].sum()
    return ClvBacktest(cutoff=cutoff, horizon_days=horizon_days, patients=df, calibration=cal,
                       spearman_model=sp_model, spearman_naive=sp_naive,
                       total_error_model=float((df["predicted"].sum() - tot) / tot),
                       total_error_naive=float((df["naive"].sum() - tot) / tot))
