"""Expected extra returns from a recall message (uplift), learned from past campaign holdouts.

Ranking a recall list by the probability of returning targets the patients who
will come back anyway. What a message buys is the **uplift**: the probability
of a return within ``window_days`` with the message minus without it,

    uplift_i = (1 − p0_i) · ρ_i

- ``p0_i``: P(return within the window | days already elapsed) without a
  message, from the churn model (:meth:`ChurnModel.predict_probability`);
- ``ρ_i``: the **response**, the share of would-be absentees a message brings
  back in the window (delivery failures included: it is an effect of being
  *assigned* a message, as the holdout comparison measures it).

Learning ρ from past holdouts
    Every past contact row (sent or holdout) of the campaigns matching
    ``recall.uplift.campaigns`` whose window closed by ``as_of`` is put back in
    the patient's state on its send day (the open gap then: covariates and
    days elapsed, so nothing after the send day describes the patient). With
    ``y`` = returned in ``(send day, send day + window]``, ``T`` = assigned
    ``sent`` and ``u = 1 − p0``, the linear model

        y − p0 = γ·u + T·u·(a + b·z)

    is fitted by least squares with patient-clustered standard errors
    (``statsmodels`` OLS). Randomisation makes ``a`` and ``b`` unbiased: ``a`` is
    the response of a patient with an average ``z`` and ``b`` how it changes
    with ``z``, the patient's log relative return hazard (from the churn model:
    patients who come back readily may also answer readily). ``γ`` absorbs the
    churn model's miscalibration in the holdout arm, so it does not leak into
    the response. ρ(z) = a + b·z is clipped to [0, 1], and ``z`` to the range
    seen in the past contacts (no extrapolation beyond it).

Without past holdouts (most real exports)
    The response cannot be measured. It is then taken from the churn model:
    ``ρ_i = assumed_response · HR_i / mean(HR)``, proportional to the
    patient's relative return hazard ``HR_i`` (a patient who comes back readily
    is assumed to answer a reminder readily), averaging
    ``recall.uplift.assumed_response`` over the clinic's patients. Both the
    level and the proportionality are assumptions, and every result says so.

Both the learned response and the days-since-last-visit limit
(``max_elapsed_days``, at most the longest absence seen in past contacts) are
reported by :class:`ContactResponse`, with the measured holdout lift of the
learning campaigns next to the lift the fitted model implies for the same rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from html import escape

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.special import logsumexp
from statsmodels.stats.proportion import confint_proportions_2indep

from crm_analysis.churn.model import ChurnModel
from crm_analysis.churn.rules import load_churn_rules
from crm_analysis.churn.survival_data import survival_data
from crm_analysis.estimates import Estimate
from crm_analysis.exceptions import CrmAnalysisError

__all__ = ["ContactResponse", "learn_contact_response", "expected_uplift", "contact_states"]

#: Quantiles of the past contacts' log relative hazard the response is extrapolated to, at most.
_SUPPORT_QUANTILES = (0.01, 0.99)


@dataclass(frozen=True)
class ContactResponse:
    """How a recall message changes the chance of a return: the response ρ(z).

    Learned from holdouts ρ(z) = a + b·z; assumed ρ(z) = a·exp(z) (proportional
    to the relative hazard); z is the log relative hazard minus ``centre``,
    and ρ is clipped to [0, 1].

    Attributes
    ----------
    basis : {"holdouts", "assumed"}
        Learned from past campaign holdouts, or assumed (no usable holdouts).
    window_days : int
        The response window (days after the send day).
    response : Estimate
        ``a``: share of would-be absentees a message brings back, for a patient
        with an average log relative hazard (an assumed value has no interval).
    slope : Estimate or None
        ``b``: change of the response per unit of log relative hazard (None when assumed).
    centre : float
        ``z`` is measured from it: the past contacts' mean log relative hazard
        (assumed: the log of the current patients' mean relative hazard).
    z_range : tuple of float
        The range ``z`` is clipped to (1st and 99th percentiles of the past
        contacts', or when assumed the current patients', log relative hazard).
    max_elapsed_days : int
        Longest absence the uplift is applied to (the rules' limit, and when
        learned at most the longest absence seen in past contacts).
    measured_lift : Estimate or None
        Return rate sent − holdout of the learning rows (Newcombe interval).
    implied_lift : float or None
        The same rows' mean uplift under the fitted response (checks its scale).
    calibration_shift : Estimate or None
        ``γ``: returns the churn model missed (share of 1 − p0) in the learning rows.
    n_sent, n_holdout : int
        Learning rows by arm.
    campaigns : tuple of str
        Campaigns learned from.
    note, note_en : str
        One sentence saying where the response comes from (Korean, English).
    fit : statsmodels RegressionResults or None
        The least-squares fit (None when assumed).
    """

    basis: str
    window_days: int
    response: Estimate
    slope: Estimate | None
    centre: float
    z_range: tuple[float, float]
    max_elapsed_days: int
    measured_lift: Estimate | None
    implied_lift: float | None
    calibration_shift: Estimate | None
    n_sent: int
    n_holdout: int
    campaigns: tuple[str, ...]
    note: str
    note_en: str
    fit: object = field(default=None, repr=False, compare=False)

    def response_at(self, log_hazard: np.ndarray) -> np.ndarray:
        """ρ for each log relative hazard (clipped to ``z_range``), between 0 and 1.

        Learned: a + b·z; assumed: a·exp(z) (proportional to the relative hazard).
        """
        z = np.clip(np.asarray(log_hazard, dtype=np.float64), *self.z_range) - self.centre
        a = self.response.estimate
        rho = a * np.exp(z) if self.slope is None else a + self.slope.estimate * z
        return np.clip(rho, 0.0, 1.0)

    def summary(self) -> pd.DataFrame:
        """The response, slope, calibration shift and measured lift as rows (:class:`Estimate` summaries)."""
        parts = [e.summary() for e in (self.response, self.slope, self.calibration_shift, self.measured_lift)
                 if e is not None]
        out = pd.concat(parts, ignore_index=True)
        return out.assign(basis=self.basis, implied_lift=self.implied_lift)

    def _repr_html_(self) -> str:
        return (f"<h4>Recall response ({escape(self.basis)})</h4><p>{escape(self.note_en)}</p>"
                + self.summary().to_html(index=False))


def _uplift_rules(rules) -> dict:
    rec = load_churn_rules(rules)["recall"]
    up = dict(rec["uplift"])
    for key in ("window_days", "max_elapsed_days", "min_rows_per_arm"):
        v = up[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise CrmAnalysisError(f"recall.uplift.{key} must be a whole number >= 1, not {v!r}")
    for key in ("assumed_response", "min_uplift"):
        v = up[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise CrmAnalysisError(f"recall.uplift.{key} must be a probability between 0 and 1, not {v!r}")
    if up["campaigns"] is not None:
        try:
            re.compile(str(up["campaigns"]))
        except re.error as err:
            raise CrmAnalysisError(f"recall.uplift.campaigns must be a regular expression or null (every "
                                   f"campaign), not {up['campaigns']!r}: {err}") from None
    return up


def _log_relative_hazard(model: ChurnModel, state: pd.DataFrame, window_days: int) -> np.ndarray:
    """log of each row's partial hazard, up to a constant: log(−log(1 − P(return within w days of a visit))).

    Read through the public :meth:`ChurnModel.predict_probability` at zero days elapsed, where
    P = 1 − exp(−H0(w)·hazard ratio).
    """
    fresh = model.predict_probability(window_days, state.assign(elapsed_days=0)).to_numpy()
    return np.log(-np.log1p(-np.clip(fresh, 1e-12, 1 - 1e-12)))


def contact_states(clinic, as_of, window_days: int, campaigns: str | None = None,
                   gaps: pd.DataFrame | None = None) -> pd.DataFrame:
    """Past contact rows whose window closed by `as_of`, each with the patient's state on the send day.

    Parameters
    ----------
    clinic : ClinicData
    as_of : str or Timestamp
    window_days : int
        A row is used when ``send day + window_days <= as_of``.
    campaigns : str or None
        Regular expression a ``campaign_id`` must contain (None: every campaign).
    gaps : DataFrame, optional
        :func:`~crm_analysis.churn.survival_data` at `as_of` (made here when omitted).

    Returns
    -------
    DataFrame
        Indexed by ``patient_id``: the gap covariates of the gap open on the
        send day, ``elapsed_days`` (send day − last visit), ``campaign_id``,
        ``sent`` (bool: assigned a message) and ``returned`` (bool: a visit in
        ``(send day, send day + window_days]``). Rows of patients with no visit
        before the send day are left out. Empty without a contacts table.
    """
    as_of = pd.Timestamp(as_of).normalize()
    if not clinic.has("contacts"):
        return pd.DataFrame()
    c = clinic.contacts
    day = c["sent_at"].dt.normalize()
    keep = (day + pd.Timedelta(days=window_days) <= as_of).to_numpy(dtype=bool, na_value=False)
    # a million contact rows name a few dozen campaigns: each name is read and matched once
    which, names = pd.factorize(c["campaign_id"], use_na_sentinel=False)
    names = pd.Series(names, dtype=c["campaign_id"].dtype).astype(str)
    if campaigns is not None:
        keep &= names.str.contains(str(campaigns), regex=True).to_numpy(dtype=bool)[which]
    arm = c["arm"].astype("object") if not isinstance(c["arm"].dtype, pd.CategoricalDtype) else c["arm"]
    rows = pd.DataFrame({"patient_id": c["patient_id"][keep].astype(str).to_numpy(),
                         "day": day.to_numpy(dtype="datetime64[ns]")[keep],
                         "campaign_id": names.to_numpy(dtype=object)[which[keep]],
                         "sent": (arm == "sent").to_numpy(dtype=bool, na_value=False)[keep]})
    if rows.empty:
        return pd.DataFrame()
    gaps = survival_data(clinic, as_of) if gaps is None else gaps
    rows = rows.sort_values("day", kind="stable").reset_index(drop=True)
    found = _gaps_around(gaps, rows["patient_id"], rows["day"].to_numpy(dtype="datetime64[ns]"))
    gap, nxt = found if found is not None else _gaps_around_by_merge(gaps, rows)
    known = gap >= 0
    gap = gap[known]
    state = gaps.iloc[gap].drop(columns=["patient_id"]).reset_index(drop=True)
    sent_day = rows["day"].to_numpy()[known]
    state["elapsed_days"] = ((sent_day - state["start_date"].to_numpy()) // np.timedelta64(1, "D")).astype(np.int64)
    state["campaign_id"] = rows["campaign_id"].to_numpy()[known]
    state["sent"] = rows["sent"].to_numpy()[known]
    nxt = nxt[known]
    state["returned"] = ~pd.isna(nxt) & (nxt <= sent_day + np.timedelta64(window_days, "D"))
    state.index = pd.Index(rows["patient_id"].to_numpy()[known], name="patient_id")
    return state


def _gaps_around(gaps: pd.DataFrame, patient_id: pd.Series, day: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """For each (patient, day): the row of the gap open on that day (its visit strictly before the day; -1 if
    none) and the start of the patient's first visit strictly after it (NaT if none).

    Uses :func:`survival_data`'s layout (each patient's gaps together, by start date, ending with the open
    one): a sorted (patient block, day) key answers both by binary search, with no merge on text ids (the
    merge needs gigabytes at a million patients). None when `gaps` does not have that layout.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from crm_analysis.features import day_numbers
    from crm_analysis.ids import arrow_text, id_positions

    n = len(gaps)
    if not n:
        return np.full(len(day), -1, np.int64), np.full(len(day), np.datetime64("NaT"), "datetime64[ns]")
    is_open = gaps["is_open"].to_numpy(dtype=bool)
    block_start = np.ones(n, dtype=bool)
    block_start[1:] = is_open[:-1]
    block = np.cumsum(block_start) - 1
    start = day_numbers(gaps["start_date"])
    ids = arrow_text(gaps["patient_id"])
    heads = ids.take(pa.array(np.flatnonzero(block_start)))
    # compared by Arrow: millions of ids as Python strings would take gigabytes
    same_as_previous = pc.fill_null(pc.equal(ids.slice(1), ids.slice(0, n - 1)), False).to_numpy(
        zero_copy_only=False)
    within = ~block_start[1:]
    layout = (bool(is_open[-1]) and heads.null_count == 0 and pc.count_distinct(heads).as_py() == len(heads)
              and np.array_equal(same_as_previous, within)
              and bool((start[1:][within] > start[:-1][within]).all()))
    del same_as_previous, within, is_open, block_start   # twenty million rows each at a million patients
    if not layout:
        return None
    who = id_positions(patient_id, heads)
    days = day_numbers(day)
    low = min(int(start.min()), int(days.min())) if len(days) else int(start.min())
    span = max(int(start.max()), int(days.max()) if len(days) else 0) - low + 1
    key = start - low
    del start
    key += block * span
    probe = np.maximum(who, 0) * span + (days - low)
    # probes in key order: the binary searches then walk the twenty-million-row key in one direction
    order = np.argsort(probe, kind="stable")
    before, after = np.empty(len(probe), np.int64), np.empty(len(probe), np.int64)
    before[order] = np.searchsorted(key, probe[order], side="left") - 1   # the last visit strictly before the day
    after[order] = np.searchsorted(key, probe[order], side="right")       # the first visit strictly after it
    ok = who >= 0
    gap = np.where(ok & (before >= 0) & (block[np.maximum(before, 0)] == who), before, -1)
    later = ok & (after < n) & (block[np.minimum(after, n - 1)] == who)
    nxt = np.where(later, gaps["start_date"].to_numpy(dtype="datetime64[ns]")[np.minimum(after, n - 1)],
                   np.datetime64("NaT"))
    return gap.astype(np.int64), nxt.astype("datetime64[ns]")


