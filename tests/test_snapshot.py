"""``ClinicData.snapshot`` as a filter: the same tables and the same report as the row-copying version it replaced.

``_reference_snapshot`` below is the implementation before issue #22 (boolean ``.loc`` and
``reset_index`` per table, ``isin`` against whole id columns, the appointment status through a column
of Python objects), kept only here to compare against. Tables are compared one by one with
``assert_frame_equal`` (dtypes and categories included) and the report's entries must be equal.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from crm_analysis.clinic import ClinicData
from crm_analysis.coercion import isin
from crm_analysis.contract import CHANNELS
from crm_analysis.exceptions import Problem

SEED = 3


def _reference_snapshot(clinic: ClinicData, as_of) -> ClinicData:
    """``ClinicData.snapshot`` as it was before issue #22 (main at 8355654), for comparison only."""
    as_of = pd.Timestamp(as_of).normalize()
    end = as_of + pd.Timedelta(days=1)
    t = dict(clinic.tables)
    t["visits"] = _ref_before(t["visits"], "visit_date", end)
    if "appointments" in t:
        appts = _ref_before(t["appointments"], "booked_at", end).copy()
        undone = (appts["cancelled_at"] >= end).fillna(False)
        appts.loc[undone, "cancelled_at"] = pd.NaT
        cancelled_by_then = appts["cancelled_at"].notna() & ~undone
        pending = ((appts["scheduled_at"] >= end).fillna(False) & ~cancelled_by_then) | undone
        appts["status"] = appts["status"].astype("object").where(~pending, "booked").astype("category")
        t["appointments"] = appts
    if "reminders" in t:
        rem = t["reminders"]
        keep = ~(rem["sent_at"] >= end).fillna(False)
        if "appointments" in t:
            keep &= isin(rem["appointment_id"], t["appointments"]["appointment_id"])
        t["reminders"] = rem.loc[keep.to_numpy()].reset_index(drop=True)
    if "contacts" in t:
        t["contacts"] = _ref_before(t["contacts"], "sent_at", end)
    if "pregnancies" in t:
        preg = t["pregnancies"].copy()
        late = (preg["outcome_date"] >= end).fillna(False)
        preg.loc[late, "outcome"] = pd.NA
        preg.loc[late, "outcome_date"] = pd.NaT
        known = preg["due_date"] - pd.Timedelta(weeks=34) < end
        t["pregnancies"] = preg.loc[known.to_numpy()].reset_index(drop=True)
    if "vaccinations" in t:
        t["vaccinations"] = _ref_before(t["vaccinations"], "vaccination_date", end)
    patients = t["patients"]
    keep = ~(patients["first_visit_date"] >= end).fillna(False)
    for name in ("visits", "appointments", "contacts", "pregnancies", "vaccinations"):
        if name in t:
            keep |= isin(patients["patient_id"], t[name]["patient_id"])
    patients = patients.loc[keep.to_numpy()].copy()
    for col in ("referred_by", "guardian_id"):
        unknown = patients[col].notna() & ~isin(patients[col], patients["patient_id"])
        patients.loc[unknown, col] = pd.NA
    for flag in [f"{c}_{kind}" for c in CHANNELS for kind in ("consent", "opt_out")] + ["night_ad_consent"]:
        late = (patients[f"{flag}_date"] >= end).fillna(False)
        patients.loc[late, flag] = False
        patients.loc[late, f"{flag}_date"] = pd.NaT
    t["patients"] = patients.reset_index(drop=True)
    left_out = [f"{name} {len(clinic.tables[name]) - len(t[name]):,}" for name in t
                if len(clinic.tables[name]) != len(t[name])]
    info = [Problem("snapshot", None, f"snapshot as of {as_of:%Y-%m-%d}: rows recorded later were left out ("
                                      + (", ".join(left_out) or "none") + ")", check="snapshot")]
    report = replace(clinic.report, info=[*clinic.report.info, *info])
    return replace(clinic, tables=t, as_of=as_of, report=report)


