"""The monthly job publishes on exports this project did not write: real public data and thin shapes.

Each test runs ``crm-analysis run`` end to end (every notebook, the report, the
outreach lists) and checks the promises of :func:`tests.monthly_run.run_month_cli`:
exit 0, no traceback, every skipped section listed with its reason. The
sections a shape cannot support are named, so a regression that silently
drops a section (or crashes one) shows.
"""

from __future__ import annotations

import calendar
import re

import nbformat
import pandas as pd
import pytest

from tests.conftest import DEMO_END, KAGGLE_NOSHOW, PROJECT_ROOT, SHARED_DATA
from tests.monthly_run import run_month_cli
from tests.test_notebooks import _shown_text

HANGU = SHARED_DATA / "hangu_clinic" / "Data.csv"
needs_kaggle = pytest.mark.skipif(not KAGGLE_NOSHOW.is_file(), reason=f"{KAGGLE_NOSHOW} is absent (../shared)")
needs_hangu = pytest.mark.skipif(not HANGU.is_file(), reason=f"{HANGU} is absent (../shared)")


@needs_kaggle
def test_kaggle_export_publishes_with_thin_sections_explained(capsys, tmp_path):
    """``crm-analysis run --month 2016-05 --source noshow_kaggle_2016.csv.gz --mapping ...`` as in the issue."""
    run = run_month_cli(capsys, tmp_path, "2016-05", KAGGLE_NOSHOW, "--mapping",
                        str(PROJECT_ROOT / "data/mappings/kaggle_noshow_2016.yaml"), pdf=True)
    skipped = run.skipped
    # six weeks of appointments: no year of history, no charges, no campaigns
    assert {"retention", "clv_backtest", "clv", "campaigns", "referrals"} <= set(skipped), skipped
    assert "24 months" in skipped["retention"] and "18 months" in skipped["clv_backtest"]
    assert run.kpis["sections"]["retention"]["rate"] is None
    # what the export does support is there: no-shows and the reminder effect
    assert run.kpis["sections"]["no_show"]["available"] and run.kpis["sections"]["no_show"]["month"]["rate"] > 0.1
    assert run.kpis["sections"]["reminder_effect"]["available"]
    assert "분석 생략" in run.report_html and "24개월" in run.report_html
    # notebook 30 on the real export: SMS reminders lower the reminded appointments' no-shows once lead time is
    # accounted for, while the crude comparison says they raise them (SMS only went to long-lead appointments);
    # what the export cannot support is said plainly
    shown = _shown_text(nbformat.read(run.month_dir / "30_reminders.ipynb", as_version=4))
    assert re.search(r"예약 알림\(받은 그대로\)의 노쇼율 변화는 -[0-9.]+%p \(95% 신뢰구간 -[0-9.]+%p ~ -[0-9.]+%p\)", shown)
    assert re.search(r"단순 비교\(\+[0-9.]+%p\)는 알림의 효과를 가립니다", shown)
    for said in ("무작위 시범 운영", "도입 전후 시계열 분석(ITS)은 생략", "일정별 비교는 할 수 없습니다", "자료에 진료비가 없어"):
        assert said in shown, said



def _hangu_visits() -> pd.DataFrame:
    """Hangu clinic visits with approximate calendar dates (test code, not a mapping feature).

    The export has no dates: only the session's order, month name, weekday and morning/afternoon, from
    January 2018 to December 2019. A year starts where the month names wrap round; a clinic day starts
    where the weekday changes or a morning follows; each clinic day takes the next date of its month on
    its weekday (the month's last such date once they run out).
    """
    raw = pd.read_csv(HANGU, dtype={"ID": str}, keep_default_na=False)
    months = {name: i for i, name in enumerate(calendar.month_name) if name}
    sessions = raw.groupby("Session", sort=True)[["Month", "DayOfWeek", "AM_PM"]].first()
    month_no = sessions["Month"].map(months)
    year = 2018 + (month_no.diff() < 0).cumsum()
    new_day = (sessions["DayOfWeek"] != sessions["DayOfWeek"].shift()) | (sessions["AM_PM"] == "morning")
    weekdays = {name: i for i, name in enumerate(calendar.day_name)}
    dates, last = {}, None
    for session, y, m, dow, starts in zip(sessions.index, year, month_no, sessions["DayOfWeek"], new_day):
        if starts or last is None:
            month_days = pd.date_range(f"{y}-{m:02d}-01", periods=calendar.monthrange(y, m)[1], freq="D")
            candidates = month_days[(month_days.weekday == weekdays[dow])
                                    & (month_days > (last if last is not None else month_days[0] - pd.Timedelta(days=1)))]
            last = candidates[0] if len(candidates) else month_days[month_days.weekday == weekdays[dow]][-1]
        dates[session] = last
    return raw.assign(visit_date=raw["Session"].map(dates))


