"""Word of mouth: where new patients come from, who refers them, and what referrals are worth.

Uses ``patients.referral_source`` (how a new patient first came) and
``patients.referred_by`` (the patient who referred them). A referral counts
from the referred patient's first visit, and only first visits on or before
``as_of`` are used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analysis.features import patient_features
from crm_analysis.sufficiency import require

__all__ = ["referral_source_by_month", "top_referrers", "referral_value_summary", "plot_referral_sources"]

UNKNOWN = "unknown"


def _new_patients(clinic, as_of) -> pd.DataFrame:
    as_of = pd.Timestamp(as_of).normalize()
    require("referrals", clinic, as_of)
    p = clinic.tables["patients"]
    p = p.loc[(p["first_visit_date"] <= as_of).to_numpy(dtype=bool, na_value=False)]
    return p


def referral_source_by_month(clinic, as_of, *, share: bool = True) -> pd.DataFrame:
    """New patients per month by referral source.

    Parameters
    ----------
    clinic : ClinicData
    as_of : str or Timestamp
        Last day included (a month cut by it is partial).
    share : bool
        True: each source's share of the month's new patients; False: counts.

    Returns
    -------
    DataFrame
        Index ``month`` (Period), one column per source (``unknown`` for a
        missing source) and ``new_patients`` (the month's total).
    """
    p = _new_patients(clinic, as_of)
    source = p["referral_source"].astype("object").fillna(UNKNOWN)
    month = p["first_visit_date"].dt.to_period("M").rename("month")
    counts = pd.crosstab(month, source)
    counts.columns.name = None
    total = counts.sum(axis=1)
    out = counts.div(total, axis=0) if share else counts
    out["new_patients"] = total
    return out


def top_referrers(clinic, as_of, n: int = 10, *, features: pd.DataFrame | None = None,
                  anonymise: bool = False) -> pd.DataFrame:
    """The patients who referred the most new patients, with their value and their referrals' value.

    Parameters
    ----------
    clinic : ClinicData
    as_of : str or Timestamp
    n : int
        How many referrers to list.
    features : DataFrame, optional
        :func:`~crm_analysis.features.patient_features` at `as_of` (computed
        when not given).
    anonymise : bool
        True replaces ``patient_id`` by the rank (for reports: no ids shown).

    Returns
    -------
    DataFrame
        Indexed by ``patient_id`` (or ``rank``): ``referrals``,
        ``own_value_total``, ``own_value_12m``, ``referred_value_total``
        (all charges of the patients they referred, up to as_of),
        ``referred_value_12m``. Ordered by referrals, then referred value,
        then id.
    """
    f = features if features is not None else patient_features(clinic, as_of)
    p = _new_patients(clinic, as_of)
    ref = p[["patient_id", "referred_by"]].dropna()
    ref = ref[ref["referred_by"].isin(f.index)]
    vals = f[["monetary_total", "value_12m"]].reindex(ref["patient_id"].to_numpy())
    per = pd.DataFrame({"referrer": ref["referred_by"].to_numpy(),
                        "referred_value_total": vals["monetary_total"].fillna(0).to_numpy(),
                        "referred_value_12m": vals["value_12m"].fillna(0).to_numpy()})
    g = per.groupby("referrer")
    out = pd.DataFrame({"referrals": g.size(), "referred_value_total": g["referred_value_total"].sum(),
                        "referred_value_12m": g["referred_value_12m"].sum()})
    out.insert(1, "own_value_total", f["monetary_total"].reindex(out.index).to_numpy())
    out.insert(2, "own_value_12m", f["value_12m"].reindex(out.index).to_numpy())
    out.index.name = "patient_id"
    out = out.reset_index().sort_values(["referrals", "referred_value_total", "patient_id"],
                                        ascending=[False, False, True]).head(n)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out.drop(columns="patient_id").set_index("rank") if anonymise else out.set_index("patient_id")


def referral_value_summary(clinic, as_of, *, features: pd.DataFrame | None = None) -> pd.DataFrame:
    """Referred versus other patients: how many, and their mean value and visits.

    Returns
    -------
    DataFrame
        Rows ``referred by a patient``, ``word of mouth, no referrer named``,
        ``other sources``; columns ``patients``, ``share``,
        ``value_total_mean``, ``value_12m_mean``, ``frequency_mean``.
        Also the number of distinct referrers in ``attrs["referrers"]``.
    """
    f = features if features is not None else patient_features(clinic, as_of)
    p = _new_patients(clinic, as_of).set_index("patient_id")
    p = p.reindex(f.index)
    named = p["referred_by"].notna().to_numpy()
    wom = (p["referral_source"].astype("object") == "word_of_mouth").to_numpy()
    group = np.where(named, "referred by a patient", np.where(wom, "word of mouth, no referrer named",
                                                              "other sources"))
    g = f[["monetary_total", "value_12m", "frequency"]].groupby(group)
    out = pd.DataFrame({"patients": g.size(), "value_total_mean": g["monetary_total"].mean(),
                        "value_12m_mean": g["value_12m"].mean(), "frequency_mean": g["frequency"].mean()})
    out.insert(1, "share", out["patients"] / max(len(f), 1))
    out = out.reindex(["referred by a patient", "word of mouth, no referrer named", "other sources"])
    out.index.name = "group"
    out.attrs["referrers"] = int(p["referred_by"].dropna().nunique())
    return out


def plot_referral_sources(shares: pd.DataFrame, lang: str = "ko", ax=None, min_new: int = 1):
    """Monthly share of new patients by referral source (lines), from :func:`referral_source_by_month`.

    Months with fewer than `min_new` new patients are left out (their shares are noise).
    """
    import matplotlib.pyplot as plt

    from crm_analysis.i18n import LABELS, label

    ax = ax or plt.subplots(figsize=(8, 3.8))[1]
    df = shares[shares["new_patients"] >= min_new].drop(columns="new_patients")
    x = df.index.to_timestamp() if isinstance(df.index, pd.PeriodIndex) else df.index
    for col in df.columns[df.mean().argsort()[::-1]]:
        name = LABELS.get(f"seg_{col}", {}).get(lang, col)
        ax.plot(x, df[col], lw=2 if col == "word_of_mouth" else 1, label=name)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_title(label("seg_referral_title", lang))
    ax.legend(fontsize=7, ncol=2)
    return ax