def _ref_before(df, column, end):
    return df.loc[~(df[column] >= end).fillna(False).to_numpy()].reset_index(drop=True)


def assert_same_snapshot(clinic: ClinicData, as_of) -> ClinicData:
    """The snapshot equals the reference table by table, with the same report; the original is untouched."""
    before = {name: df.copy(deep=True) for name, df in clinic.tables.items()}
    new = clinic.snapshot(as_of)
    old = _reference_snapshot(clinic, as_of)
    assert list(new.tables) == list(old.tables)
    for name in old.tables:
        assert_frame_equal(new.tables[name], old.tables[name], check_exact=True, obj=f"{name} as of {as_of}")
    assert new.report.info == old.report.info
    assert new.report == old.report
    assert new.as_of == old.as_of
    for name, df in before.items():  # the snapshot shares memory with the original, and never writes into it
        assert_frame_equal(clinic.tables[name], df, check_exact=True, obj=f"original {name}")
    return new


@pytest.mark.parametrize("day", ["2024-01-01", "2024-06-30", "2025-06-30", "2026-01-15", "2026-09-30", "2026-10-31"])
def test_snapshot_equals_reference_on_the_loaded_demo(demo_clinic, day):
    assert_same_snapshot(demo_clinic, day)


@pytest.mark.parametrize("day", ["2025-03-31", "2026-10-30"])
def test_snapshot_equals_reference_on_the_generated_demo(generated_clinic, day):
    assert_same_snapshot(generated_clinic, day)


