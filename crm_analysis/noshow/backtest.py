"""Out-of-time back-test of the no-show risk model against two simple baselines.

:func:`noshow_backtest` fits on the appointments scheduled before a split
date and scores those scheduled on or after it, up to `as_of`. Only
appointments whose outcome is known (attended or no-show) are fitted and
scored; cancelled and still-booked ones are left out. Features are those of
:func:`~crm_analysis.noshow.features.noshow_table`, all known when each
appointment's reminders were planned, so the scores are what the daily job
would have produced.

Compared:

- ``risk_model``: :class:`~crm_analysis.noshow.model.NoShowRiskModel` (splines, all usable features);
- ``prior_no_shows``: a logistic regression on the patient's earlier no-shows only (capped);
- ``lead_time``: a logistic regression on a spline of the lead time only.

Metrics: AUC (the probability that a no-show is ranked above an attended
appointment; ties count half), Brier score (mean squared error of the
probability), and a calibration table of predicted against observed no-show
rate per decile of the prediction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from crm_analysis.exceptions import InsufficientDataError
from crm_analysis.noshow.features import noshow_table
from crm_analysis.noshow.model import NoShowRiskModel

__all__ = ["NoShowBacktest", "noshow_backtest", "auc", "brier", "decile_table", "BASELINES"]

#: The baselines: name -> features of :class:`NoShowRiskModel`.
BASELINES = {"prior_no_shows": ("prior_no_shows",), "lead_time": ("lead",)}


def auc(predicted, observed) -> float:
    """Area under the ROC curve (Mann–Whitney; ties count half). NaN without both outcomes."""
    p = np.asarray(predicted, dtype=float)
    y = np.asarray(observed, dtype=float) > 0.5
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def brier(predicted, observed) -> float:
    """Brier score: mean of (predicted − observed)²."""
    p = np.asarray(predicted, dtype=float)
    return float(np.mean((p - np.asarray(observed, dtype=float)) ** 2))


def decile_table(predicted, observed, n_bins: int = 10) -> pd.DataFrame:
    """Predicted mean against observed no-show rate per bin of the prediction (1 = lowest risk).

    Bins are equal-count groups of the predictions' ranks (ties broken by order), so every bin has
    ``n / n_bins`` appointments up to one.

    Returns
    -------
    DataFrame
        ``decile``, ``n``, ``predicted`` (mean), ``observed`` (no-show rate), ``observed_se``
        (binomial standard error).
    """
    p = np.asarray(predicted, dtype=float)
    y = np.asarray(observed, dtype=float)
    order = np.argsort(p, kind="stable")
    binned = np.empty(len(p), dtype=np.int64)
    binned[order] = np.arange(len(p)) * n_bins // max(len(p), 1)
    n = np.bincount(binned, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        pred = np.bincount(binned, weights=p, minlength=n_bins) / n
        obs = np.bincount(binned, weights=y, minlength=n_bins) / n
        se = np.sqrt(obs * (1 - obs) / n)
    return pd.DataFrame({"decile": np.arange(1, n_bins + 1), "n": n, "predicted": pred, "observed": obs,
                         "observed_se": se})


@dataclass(frozen=True)
class NoShowBacktest:
    """What an out-of-time back-test of the no-show risk model found.

    Attributes
    ----------
    split_date : Timestamp
        Fitted on appointments scheduled before it, scored on those from it.
    as_of : Timestamp
    n_train, n_test : int
        Appointments with a known outcome fitted on and scored.
    observed_rate : float
        No-show rate of the scored appointments.
    table : DataFrame
        One row per model: ``model``, ``auc``, ``brier``, ``n``, ``mean_predicted``, ``observed_rate``.
    deciles : DataFrame
        The risk model's calibration table (:func:`decile_table`).
    calibration : Mapping of str to DataFrame
        The calibration table of every model.
    dropped : Mapping of str to str
        Features the risk model left out (constant or missing in the training data), with the reason.
    model : NoShowRiskModel
        The risk model fitted before the split.
    """

    split_date: pd.Timestamp
    as_of: pd.Timestamp
    n_train: int
    n_test: int
    observed_rate: float
    table: pd.DataFrame
    deciles: pd.DataFrame = field(repr=False)
    calibration: Mapping[str, pd.DataFrame] = field(repr=False)
    dropped: Mapping[str, str] = field(default_factory=dict)
    model: Any = field(repr=False, default=None)

    def summary(self) -> pd.DataFrame:
        """One row per model: AUC, Brier score, n, mean prediction and observed rate."""
        return self.table

    def summary_view(self, lang: str = "ko"):
        """:meth:`summary` for a report: models by name, AUC and Brier score ×100 (two decimals), counts with
        thousands separators (every value escaped)."""
        from crm_analysis.cells import escaped_style
        from crm_analysis.i18n import check_lang, label

        check_lang(lang)
        t = self.table[["model", "auc", "brier", "n"]].copy()
        t["brier"] = t["brier"] * 100  # two decimals of the score ×100 tell the models apart (0.0855 vs 0.0864)
        t["model"] = t["model"].map(lambda m: label(f"noshow_model_{m}", lang))
        names = {c: label(f"noshow_{c}", lang) for c in ("auc", "n")} | {"brier": label("noshow_brier_100", lang)} | {"model": label("noshow_model", lang)}
        shown = t.rename(columns=names)
        return escaped_style(shown, lang=lang, counts=[names["n"]]).hide(axis="index")

    def metric(self, name: str, metric: str = "auc") -> float:
        """``auc`` or ``brier`` of model `name` (``risk_model``, ``prior_no_shows``, ``lead_time``)."""
        return float(self.table.set_index("model").loc[name, metric])

    def plot_deciles(self, ax=None, lang: str = "ko"):
        """Bar chart of the observed no-show rate by risk decile, with the mean prediction (see
        :func:`crm_analysis.noshow.plots.plot_deciles`)."""
        from crm_analysis.noshow.plots import plot_deciles

        return plot_deciles(self.deciles, split_date=self.split_date, ax=ax, lang=lang)

    def _repr_html_(self) -> str:
        dropped = "; ".join(f"{k} ({v})" for k, v in self.dropped.items()) or "none"
        head = (f"<h4>No-show back-test: fitted before {self.split_date:%Y-%m-%d}, scored "
                f"{self.split_date:%Y-%m-%d} to {self.as_of:%Y-%m-%d}</h4>"
                f"<p>{self.n_train:,} appointments fitted, {self.n_test:,} scored, "
                f"{self.observed_rate:.1%} no-shows; features left out: {dropped}</p>")
        return head + self.table.round(4).to_html(index=False) + self.deciles.round(4).to_html(index=False)


def noshow_backtest(data, split_date, *, as_of=None, rules=None, model: NoShowRiskModel | None = None,
                    train_months: int | None = None, n_bins: int = 10) -> NoShowBacktest:
    """Fit the risk model and the baselines before `split_date`; score the appointments from it.

    Parameters
    ----------
    data : ClinicData or DataFrame
        A clinic, or a table from :func:`~crm_analysis.noshow.features.noshow_table`.
    split_date : str or Timestamp
        Appointments scheduled before this day are fitted on; those on or after it (to `as_of`) scored.
    as_of : str or Timestamp, optional
        End of the scored period; default the clinic's ``as_of`` (or the last scheduled appointment).
    rules : path, mapping or None
        Reminder rules, for the planned reminder schedule (with a clinic).
    model : NoShowRiskModel, optional
        An unfitted risk model to use instead of the default one.
    train_months : int, optional
        Fit only on the last this many months before the split (default: all the history).
    n_bins : int
        Bins of the calibration tables.

    Returns
    -------
    NoShowBacktest

    Raises
    ------
    InsufficientDataError
        Too few known outcomes before or after the split.

    See Also
    --------
    score_appointments : the daily scoring with the same model.
    """
    split = pd.Timestamp(split_date).normalize()
    if isinstance(data, pd.DataFrame):
        table = data
        as_of = pd.Timestamp(as_of) if as_of is not None else table["scheduled_at"].max()
    else:
        if as_of is None:
            as_of = data.as_of if data.as_of is not None else data.tables["appointments"]["scheduled_at"].max()
        as_of = pd.Timestamp(as_of)
        table = noshow_table(data, as_of, rules)
    end = as_of.normalize() + pd.Timedelta(days=1)
    known = table["no_show"].notna() & (table["scheduled_at"] < end)
    train = known & (table["scheduled_at"] < split)
    if train_months is not None:
        train &= table["scheduled_at"] >= split - pd.DateOffset(months=train_months)
    test = known & (table["scheduled_at"] >= split)
    train_t, test_t = table.loc[train.to_numpy()], table.loc[test.to_numpy()]
    if len(test_t) == 0 or test_t["no_show"].nunique() < 2:
        raise InsufficientDataError(
            "noshow_risk", f"No appointments with both outcomes (attended and no-show) from {split:%Y-%m-%d} "
                           f"to {as_of:%Y-%m-%d}: choose an earlier split date.",
            f"{split:%Y-%m-%d}~{as_of:%Y-%m-%d} 사이에 결과가 확정된 예약이 부족합니다. 분할일을 앞당기세요.")
    y = test_t["no_show"].to_numpy(dtype=float)
    risk = (model if model is not None else NoShowRiskModel()).fit(train_t)
    models = {"risk_model": risk}
    models.update({name: NoShowRiskModel(features=f).fit(train_t) for name, f in BASELINES.items()})
    rows, calibration = [], {}
    for name, m in models.items():
        p = m.predict(test_t).to_numpy()
        rows.append({"model": name, "auc": auc(p, y), "brier": brier(p, y), "n": len(y),
                     "mean_predicted": float(p.mean()), "observed_rate": float(y.mean())})
        calibration[name] = decile_table(p, y, n_bins)
    return NoShowBacktest(split_date=split, as_of=as_of, n_train=risk.n_, n_test=len(y),
                          observed_rate=float(y.mean()), table=pd.DataFrame(rows),
                          deciles=calibration["risk_model"], calibration=calibration,
                          dropped=dict(risk.dropped_), model=risk)
