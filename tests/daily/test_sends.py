"""The day's reminder sends against an independent, straightforward computation, over many days.

The reference below is written from the rules as stated (docs and campaigns.yaml), not from the planner:
booked before the day began and not cancelled by then; 3d / 1d at 10:00 on that day, 2h two hours before
but not before 08:00; a step only when its time is after the booking and before the appointment; inside
08:00-21:00 (later moves to the next morning); the first channel (kakao, then sms) with a phone, no
opt-out known at the moment and no hard suppression; never to deceased or moved patients.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analysis.campaigns.definitions import load_campaigns
from crm_analysis.campaigns.suppression import suppression_list
from crm_analysis.daily import appointments_at, reminder_sends
from crm_analysis.exceptions import SourceError

#: Seed of the random days (printed on failure through the test id).
DAYS_SEED = 19
#: Many days across the data: every programme period, weekdays and weekends, month ends, holidays.
_FIXED = ["2025-09-01", "2025-12-31", "2026-01-01", "2026-02-17", "2026-03-01", "2026-05-05", "2026-10-01",
          "2026-10-31", "2026-11-01"]
_RNG = np.random.default_rng(DAYS_SEED)
DAYS = _FIXED + sorted(str(d.date()) for d in pd.Timestamp("2024-01-01") + pd.to_timedelta(
    _RNG.choice(np.arange(0, 1035), size=20, replace=False), unit="D"))


def _window(at: pd.Series) -> pd.Series:
    day = at.dt.normalize()
    minute = at.dt.hour * 60 + at.dt.minute
    early = day + pd.Timedelta(hours=8)
    return at.where(minute >= 8 * 60, early).where(minute < 21 * 60, early + pd.Timedelta(days=1))


def expected_sends(clinic, day: str) -> pd.DataFrame:
    """The reference computation (see the module docstring)."""
    moment = pd.Timestamp(day)
    a = clinic.tables["appointments"]
    cancelled = (a["cancelled_at"] < moment).fillna(False) | (
        a["status"].astype(object).isin(["cancelled", "rescheduled"]) & a["cancelled_at"].isna())
    live = a.loc[((a["booked_at"] < moment) & ~cancelled & (a["scheduled_at"] >= moment)).to_numpy()]
    parts = []
    for step, at in (("3d", live["scheduled_at"].dt.normalize() - pd.Timedelta(days=3) + pd.Timedelta(hours=10)),
                     ("1d", live["scheduled_at"].dt.normalize() - pd.Timedelta(days=1) + pd.Timedelta(hours=10)),
                     ("2h", np.maximum(live["scheduled_at"] - pd.Timedelta(hours=2),
                                       live["scheduled_at"].dt.normalize() + pd.Timedelta(hours=8)))):
        ok = (at > live["booked_at"]) & (at < live["scheduled_at"]) & (at >= moment) \
            & (at < moment + pd.Timedelta(days=1))
        sub = live.loc[ok.to_numpy()]
        final = _window(at[ok.to_numpy()])
        keep = ((final < moment + pd.Timedelta(days=1)) & (final < sub["scheduled_at"])).to_numpy()
        parts.append(pd.DataFrame({"appointment_id": sub["appointment_id"].astype(str).to_numpy()[keep],
                                   "patient_id": sub["patient_id"].astype(str).to_numpy()[keep], "step": step,
                                   "send_at": final.to_numpy()[keep]}))
    out = pd.concat(parts, ignore_index=True)
    p = clinic.tables["patients"].assign(patient_id=lambda f: f["patient_id"].astype(str)).set_index("patient_id")
    p = p.reindex(out["patient_id"])
    active = ~p["record_status"].astype(object).isin(["deceased", "moved"]).to_numpy()
    snap = clinic.snapshot(moment - pd.Timedelta(days=1))
    supp = suppression_list(snap.tables["contacts"], snap.tables["visits"], moment - pd.Timedelta(days=1),
                            rules=load_campaigns().suppression)
    hard = set(supp.loc[supp["scope"] == "all", "patient_id"].astype(str) + "|"
               + supp.loc[supp["scope"] == "all", "channel"].astype(str))
    channel = pd.Series(None, index=out.index, dtype=object)
    for ch in ("kakao", "sms"):
        flag = p[f"{ch}_opt_out"].astype("boolean").fillna(False).to_numpy(dtype=bool)
        date = p[f"{ch}_opt_out_date"]
        out_known = flag & (date.isna() | (date < moment)).to_numpy()
        ok = p["phone"].notna().to_numpy() & ~out_known & ~(out["patient_id"] + "|" + ch).isin(hard).to_numpy()
        channel[ok & channel.isna().to_numpy()] = ch
    out["channel"] = channel
    return out.loc[active & channel.notna().to_numpy()].reset_index(drop=True)


def _key(frame: pd.DataFrame) -> set:
    return set(zip(frame["appointment_id"].astype(str), frame["step"].astype(str),
                   pd.to_datetime(frame["send_at"]), frame["channel"].astype(str)))


@pytest.mark.parametrize("day", DAYS)
def test_daily_sends_match_the_reference_computation(clinic, day):
    got = reminder_sends(clinic, day)
    want = expected_sends(clinic, day)
    missing, extra = _key(want) - _key(got.sends), _key(got.sends) - _key(want)
    assert not missing and not extra, f"{day} (days seed {DAYS_SEED}): missing {sorted(missing)[:3]}, " \
                                      f"extra {sorted(extra)[:3]}"
    assert not got.sends.duplicated(["appointment_id", "step"]).any()


@pytest.mark.parametrize("day", DAYS[::4])
def test_every_send_obeys_the_rules(clinic, day):
    moment = pd.Timestamp(day)
    s = reminder_sends(clinic, day).sends
    a = clinic.tables["appointments"].assign(appointment_id=lambda f: f["appointment_id"].astype(str))
    a = a.set_index("appointment_id").reindex(s["appointment_id"])
    assert (a["booked_at"].to_numpy() < moment).all()  # booked before the moment
    assert (a["cancelled_at"].isna() | (a["cancelled_at"] >= moment)).all()  # not cancelled by then
    assert (s["send_at"].to_numpy() > a["booked_at"].to_numpy()).all()  # never before the booking
    assert (s["send_at"].to_numpy() < a["scheduled_at"].to_numpy()).all()  # never after the appointment
    minute = s["send_at"].dt.hour * 60 + s["send_at"].dt.minute
    assert ((minute >= 8 * 60) & (minute < 21 * 60)).all()  # the 08:00-21:00 window
    assert ((s["send_at"] >= moment) & (s["send_at"] < moment + pd.Timedelta(days=1))).all()
    p = clinic.tables["patients"].assign(patient_id=lambda f: f["patient_id"].astype(str)).set_index("patient_id")
    p = p.reindex(s["recipient_id"])
    for ch in ("kakao", "sms"):
        on = (s["channel"] == ch).to_numpy()
        opted = p[f"{ch}_opt_out"].astype("boolean").fillna(False).to_numpy(dtype=bool) & (
            p[f"{ch}_opt_out_date"].isna() | (p[f"{ch}_opt_out_date"] < moment)).to_numpy()
        assert not (on & opted).any()
    assert not p["record_status"].astype(object).isin(["deceased", "moved"]).any()
    assert s["message"].str.len().gt(0).all() and s["step"].isin(["3d", "1d", "2h"]).all()


def test_a_cancellation_stops_the_later_steps(clinic):
    a = clinic.tables["appointments"]
    c = a.loc[(a["status"] == "cancelled").to_numpy()
              & ((a["scheduled_at"] - a["cancelled_at"]) > pd.Timedelta(days=2)).to_numpy()
              & ((a["cancelled_at"] - a["booked_at"]) > pd.Timedelta(days=4)).to_numpy()
              & (a["scheduled_at"] > pd.Timestamp("2025-10-01")).to_numpy()].iloc[0]
    before = (c["cancelled_at"] - pd.Timedelta(days=1)).normalize()
    after = c["cancelled_at"].normalize() + pd.Timedelta(days=1)
    known_before = appointments_at(a, before)
    assert (known_before.loc[known_before["appointment_id"] == c["appointment_id"], "status"] == "booked").all()
    for day in (after, c["scheduled_at"].normalize()):
        assert c["appointment_id"] not in set(reminder_sends(clinic, day).sends["appointment_id"])


def test_a_step_already_past_at_booking_is_not_sent():
    patients = pd.DataFrame({"patient_id": ["P1", "P2"], "phone": ["010-1111-2222", "010-3333-4444"],
                             "record_status": ["active", "active"], "name": ["가", "나"]})
    visits = pd.DataFrame({"visit_id": ["V1"], "patient_id": ["P1"], "visit_date": [pd.Timestamp("2026-01-02")]})
    appts = pd.DataFrame({"appointment_id": ["A1", "A2"], "patient_id": ["P1", "P2"],
                          # A1 booked on 05 at 11:00 for 06 at 09:00: its 1d step (05 10:00) was past at booking
                          "booked_at": pd.to_datetime(["2026-01-05 11:00", "2026-01-01 09:00"]),
                          "scheduled_at": pd.to_datetime(["2026-01-06 09:00", "2026-01-06 23:30"]),
                          "status": ["attended", "attended"], "cancelled_at": pd.NaT, "department": "내과"})
    clinic = _tiny(patients, visits, appts)
    sends = reminder_sends(clinic, "2026-01-06").sends
    assert list(sends["appointment_id"]) == ["A1"]  # A1: 2h step moved to 08:00; A2: 21:30 pushed past the visit
    assert sends["send_at"].iloc[0] == pd.Timestamp("2026-01-06 08:00")
    day_before = reminder_sends(clinic, "2026-01-05").sends
    assert list(day_before["appointment_id"]) == ["A2"]  # A1 booked on the 5th: not known at its 00:00
    assert day_before["step"].tolist() == ["1d"] and day_before["send_at"].iloc[0] == pd.Timestamp("2026-01-05 10:00")


def _tiny(patients, visits, appts):
    from crm_analysis.contract import TABLES
    from crm_analysis.clinic import ClinicData

    tables = {}
    for name, frame in (("patients", patients), ("visits", visits), ("appointments", appts)):
        frame = frame.copy()
        for col in TABLES[name].columns:
            if col.name not in frame:
                frame[col.name] = pd.NaT if col.dtype in ("date", "datetime") else pd.NA
        tables[name] = frame
    return ClinicData(tables, as_of=pd.Timestamp("2026-01-31"), source="tiny")


def test_a_day_the_data_does_not_reach_is_refused(clinic):
    with pytest.raises(SourceError, match="runs to 2026-10-31"):
        reminder_sends(clinic, "2026-11-05")
    with pytest.raises(SourceError, match="without a time"):
        reminder_sends(clinic, "2026-10-05 10:00")