def _edge_clinic(shuffle: bool, text: str) -> ClinicData:
    """A small generated clinic with hand-made rows around 2026-06-30 for every rule the snapshot applies."""
    from crm_analysis import synth

    print(f"[edge clinic] seed={SEED} shuffle={shuffle} text={text}")
    gen = synth.generate_clinic(n_patients=150, seed=SEED, end="2026-10-31")
    t = {name: df.copy() for name, df in gen.tables.items()}
    as_of, day = pd.Timestamp("2026-06-30"), pd.Timedelta(days=1)
    p = t["patients"]
    template = p.iloc[[0] * 6].reset_index(drop=True)
    template["patient_id"] = ["PX1", "PX2", "PX3", "PX4", "PX5", "PX6"]
    # PX1 first seen later but booked before; PX2 first seen later, nothing before; PX3 no first visit date;
    # PX4 referred by PX2 (dropped) and guarded by PX1 (kept); PX5 referred by an unknown id; PX6 consents later
    template["first_visit_date"] = [as_of + 5 * day, as_of + 9 * day, pd.NaT, as_of - 40 * day, as_of - 3 * day,
                                    as_of - 2 * day]
    template["referred_by"] = pd.array([None, None, None, "PX2", "NOPE", "PX4"], dtype=p["referred_by"].dtype)
    template["guardian_id"] = pd.array([None, None, "PX1", "PX1", None, None], dtype=p["guardian_id"].dtype)
    for channel in CHANNELS:
        template[f"{channel}_consent"] = pd.array([True] * 6, dtype=p[f"{channel}_consent"].dtype)
        template[f"{channel}_consent_date"] = [as_of - day] * 5 + [as_of + 3 * day]
        template[f"{channel}_opt_out"] = pd.array([False] * 5 + [True], dtype=p[f"{channel}_opt_out"].dtype)
        template[f"{channel}_opt_out_date"] = [pd.NaT] * 5 + [as_of + day]
    template["night_ad_consent"] = pd.array([True] * 6, dtype=p["night_ad_consent"].dtype)
    template["night_ad_consent_date"] = [as_of] * 5 + [as_of + 2 * day]
    t["patients"] = pd.concat([p, template], ignore_index=True)

    v = t["visits"]
    extra = v.iloc[[0] * 3].reset_index(drop=True)
    extra["visit_id"], extra["patient_id"] = ["VX1", "VX2", "VX3"], ["PX3", "PX4", "PX2"]
    extra["visit_date"] = [as_of, as_of + day, as_of + 10 * day]  # the end of day as_of is kept, the next day not
    t["visits"] = pd.concat([v, extra], ignore_index=True)

    a = t["appointments"]
    extra = a.iloc[[0] * 8].reset_index(drop=True)
    extra["appointment_id"] = ["AX1", "AX2", "AX3", "AX4", "AX5", "AX6", "AX7", "AX7"]
    extra["patient_id"] = ["PX1", "PX5", "PX5", "PX5", "PX5", "PX2", "PX5", "PX5"]
    extra["booked_at"] = [as_of - 3 * day, as_of - 3 * day, as_of - 3 * day, as_of - 3 * day, as_of + 2 * day,
                          as_of + 4 * day, as_of - day, as_of + day]   # AX7: one kept, one dropped
    extra["scheduled_at"] = [as_of + 5 * day, as_of + 6 * day, as_of + 7 * day, as_of - day, as_of + 9 * day,
                             as_of + 9 * day, as_of - day, as_of + 9 * day]
    extra["status"] = pd.Series(["cancelled", "cancelled", "rescheduled", "attended", "attended", "booked",
                                 "no_show", "attended"], dtype=a["status"].dtype)
    extra["cancelled_at"] = [as_of - 0.1 * day, as_of + 2 * day, pd.NaT, pd.NaT, pd.NaT, pd.NaT, pd.NaT, pd.NaT]
    t["appointments"] = pd.concat([a, extra], ignore_index=True)

    r = t["reminders"]
    extra = r.iloc[[0] * 5].reset_index(drop=True)
    extra["reminder_id"] = ["RX1", "RX2", "RX3", "RX4", "RX5"]
    # RX2: its appointment was booked later (sent before it: inconsistent, but the link decides); RX3 orphan;
    # RX4 sent later; RX5 on the appointment id that was both kept and dropped
    extra["appointment_id"] = pd.array(["AX1", "AX5", "NOPE", "AX2", "AX7"], dtype=r["appointment_id"].dtype)
    extra["sent_at"] = [as_of - day, as_of - day, as_of - day, as_of + day, as_of - 0.5 * day]
    t["reminders"] = pd.concat([r, extra], ignore_index=True)

    c = t["contacts"]
    extra = c.iloc[[0] * 2].reset_index(drop=True)
    extra["contact_id"], extra["patient_id"] = ["CX1", "CX2"], ["PX3", "PX2"]
    extra["sent_at"] = [as_of - day, as_of + day]
    t["contacts"] = pd.concat([c, extra], ignore_index=True)

    preg = t["pregnancies"]
    extra = preg.iloc[[0] * 2].reset_index(drop=True) if len(preg) else None
    if extra is not None:
        extra["patient_id"] = ["PX4", "PX2"]
        extra["due_date"] = [as_of + 20 * pd.Timedelta(weeks=1), as_of + 40 * pd.Timedelta(weeks=1)]
        extra["outcome_date"] = [as_of + 2 * day, pd.NaT]
        t["pregnancies"] = pd.concat([preg, extra], ignore_index=True)

    vac = t["vaccinations"]
    extra = vac.iloc[[0] * 2].reset_index(drop=True)
    extra["patient_id"] = ["PX3", "PX4"]
    extra["vaccination_date"] = [as_of, as_of + day]
    t["vaccinations"] = pd.concat([vac, extra], ignore_index=True)

    if shuffle:   # out of date order: the kept rows are taken, not sliced
        rng = np.random.default_rng(SEED)
        t = {name: df.iloc[rng.permutation(len(df))].reset_index(drop=True) for name, df in t.items()}
        t["visits"].index = t["visits"].index + 100   # an index that is not 0..n-1 becomes one
    if text == "object":
        t = {name: df.astype({col: object for col in df.columns if isinstance(df[col].dtype, pd.StringDtype)})
             for name, df in t.items()}
    return ClinicData(t, as_of=pd.Timestamp("2026-10-31"), source="edge cases")