def _gaps_around_by_merge(gaps: pd.DataFrame, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_gaps_around` by two as-of merges on the patient ids, for gaps in another layout."""
    starts = pd.DataFrame({"patient_id": gaps["patient_id"].astype(str).to_numpy(),
                           "start_date": gaps["start_date"].to_numpy(dtype="datetime64[ns]"),
                           "gap": np.arange(len(gaps))})
    starts = starts.sort_values("start_date", kind="stable")
    # the gap open on the send day: the last visit strictly before it; the outcome: the first visit after it
    before = pd.merge_asof(rows, starts, left_on="day", right_on="start_date", by="patient_id",
                           direction="backward", allow_exact_matches=False)
    after = pd.merge_asof(rows, starts.rename(columns={"start_date": "next_visit"})[["patient_id", "next_visit"]],
                          left_on="day", right_on="next_visit", by="patient_id", direction="forward",
                          allow_exact_matches=False)
    gap = before["gap"].to_numpy(dtype="float64", na_value=np.nan)
    return (np.where(np.isnan(gap), -1, np.nan_to_num(gap)).astype(np.int64),
            after["next_visit"].to_numpy(dtype="datetime64[ns]"))


def _assumed(up: dict, model: ChurnModel, why_en: str, why_ko: str) -> ContactResponse:
    rho = float(up["assumed_response"])
    lhr = _log_relative_hazard(model, model.current_, int(up["window_days"]))
    lo, hi = (float(np.quantile(lhr, q)) for q in _SUPPORT_QUANTILES)
    clipped = np.clip(lhr, lo, hi)
    # centred so that the current patients' response averages the assumed value: log(mean(exp(z)))
    centre = float(logsumexp(clipped) - np.log(len(clipped)))
    return ContactResponse(
        basis="assumed", window_days=int(up["window_days"]),
        response=Estimate(rho, np.nan, np.nan, np.nan, "assumed (recall.uplift.assumed_response)", 0,
                          "proportion", "share of would-be absentees a message brings back, on average"),
        slope=None, centre=centre, z_range=(lo, hi), max_elapsed_days=int(up["max_elapsed_days"]),
        measured_lift=None, implied_lift=None, calibration_shift=None, n_sent=0, n_holdout=0, campaigns=(),
        note=f"{why_ko} 메시지 반응률을 평균 {rho:.0%}로 가정하고, 재방문이 잦은 환자일수록 비례해 높게 "
             "보았습니다(측정값 아님).",
        note_en=f"{why_en} a {rho:.0%} average response to a message is assumed, not measured, higher in "
                "proportion to how readily the patient returns (the churn model's hazard ratio).")


def learn_contact_response(clinic, as_of, model: ChurnModel, *, rules=None,
                           gaps: pd.DataFrame | None = None) -> ContactResponse:
    """The response to a recall message, learned from past campaign holdouts (assumed without them).

    Parameters
    ----------
    clinic : ClinicData
    as_of : str or Timestamp
        Only contacts whose window closed by then are used, and only data up to it.
    model : ChurnModel
        Fitted at `as_of`; gives p0 and the relative hazard of each past contact.
    rules : path, mapping or None
        Churn rules (``recall.uplift``: window, campaigns, minimum rows per arm,
        assumed response, longest absence).
    gaps : DataFrame, optional
        :func:`~crm_analysis.churn.survival_data` at `as_of` (made here when needed).

    Returns
    -------
    ContactResponse
        ``basis`` ``"holdouts"`` when both arms have at least
        ``min_rows_per_arm`` rows, otherwise ``"assumed"`` with a note saying so.

    Raises
    ------
    CrmAnalysisError
        If `model` was fitted at another date.
    """
    up = _uplift_rules(rules)
    as_of = pd.Timestamp(as_of).normalize()
    if getattr(model, "as_of_", None) != as_of:
        raise CrmAnalysisError(f"the churn model must be fitted at {as_of:%Y-%m-%d} to learn the response to "
                               "recall messages; fit it at the same as_of")
    w, need = int(up["window_days"]), int(up["min_rows_per_arm"])
    rows = contact_states(clinic, as_of, w, up["campaigns"], gaps=gaps)
    n_sent = int(rows["sent"].sum()) if len(rows) else 0
    n_hold = len(rows) - n_sent
    if min(n_sent, n_hold) < need:
        pattern = f" of campaigns matching {up['campaigns']!r}" if up["campaigns"] is not None else ""
        what = (f"no past campaign contacts{pattern} with a closed window" if not len(rows)
                else f"{n_sent} sent and {n_hold} holdout rows")
        return _assumed(up, model, f"Past campaigns give {what} (fewer than {need} per arm), so",
                        f"과거 캠페인 발송군·대조군 기록이 부족하여(각 {need}건 미만)")
    p0 = model.predict_probability(w, rows).to_numpy()
    lhr = _log_relative_hazard(model, rows, w)
    lo, hi = (float(np.quantile(lhr, q)) for q in _SUPPORT_QUANTILES)
    centre = float(np.mean(lhr))
    z = np.clip(lhr, lo, hi) - centre
    u = 1.0 - p0
    t = rows["sent"].to_numpy(dtype=np.float64)
    y = rows["returned"].to_numpy(dtype=np.float64)
    design = pd.DataFrame({"calibration": u, "response": t * u, "slope": t * u * z})
    groups = pd.factorize(rows.index)[0]
    fit = sm.OLS(y - p0, design).fit(cov_type="cluster", cov_kwds={"groups": groups})
    ci = fit.conf_int()

    def estimate(name: str, estimand: str, scale: str) -> Estimate:
        return Estimate(float(fit.params[name]), float(ci.loc[name, 0]), float(ci.loc[name, 1]),
                        float(fit.pvalues[name]), "OLS of (returned − p0), patient-clustered SE", len(rows), scale,
                        estimand)

    response = estimate("response", "share of would-be absentees a message brings back", "risk_difference")
    slope = estimate("slope", "change of the response per unit of log relative return hazard", "difference")
    shift = estimate("calibration", "returns the churn model missed, as a share of 1 − p0", "risk_difference")
    r_sent, r_hold = float(y[t == 1].mean()), float(y[t == 0].mean())
    m_lo, m_hi = confint_proportions_2indep(int(y[t == 1].sum()), n_sent, int(y[t == 0].sum()), n_hold,
                                            method="newcomb", compare="diff")
    measured = Estimate(r_sent - r_hold, float(m_lo), float(m_hi), np.nan, "Newcombe interval", len(rows),
                        "risk_difference", f"return rate within {w} days, sent − holdout")
    max_seen = int(rows["elapsed_days"].max())
    result = ContactResponse(
        basis="holdouts", window_days=w, response=response, slope=slope, centre=centre, z_range=(lo, hi),
        max_elapsed_days=min(int(up["max_elapsed_days"]), max_seen), measured_lift=measured, implied_lift=None,
        calibration_shift=shift, n_sent=n_sent, n_holdout=n_hold,
        campaigns=tuple(sorted(pd.unique(rows["campaign_id"]))), note="", note_en="", fit=fit)
    implied = float(np.mean(u * result.response_at(lhr)))
    rho = float(np.clip(response.estimate, 0, 1))
    return replace(result, implied_lift=implied,
                   note=f"과거 캠페인 {len(result.campaigns)}건의 대조군 비교(발송 {n_sent:,}건, "
                        f"대조 {n_hold:,}건)에서 메시지 반응률 {rho:.1%}를 추정했습니다.",
                   note_en=f"The response ({rho:.1%}) is learned from {len(result.campaigns)} past campaigns' "
                           f"holdouts ({n_sent:,} sent, {n_hold:,} held out).")


def expected_uplift(model: ChurnModel, response: ContactResponse,
                    state: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each patient's P(return in the window) without a message and the uplift a message adds.

    Parameters
    ----------
    model : ChurnModel
        Fitted.
    response : ContactResponse
        From :func:`learn_contact_response`.
    state : DataFrame, optional
        Open gaps (default: every patient at the model's ``as_of_``).

    Returns
    -------
    DataFrame
        Indexed like `state`: ``p_without_contact`` (p0 over
        ``response.window_days``) and ``uplift`` = (1 − p0)·ρ.
    """
    state = model.current_ if state is None else state
    p0 = model.predict_probability(response.window_days, state).to_numpy()
    rho = response.response_at(_log_relative_hazard(model, state, response.window_days))
    return pd.DataFrame({"p_without_contact": p0, "uplift": (1.0 - p0) * rho}, index=state.index)
