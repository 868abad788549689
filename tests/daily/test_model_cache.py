"""The month's no-show model: fitted on the month's first run, reused on its other days, never across sources."""

from __future__ import annotations

import dataclasses
import stat

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("crm_analysis.noshow")

from crm_analysis.daily import confirmation_calls  # noqa: E402
from crm_analysis.daily.calls import TRAIN_MONTHS  # noqa: E402
from crm_analysis.daily.model_cache import (MODEL_FOLDER, load_model, model_key, month_model,  # noqa: E402
                                            training_end)
from crm_analysis.daily.moment import clinic_at  # noqa: E402
from crm_analysis.daily.run import run_daily  # noqa: E402
from crm_analysis.noshow import scoring  # noqa: E402

DAY1, DAY2 = "2026-10-20", "2026-10-21"


@pytest.fixture
def fits(monkeypatch):
    """Counts the month model's fits (they still run)."""
    calls = []
    real = scoring.fit_noshow_model

    def counted(clinic, as_of, **kwargs):
        calls.append(pd.Timestamp(as_of))
        return real(clinic, as_of, **kwargs)

    monkeypatch.setattr(scoring, "fit_noshow_model", counted)
    return calls


@pytest.fixture(scope="module")
def two_days(clinic, tmp_path_factory):
    """Day 1 fits and keeps the model; day 2 (fitting made to fail) must read it back."""
    out = tmp_path_factory.mktemp("daily_model")
    first = run_daily(DAY1, "clinic-a", outreach_dir=out, clinic=clinic)
    with pytest.MonkeyPatch.context() as mp:
        def fail(*args, **kwargs):
            raise AssertionError("the month model was fitted again on the month's second day")

        mp.setattr(scoring, "fit_noshow_model", fail)
        second = run_daily(DAY2, "clinic-a", outreach_dir=out, clinic=clinic)
    return out, first, second


def test_the_second_day_of_the_month_reuses_the_model(two_days):
    _, first, second = two_days
    assert (first.model, second.model) == ("fitted", "reused")
    assert first.risk_source == second.risk_source == "noshow_model"


def test_the_cache_is_owner_only(two_days):
    out, _, _ = two_days
    folder = out / "daily" / MODEL_FOLDER
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = sorted(p.name for p in folder.iterdir())
    assert len(files) == 2 and files[0].startswith("noshow-2026-10-")
    assert {p.suffix for p in folder.iterdir()} == {".pkl", ".json"}
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # the daily folders hold the lists only
    assert not list((out / "daily" / DAY2).glob("*.pkl"))


def test_a_reused_model_gives_the_same_risks(two_days, clinic):
    out, _, _ = two_days
    key = model_key(clinic, "clinic-a", pd.Timestamp(DAY2), TRAIN_MONTHS)
    cached = load_model(out / "daily" / MODEL_FOLDER, pd.Timestamp(DAY2), key)
    assert cached is not None
    fresh = confirmation_calls(clinic, DAY2)  # fits the month model itself
    reused = confirmation_calls(clinic, DAY2, model=cached)
    assert (reused["risk_source"] == "noshow_model").all()
    pd.testing.assert_frame_equal(fresh, reused, check_exact=True)
    published = pd.read_csv(next((out / "daily" / DAY2).glob("예약확인_전화_*.csv")), encoding="utf-8-sig",
                            dtype={"예약번호": str})
    assert published["예약번호"].tolist() == reused["appointment_id"].tolist()


def test_another_source_or_history_is_fitted_anew(two_days, clinic, fits):
    out, _, _ = two_days
    assert run_daily(DAY2, "clinic-b", outreach_dir=out, clinic=clinic).model == "fitted"
    a = clinic.tables["appointments"].copy()
    old = (a["scheduled_at"] < pd.Timestamp("2026-09-01")).to_numpy() & (a["status"] == "attended").to_numpy()
    a["status"] = a["status"].astype(object)
    a.loc[np.flatnonzero(old)[:1], "status"] = "no_show"  # one earlier outcome re-exported differently
    other = dataclasses.replace(clinic, tables={**clinic.tables, "appointments": a})
    assert run_daily(DAY2, "clinic-a", outreach_dir=out, clinic=other).model == "fitted"
    assert run_daily(DAY2, "clinic-a", outreach_dir=out, clinic=clinic).model == "reused"
    assert len(fits) == 2 and set(fits) == {pd.Timestamp("2026-09-30")}


def test_a_new_month_refits(clinic, tmp_path, fits):
    assert run_daily("2026-10-31", "clinic-a", outreach_dir=tmp_path, clinic=clinic).model == "fitted"
    assert run_daily("2026-11-01", "clinic-a", outreach_dir=tmp_path, clinic=clinic).model == "fitted"
    assert fits == [pd.Timestamp("2026-09-30"), pd.Timestamp("2026-10-31")]
    months = sorted(p.name[7:14] for p in (tmp_path / "daily" / MODEL_FOLDER).glob("*.pkl"))
    assert months == ["2026-10", "2026-11"]


def test_a_damaged_or_foreign_cache_is_not_read(two_days, clinic, tmp_path):
    out, _, _ = two_days
    day = pd.Timestamp(DAY2)
    key = model_key(clinic, "clinic-a", day, TRAIN_MONTHS)
    folder = tmp_path / MODEL_FOLDER
    model, state = month_model(clinic_at(clinic, day), day, source="clinic-a", folder=folder,
                               train_months=TRAIN_MONTHS, clinic=clinic)
    assert state == "fitted" and load_model(folder, day, key) is not None
    pkl = next(folder.glob("*.pkl"))
    pkl.chmod(0o644)
    assert load_model(folder, day, key) is None  # readable by others: not trusted
    pkl.chmod(0o600)
    data = bytearray(pkl.read_bytes())
    data[-10] ^= 0xFF
    pkl.write_bytes(bytes(data))
    assert load_model(folder, day, key) is None  # its hash no longer matches
    assert load_model(folder, day, "0" * 64) is None  # another key


def test_the_month_model_uses_no_outcome_of_the_month(clinic):
    """No look-ahead: the model of any day in October is fitted on outcomes known by September 30."""
    day = pd.Timestamp(DAY2)
    assert training_end(day) == pd.Timestamp("2026-10-01")
    model, _ = month_model(clinic_at(clinic, day), day, source=None, folder=None, train_months=TRAIN_MONTHS)
    a = clinic.tables["appointments"].copy()
    october = (a["scheduled_at"] >= training_end(day)).to_numpy()
    a["status"] = a["status"].astype(object)
    a.loc[october & a["status"].isin(["attended", "no_show"]).to_numpy(), "status"] = "no_show"
    changed = dataclasses.replace(clinic, tables={**clinic.tables, "appointments": a})
    again, _ = month_model(clinic_at(changed, day), day, source=None, folder=None, train_months=TRAIN_MONTHS)
    pd.testing.assert_series_equal(model.params_, again.params_, check_exact=True)
    assert model.n_ == again.n_


def test_the_command_says_whether_it_fitted_or_reused(demo_dir, tmp_path, capsys):
    from crm_analysis.cli import main

    args = ["daily", "--source", str(demo_dir), "--outreach-dir", str(tmp_path)]
    assert main([*args, "--date", DAY1]) == 0
    first = capsys.readouterr().out
    assert main([*args, "--date", DAY2]) == 0
    second = capsys.readouterr().out
    assert "no-show model of 2026-10: fitted" in first and "no-show model of 2026-10: reused" in second
    assert "seconds: load" in second and "model" in second