@pytest.mark.parametrize("text", ["arrow", "object"])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("day", ["2026-06-29", "2026-06-30", "2026-07-01", "2026-07-03"])
def test_snapshot_equals_reference_on_edge_cases(shuffle, text, day):
    assert_same_snapshot(_edge_clinic(shuffle, text), day)


def test_edge_cases_are_what_they_say():
    """The hand-made rows exercise each rule (guards the fixture, not the implementation)."""
    snap = _edge_clinic(False, "arrow").snapshot("2026-06-30")
    patients = snap.patients.set_index("patient_id")
    assert {"PX1", "PX3", "PX4", "PX5", "PX6"} <= set(patients.index) and "PX2" not in patients.index
    assert pd.isna(patients.loc["PX4", "referred_by"]) and patients.loc["PX4", "guardian_id"] == "PX1"
    assert pd.isna(patients.loc["PX5", "referred_by"])
    assert not patients.loc["PX6", "kakao_consent"] and not patients.loc["PX6", "night_ad_consent"]
    assert not patients.loc["PX6", "sms_opt_out"] and pd.isna(patients.loc["PX6", "sms_opt_out_date"])
    assert set(snap.visits["visit_id"]) & {"VX1", "VX2", "VX3"} == {"VX1"}
    appts = snap.appointments.set_index("appointment_id")
    assert appts.loc[["AX1", "AX2", "AX3", "AX4"], "status"].astype(str).tolist() == [
        "cancelled", "booked", "booked", "attended"]
    assert "AX5" not in appts.index and "AX6" not in appts.index and len(appts.loc[["AX7"]]) == 1
    assert set(snap.reminders["reminder_id"]) & {"RX1", "RX2", "RX3", "RX4", "RX5"} == {"RX1", "RX5"}
    assert set(snap.contacts["contact_id"]) & {"CX1", "CX2"} == {"CX1"}


def test_a_snapshot_without_anything_later_shares_the_tables_memory(demo_clinic):
    """Rows kept in date order are a slice of the original, not a copy."""
    snap = demo_clinic.snapshot(demo_clinic.as_of)
    for name, col in (("visits", "visit_date"), ("reminders", "sent_at")):
        assert np.shares_memory(snap.tables[name][col].to_numpy(), demo_clinic.tables[name][col].to_numpy())


def test_which_reminders_have_their_appointment_is_worked_out_once(demo_clinic, tmp_path):
    """The as_of-independent link is remembered by the clinic and kept in the validated-clinic cache."""
    from crm_analysis.io.cache import read_snapshot_cache, write_snapshot_cache

    back = read_snapshot_cache(write_snapshot_cache(demo_clinic, tmp_path / "cache"))
    expected = isin(demo_clinic.reminders["appointment_id"], demo_clinic.appointments["appointment_id"]).to_numpy()
    linked = back._reminders_linked()
    assert linked is back.__dict__["_linked"][2] and np.array_equal(linked, expected)
    assert_same_snapshot(back, "2026-09-30")
    # a snapshot knows its own without a look-up: it kept a reminder only if it kept its appointment
    snap = back.snapshot("2026-09-30")
    assert snap.__dict__["_linked"][0] is snap.tables["reminders"]
    assert np.array_equal(snap._reminders_linked(),
                          isin(snap.reminders["appointment_id"], snap.appointments["appointment_id"]).to_numpy())
    assert_same_snapshot(snap, "2026-08-31")
    # and one with other tables works its own out
    other = replace(snap, tables={**snap.tables, "reminders": snap.reminders.iloc[::2].reset_index(drop=True)})
    assert "_linked" not in other.__dict__
    assert_same_snapshot(other, "2026-08-31")
    with pytest.raises(ValueError, match="flags for"):
        back._remember_linked(linked[:-1])


