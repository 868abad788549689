"""Look a patient up by phone or id and assemble their card.

:func:`patient_card` is the one call the front desk needs::

    cards = patient_card(clinic, phone="010-1234-5678", as_of="2026-10-31")

The heavy analytics (segments, VIP list, churn and lifetime-value models) are
computed once per (clinic, as_of) in a :class:`~crm_analysis.profile.context.CardContext`
and reused for every later lookup on the same data (:func:`card_context`); the
card itself is assembled from one patient's rows. Every lookup, found or not,
is written to the access log first (:class:`~crm_analysis.profile.access_log.AccessLog`).
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import pandas as pd

from crm_analysis.contract import CHANNELS
from crm_analysis.exceptions import PatientNotFoundError  # re-exported: its old home
from crm_analysis.i18n import check_lang
from crm_analysis.profile.access_log import AccessLog
from crm_analysis.profile.card import PatientCard, PatientCards
from crm_analysis.profile.context import CardContext

__all__ = ["patient_card", "card_context", "build_card", "PatientNotFoundError"]

_CACHE: list[tuple[Any, tuple, CardContext]] = []
_CACHE_SIZE = 2


def card_context(clinic, as_of, **options) -> CardContext:
    """The :class:`CardContext` of `clinic` at `as_of`, built on first use and then reused.

    The last two contexts are kept (by identity of the ClinicData object, so a
    reloaded clinic builds afresh). `options` are those of :meth:`CardContext.build`.
    """
    if as_of is None:
        raise ValueError("a patient card needs an explicit as_of date, e.g. as_of='2026-10-31'")
    key = (pd.Timestamp(as_of).normalize(), tuple(sorted((k, repr(v)) for k, v in options.items())))
    for ref, k, ctx in _CACHE:
        if ref() is clinic and k == key:
            return ctx
    ctx = CardContext.build(clinic, as_of, **options)
    _CACHE[:] = [entry for entry in _CACHE if entry[0]() is not None][-(_CACHE_SIZE - 1):]
    _CACHE.append((weakref.ref(clinic), key, ctx))
    return ctx


def patient_card(clinic, *, phone: object = None, patient_id: str | None = None, as_of,
                 context: CardContext | None = None, access_log=None, lang: str = "ko",
                 n_campaigns: int = 3, **options) -> PatientCards:
    """The card(s) of the patient(s) with `phone`, or of `patient_id`.

    Parameters
    ----------
    clinic : ClinicData
    phone : str, optional
        Any common spelling of a Korean number: ``010-1234-5678``,
        ``01012345678``, ``+82 10-1234-5678``. Everyone sharing it (a family)
        gets a card.
    patient_id : str, optional
        Look up one patient by id instead.
    as_of : str or Timestamp
        The day the card describes (required).
    context : CardContext, optional
        A context built for this clinic and `as_of`; by default one is built on
        first use and reused (:func:`card_context`).
    access_log : str, Path or AccessLog, optional
        Where the lookup is logged (default ``$CRM_ANALYSIS_ACCESS_LOG`` or
        ``~/.crm_analysis/access.log``). Every lookup is logged; the phone
        number never is.
    lang : {"ko", "en"}
        Display language of the cards.
    n_campaigns : int
        How many of the latest campaigns to show.
    **options
        Passed to :meth:`CardContext.build` when a context is built
        (``churn=False``, ``clv=False``, rule overrides).

    Returns
    -------
    PatientCards
        One :class:`PatientCard` per patient found, in patient-table order.

    Raises
    ------
    PatientNotFoundError
        If nobody has that number or id (after logging the lookup).
    ValueError
        If neither or both of `phone` and `patient_id` are given, or `phone` is
        not a valid number.
    """
    lang = check_lang(lang)
    if (phone is None) == (patient_id is None):
        raise ValueError("give exactly one of phone= or patient_id=")
    as_of = pd.Timestamp(as_of).normalize() if as_of is not None else None
    if context is None:
        context = card_context(clinic, as_of, **options)
    elif as_of is not None and context.as_of != as_of:
        raise ValueError(f"the context describes {context.as_of:%Y-%m-%d}, not {as_of:%Y-%m-%d}; "
                         "build one with card_context(clinic, as_of)")
    query = "phone" if phone is not None else "patient_id"
    rows = context.rows_for_phone(phone) if phone is not None else context.rows_for_id(patient_id)
    ids = [str(context.ids[int(pos)]) for pos in rows]
    log = access_log if isinstance(access_log, AccessLog) else AccessLog(access_log)
    log.record(ids, query=query, as_of=context.as_of, source=getattr(clinic, "source", "") or "")
    if not ids:
        what = "with that phone number" if phone is not None else f"with id {patient_id}"
        raise PatientNotFoundError(f"no patient found {what} (data as of {context.as_of:%Y-%m-%d})")
    cards = tuple(build_card(context, int(pos), lang=lang, n_campaigns=n_campaigns) for pos in rows)
    return PatientCards(cards=cards, as_of=context.as_of, query=query, lang=lang)


# ---------------------------------------------------------------------------- assembling one card

def _plain(value: Any):
    """numpy/pandas scalars as plain Python; missing as None."""
    if value is None:
        return None
    if not isinstance(value, (str, list, dict)) and pd.isna(value):
        return None
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _bool(value: Any) -> bool:
    return bool(_plain(value) or False)


def build_card(context: CardContext, pos: int, *, lang: str = "ko", n_campaigns: int = 3) -> PatientCard:
    """Assemble the card of the patient at row `pos` of ``context.patients`` (no logging: use :func:`patient_card`)."""
    as_of = context.as_of
    p = context.patients.iloc[pos]
    pid = str(p["patient_id"])
    notes = {k: v for k, v in context.notes.items()}
    fields: dict[str, Any] = {}

    f = context.lookup("features", pid)
    if f is not None:
        fields.update(
            first_visit=_plain(f["first_visit_date"]), last_visit=_plain(f["last_visit_date"]),
            last_department=_plain(f["last_department"]), visit_days=int(f["frequency"]),
            visits_12m=int(f["visits_12m"]), value_12m=float(f["value_12m"]),
            value_lifetime=float(f["monetary_total"]), age=_plain(f["age"]), age_band=_plain(f["age_band"]))
    elif context.features is not None:  # known (e.g. booked) but no first visit yet
        fields.update(first_visit=_plain(p.get("first_visit_date")), value_12m=0.0, value_lifetime=0.0)
    fields.update(sex=_plain(p.get("sex")), record_status=_plain(p.get("record_status")))

    s = context.lookup("segments", pid)
    if s is not None:
        name = str(s["segment"])
        rules = context.settings.get("segment_rules") or {}
        rule = next((r for r in [*rules.get("segments", []), rules.get("catch_all", {})] if r.get("name") == name), {})
        fields.update(segment=name, segment_ko=rule.get("ko"), segment_action=dict(rule.get("action", {})),
                      rfm=str(s["rfm"]))
    if context.vips is not None and f is not None:
        fields.update(_vip(context.vips, context.lookup("vips", pid), f))

    c = context.lookup("churn", pid)
    if c is not None:
        fields.update(p_return=float(c["p_return"]), overdue_ratio=_plain(c["overdue_ratio"]),
                      elapsed_days=_plain(c["elapsed_days"]), usual_interval_days=_plain(c["usual_interval_days"]),
                      recall_candidate=_bool(c["candidate"]),
                      return_horizon_days=context.settings.get("return_horizon_days", 180))
    elif context.churn is not None:
        notes.setdefault("churn", "no visit yet, so no return interval")
    if context.clv is not None:
        value = context.lookup("clv", pid)
        if value is not None:
            fields["predicted_value"] = float(value)
    fields["predicted_horizon_days"] = context.settings.get("clv_horizon_days", 365)

    fields.update(_appointments(context.rows("appointments", pos), as_of))
    fields.update(_consent(p, context.consent.iloc[pos]))
    fields["campaigns"] = _campaigns(context.rows("contacts", pos), n_campaigns)
    fields["campaign_window_days"] = context.settings["campaign_window_days"]
    fields.update(_pregnancy(context.rows("pregnancies", pos), as_of))
    fields["children"] = _children(context.rows("children", pos))
    return PatientCard(patient_id=pid, name=_plain(p.get("name")), as_of=as_of, notes=notes, lang=lang, **fields)


def _money(value: float, lang: str) -> str:
    return f"{value:,.0f}원" if lang == "ko" else f"KRW {value:,.0f}"


def _vip(vips: pd.DataFrame, row, f) -> dict[str, Any]:
    """VIP status and the reason in both languages, from select_vips' row (or why the patient is not in it)."""
    from crm_analysis.i18n import label

    cfg = vips.attrs.get("rules", {})
    threshold = float(vips.attrs.get("threshold", np.inf))
    pct = f"{round(cfg.get('top_value_share', 0) * 100, 2):g}"
    capacity = cfg.get("capacity")

    def both(key: str, **kw) -> dict[str, str]:
        out = {}
        for lang in ("ko", "en"):
            money = {k: _money(v, lang) for k, v in kw.items() if k in ("value", "threshold", "score")}
            out[lang] = label(key, lang).format(**{**kw, **money})
        return out

    if row is not None:
        status = "selected" if _bool(row["selected"]) else "over_capacity"
        kw = dict(value=float(row["value_12m"]), threshold=threshold, visits=int(row["visits_12m"]), pct=pct)
        if str(row["rule"]) == "top_value":
            reason = both("profile_vip_top", **kw)
        else:
            reason = both("profile_vip_referral", refs=int(row["referral_count"]), score=float(row["score"]), **kw)
        return {"vip_status": status, "vip_reason": {**reason, "capacity": capacity or ""}}
    value, visits, refs = float(f["value_12m"]), int(f["visits_12m"]), int(f["referral_count"])
    bonus = cfg.get("referral_bonus", {})
    mult = 1 + (bonus.get("per_referral", 0) * min(refs, bonus.get("max_referrals", 0)) if bonus.get("enabled") else 0)
    if value <= 0 or value * mult < threshold:
        reason = both("profile_vip_below", value=value, threshold=threshold if np.isfinite(threshold) else 0.0)
    elif visits < cfg.get("min_visits", 0):
        reason = both("profile_vip_few_visits", visits=visits, min_visits=cfg.get("min_visits", 0))
    else:
        reason = both("profile_vip_excluded")
    return {"vip_status": "no", "vip_reason": reason}