@needs_hangu
def test_hangu_clinic_visits_publish(capsys, tmp_path):
    raw = _hangu_visits()
    assert raw["visit_date"].min() == pd.Timestamp("2018-01-03")  # the first session: a Wednesday in January 2018
    assert raw["visit_date"].is_monotonic_increasing and raw["visit_date"].max().year == 2019
    export = tmp_path / "hangu"
    export.mkdir()
    patients = raw.drop_duplicates("ID")[["ID", "Gender"]].rename(columns={"ID": "patient_id", "Gender": "sex"})
    patients.to_csv(export / "patients.csv", index=False)
    visits = pd.DataFrame({"visit_id": [f"V{i}" for i in range(len(raw))], "patient_id": raw["ID"],
                           "visit_date": raw["visit_date"].dt.strftime("%Y-%m-%d"), "department": "oncology"})
    visits.to_csv(export / "visits.csv", index=False)
    run = run_month_cli(capsys, tmp_path, "2019-12", export)
    skipped = run.skipped
    assert {"no_show", "reminders", "campaigns", "revenue_by_department"} <= set(skipped), skipped
    assert "no appointments" in skipped["no_show"] and "charge" in skipped["revenue_by_department"]
    # two years of real repeat visits: churn and retention are computed
    assert run.kpis["sections"]["retention"]["available"] and run.kpis["sections"]["churn"]["available"]
    assert 0 < run.kpis["sections"]["retention"]["rate"] < 1


@pytest.fixture(scope="module")
def demo_tables(demo_synth) -> dict[str, pd.DataFrame]:
    return {name: table.copy() for name, table in demo_synth.tables.items()}


@pytest.fixture(scope="module")
def demo300():
    """``crm-analysis demo-data --patients 300``: the demo clinic's default seed at 300 patients."""
    from crm_analysis import synth

    return synth.generate_clinic(n_patients=300, seed=42, end=DEMO_END)


def test_visits_only_export_publishes(capsys, tmp_path, demo300):
    export = tmp_path / "visits_only"
    export.mkdir()
    demo300.tables["patients"].to_csv(export / "patients.csv", index=False)
    demo300.tables["visits"].to_csv(export / "visits.csv", index=False)
    run = run_month_cli(capsys, tmp_path, "2026-10", export)
    skipped = run.skipped
    assert {"no_show", "reminder_effect", "reminders", "campaigns", "campaign_lifts"} <= set(skipped), skipped
    assert "no appointments" in skipped["reminders"]
    assert run.kpis["sections"]["vip"]["available"] and run.kpis["sections"]["churn"]["available"]
    assert (run.outreach_dir / "재내원안내_2026-11.csv").is_file() and (run.outreach_dir / "안내.txt").is_file()


def test_purchases_style_log_without_a_patient_table_publishes(capsys, tmp_path, demo_tables):
    """One row per visit for 18 months, no patient table: patients come from the log through the mapping."""
    v = demo_tables["visits"]
    start = pd.Timestamp(DEMO_END) - pd.DateOffset(months=18) + pd.Timedelta(days=1)
    v = v.loc[(pd.to_datetime(v["visit_date"]) >= start).to_numpy()]
    log = pd.DataFrame({"order_no": v["visit_id"], "customer": v["patient_id"], "date": v["visit_date"],
                        "amount": v["charge_insured"].fillna(0) + v["charge_self_pay"].fillna(0)})
    export = tmp_path / "purchases"
    export.mkdir()
    log.to_csv(export / "orders.csv", index=False)
    mapping = tmp_path / "orders.yaml"
    mapping.write_text("""version: 1
name: purchases-style log
files:
  log: orders.csv
tables:
  patients:
    from: log
    columns:
      patient_id: customer
    distinct:
      key: patient_id
      order_by: date
  visits:
    from: log
    columns:
      visit_id: order_no
      patient_id: customer
      visit_date: date
      charge_self_pay: amount
""", encoding="utf-8")
    run = run_month_cli(capsys, tmp_path, "2026-10", export, "--mapping", str(mapping))
    skipped = run.skipped
    assert {"retention", "no_show", "reminders", "campaigns", "referrals"} <= set(skipped), skipped
    assert "24 months" in skipped["retention"] and "has 18" in skipped["retention"]
    # 18 months hold a CLV fit and its back-test (6 months before the cut-off a year back), VIPs and churn
    assert not {"clv", "clv_backtest", "vip", "churn", "churn_model"} & set(skipped)


def test_three_hundred_patient_demo_publishes(capsys, tmp_path, demo300):
    """``crm-analysis demo-data --patients 300`` then ``run --month 2026-10``: hidden small counts, no crash."""
    export = tmp_path / "demo300"
    demo300.write(export, format="csv")
    run = run_month_cli(capsys, tmp_path, "2026-10", export)
    vip = run.kpis["sections"]["vip"]
    assert vip["available"] and vip["suppressed_rows"] >= 1
    assert not {"segments", "vip_selection", "loyalty"} & set(run.skipped)  # the hidden cells are shown, not skipped