@pytest.mark.parametrize("text", ["arrow", "object"])
def test_the_duckdb_lookup_used_for_millions_of_appointments_gives_the_same_snapshot(monkeypatch, text):
    from crm_analysis import clinic as clinic_module

    monkeypatch.setattr(clinic_module, "_DUCKDB_FROM", 0)
    edge = _edge_clinic(False, text)
    rem = edge.tables["reminders"]
    rem.loc[len(rem) - 1, "appointment_id"] = None   # a reminder without its appointment's id ...
    appts = edge.tables["appointments"]
    appts.loc[len(appts) - 2, "appointment_id"] = None   # ... found, as in pandas, when an appointment has none
    expected = isin(rem["appointment_id"], appts["appointment_id"]).to_numpy()
    assert expected[-1]
    assert np.array_equal(clinic_module._isin_large(rem["appointment_id"], appts["appointment_id"]), expected)
    for day in ("2026-06-30", "2026-07-03"):
        assert_same_snapshot(edge, day)


@pytest.mark.parametrize("text", ["arrow", "object"])
@pytest.mark.parametrize("day", ["2026-06-29", "2026-06-30", "2026-07-03"])
def test_a_snapshot_at_its_own_day_is_itself_and_cutting_again_would_change_nothing(text, day):
    """The shortcut (a snapshot asked for its own day returns itself, sparing a million-patient clinic a second
    cut) is right only because a second cut leaves every table as it is: checked on the edge cases."""
    import dataclasses

    snap = _edge_clinic(True, text).snapshot(day)
    assert snap.snapshot(day) is snap and snap.snapshot(pd.Timestamp(day) + pd.Timedelta(hours=9)) is snap
    again = dataclasses.replace(snap).snapshot(day)  # an unmarked copy is cut in full
    assert again is not snap and list(again.tables) == list(snap.tables)
    for name in snap.tables:
        assert_frame_equal(again.tables[name].reset_index(drop=True), snap.tables[name].reset_index(drop=True),
                           check_exact=True, obj=f"{name} cut twice at {day}")
    earlier = snap.snapshot(pd.Timestamp(day) - pd.Timedelta(days=1))  # another day is still cut
    assert earlier is not snap and earlier.as_of == pd.Timestamp(day) - pd.Timedelta(days=1)


def test_a_relabelled_clinic_keeps_what_was_worked_out_on_its_tables(demo_clinic):
    snap = demo_clinic.snapshot("2026-09-30")
    snap._reminders_linked()
    relabelled = snap.with_source("elsewhere")
    assert relabelled.source == "elsewhere" and snap.source != "elsewhere"
    assert relabelled.tables["reminders"] is snap.tables["reminders"]
    assert relabelled.__dict__["_linked"] is snap.__dict__["_linked"]
    assert relabelled.snapshot("2026-09-30") is relabelled   # still known to be cut at that day
    assert "_linked" not in replace(snap, source="elsewhere").__dict__   # what dataclasses.replace loses


def test_numbered_appointment_ids_are_looked_up_by_their_numbers_with_the_same_answer(demo_clinic, monkeypatch):
    import pyarrow as pa

    from crm_analysis import clinic as clinic_module

    monkeypatch.setattr(clinic_module, "_DUCKDB_FROM", 0)
    rem = demo_clinic.reminders["appointment_id"].copy()
    rem.iloc[:3] = [None, "A9999999", rem.iloc[-1]]   # missing, unknown, known
    appts = demo_clinic.appointments["appointment_id"]
    assert clinic_module.fixed_width_positions(pa.array(rem.array), pa.array(appts.array)) is not None
    expected = isin(rem, appts).to_numpy()
    assert expected[:3].tolist() == [False, False, True]
    assert np.array_equal(clinic_module._isin_large(rem, appts), expected)