def _appointments(appts: pd.DataFrame | None, as_of: pd.Timestamp) -> dict[str, Any]:
    cols = ["appointment_id", "scheduled_at", "department"]
    if appts is None:
        return {"upcoming": pd.DataFrame(columns=cols)}
    end = as_of + pd.Timedelta(days=1)
    status = appts["status"].astype("object")
    ahead = (status == "booked").to_numpy() & (appts["scheduled_at"] >= as_of).to_numpy(dtype=bool, na_value=False)
    upcoming = appts.loc[ahead, cols].sort_values("scheduled_at", kind="stable").reset_index(drop=True)
    past = (appts["scheduled_at"] < end).to_numpy(dtype=bool, na_value=False)
    no_show = past & (status == "no_show").to_numpy()
    kept_or_missed = past & status.isin(["attended", "no_show"]).to_numpy()
    last = appts.loc[no_show, "scheduled_at"].max() if no_show.any() else None
    return {"upcoming": upcoming, "past_appointments": int(kept_or_missed.sum()), "no_shows": int(no_show.sum()),
            "last_no_show": _plain(last)}


def _consent(p: pd.Series, flags: pd.Series) -> dict[str, Any]:
    """Consent and opt-out per channel; validity precomputed by the context (campaign rules)."""
    rows = {ch: {"consent": _bool(p.get(f"{ch}_consent")), "consent_date": _plain(p.get(f"{ch}_consent_date")),
                 "consent_valid": bool(flags[f"{ch}_valid"]), "opt_out": bool(flags[f"{ch}_opted_out"]),
                 "opt_out_date": _plain(p.get(f"{ch}_opt_out_date"))} for ch in CHANNELS}
    consent = pd.DataFrame.from_dict(rows, orient="index")
    consent.index.name = "channel"
    night = _bool(p.get("night_ad_consent"))
    return {"consent": consent, "night_ad_consent": night,
            "night_ad_consent_date": _plain(p.get("night_ad_consent_date")) if night else None}


