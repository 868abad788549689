"""Per-gap and per-appointment frames built from the tables alone (as estimators would)."""

from __future__ import annotations

import numpy as np
import pandas as pd

DEPARTMENTS_NON_REF = ["소아청소년과", "정형외과", "피부과", "산부인과", "가정의학과", "이비인후과", "안과"]


def gap_frame(clinic) -> pd.DataFrame:
    """One row per visit: days to the next visit (event) or to `end` (censored), plus covariates."""
    t = clinic.tables
    end = pd.Timestamp(clinic.truth["end"])
    v = t["visits"].sort_values(["patient_id", "visit_date", "visit_id"])
    p = t["patients"].set_index("patient_id")
    first = v.groupby("patient_id", sort=False).head(1).set_index("patient_id").reindex(p.index)
    nxt = v.groupby("patient_id")["visit_date"].shift(-1)
    age = ((p["first_visit_date"] - p["birth_date"]).dt.days // 365.25).astype(int)
    band = pd.cut(age, [-1, 19, 39, 59, 200], labels=["0-19", "20-39", "40-59", "60+"])
    x = pd.DataFrame(index=p.index)
    for b in ["0-19", "40-59", "60+"]:
        x[f"age_band[{b}]"] = (band == b).astype(float)
    x["sex[F]"] = (p["sex"] == "F").astype(float)
    for d in DEPARTMENTS_NON_REF:
        x[f"main_department[{d}]"] = (first["department"] == d).astype(float)
    x["referral[word_of_mouth]"] = (p["referral_source"] == "word_of_mouth").fillna(False).astype(float)
    x["self_pay_heavy[yes]"] = (first["charge_self_pay"] > first["charge_insured"]).astype(float)
    df = x.loc[v["patient_id"].to_numpy()].reset_index(drop=True)
    df["duration"] = (nxt.fillna(end) - v["visit_date"]).dt.days.to_numpy()
    df["event"] = nxt.notna().to_numpy().astype(int)
    return df[df["duration"] > 0].reset_index(drop=True)


def noshow_frame(clinic) -> tuple[pd.DataFrame, pd.Series]:
    """Design matrix of the true no-show logit over non-cancelled appointments, and the outcome."""
    t = clinic.tables
    start = pd.Timestamp(clinic.truth["start"])
    a = t["appointments"].sort_values(["patient_id", "scheduled_at", "appointment_id"]).copy()
    a["ns"] = (a["status"] == "no_show").astype(int)
    a["prior"] = a.groupby("patient_id")["ns"].cumsum() - a["ns"]
    r = t["reminders"]
    got = r[r["delivered"].fillna(False)].groupby(["appointment_id", "schedule"], observed=True).size()
    got = got.unstack(fill_value=0)
    nc = a[a["status"].isin(["attended", "no_show"])]
    x = pd.DataFrame(index=nc.index)
    x["const"] = 1.0
    x["lead"] = np.log1p((nc["scheduled_at"].dt.normalize() - nc["booked_at"].dt.normalize()).dt.days)
    x["prior"] = np.minimum(nc["prior"], 3).astype(float)
    month = nc["scheduled_at"].dt.month
    for k in range(2, 13):
        x[f"m{k:02d}"] = (month == k).astype(float)
    x["trend"] = (nc["scheduled_at"].dt.normalize() - start).dt.days / 365.25
    for d in DEPARTMENTS_NON_REF:
        x["dept_" + d] = (nc["department"] == d).astype(float)
    for s in ["3d", "1d", "2h"]:
        col = got[s] if s in got else pd.Series(dtype=float)
        x["rem_" + s] = (col.reindex(nc["appointment_id"]).fillna(0).to_numpy() > 0).astype(float)
    return x, (nc["status"] == "no_show").astype(int)


def noshow_truth(clinic) -> dict[str, float]:
    """True coefficients on the columns of :func:`noshow_frame` (January is the reference month)."""
    m = clinic.truth["appointments"]["no_show_model"]
    out = {"const": m["b0"] + m["month"]["01"], "lead": m["b_lead"], "prior": m["b_prior"],
           "trend": m["b_trend_per_year"]}
    for k in range(2, 13):
        out[f"m{k:02d}"] = m["month"][f"{k:02d}"] - m["month"]["01"]
    for d in DEPARTMENTS_NON_REF:
        out["dept_" + d] = m["department"][d]
    for s, v in m["reminder"].items():
        out["rem_" + s] = v
    return out