def _campaigns(contacts: pd.DataFrame | None, n: int) -> pd.DataFrame:
    cols = ["campaign_id", "sent_at", "channel", "arm", "delivered", "opened", "clicked", "replied",
            "returned", "revenue"]
    if contacts is None or contacts.empty or n <= 0:
        return pd.DataFrame(columns=cols)
    last = contacts.sort_values(["sent_at", "contact_id"], ascending=False, kind="stable").head(n)
    out = last.reindex(columns=cols).reset_index(drop=True)
    for col in ("channel", "arm"):
        out[col] = out[col].astype("object")
    return out


def _pregnancy(preg: pd.DataFrame | None, as_of: pd.Timestamp) -> dict[str, Any]:
    if preg is None or preg.empty:
        return {}
    from crm_analysis.schedules import gestational_week

    ongoing = preg.loc[preg["outcome"].isna().to_numpy()]
    if ongoing.empty:
        return {}
    weeks = gestational_week(ongoing["due_date"].to_numpy(), np.full(len(ongoing), as_of))
    ok = (weeks >= 0) & (weeks <= 42)
    if not ok.any():
        return {}
    i = int(np.flatnonzero(ok)[np.argmax(ongoing["due_date"].to_numpy()[ok])])
    return {"pregnancy_week": int(weeks[i]), "due_date": _plain(ongoing["due_date"].iloc[i])}


def _children(kids: pd.DataFrame | None) -> pd.DataFrame:
    """The patient's children (patients naming them as guardian) with their next vaccinations."""
    cols = ["patient_id", "name", "birth_date", "due_from", "due_to", "vaccines_ko", "vaccines_en"]
    if kids is None or kids.empty:
        return pd.DataFrame(columns=cols)
    out = kids.reindex(columns=cols).reset_index(drop=True)
    out["patient_id"] = out["patient_id"].astype(str)
    out["name"] = out["name"].astype("object")
    return out
