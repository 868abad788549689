"""The generated tables honour the data contract and the generator's own promises."""

from __future__ import annotations

import pandas as pd
import pytest

from crm_analysis.contract import TABLES

EXPECTED_DTYPE = {"id": "string", "string": "string", "category": "category", "date": "datetime64[ns]",
                  "datetime": "datetime64[ns]", "int": "int64", "float": "float64", "bool": "boolean"}
ID_PATTERN = {"patients": r"^P\d{7,}$", "visits": r"^V\d{7,}$", "appointments": r"^A\d{7,}$",
              "reminders": r"^R\d{7,}$", "contacts": r"^C\d{7,}$"}


@pytest.fixture(scope="module")
def tables(small_clinic):
    return small_clinic.tables


@pytest.fixture(scope="module")
def end(small_clinic):
    return pd.Timestamp(small_clinic.truth["end"])


@pytest.mark.parametrize("name", list(TABLES))
def test_columns_dtypes_and_rules(tables, name):
    df = tables[name]
    table = TABLES[name]
    assert list(df.columns) == table.column_names
    assert len(df) > 0
    for col in table.columns:
        s = df[col.name]
        assert str(s.dtype) == EXPECTED_DTYPE[col.dtype], (name, col.name, s.dtype)
        if not col.nullable:
            assert s.notna().all(), (name, col.name)
        if col.unique:
            assert s.is_unique, (name, col.name)
        if col.allowed:
            assert set(s.dropna().astype(str)) <= set(col.allowed), (name, col.name)
        if col.min_value is not None:
            assert (s.dropna() >= col.min_value).all(), (name, col.name)
        if col.dtype == "date":
            assert (s.dropna() == s.dropna().dt.normalize()).all(), (name, col.name)


@pytest.mark.parametrize("name", list(TABLES))
def test_sorted_by_key_and_id_format(tables, name):
    df = tables[name]
    key = list(TABLES[name].key)
    assert df.equals(df.sort_values(key, kind="stable")), name
    if name in ID_PATTERN:
        assert df[key[0]].str.match(ID_PATTERN[name]).all()


def test_foreign_keys_resolve(tables):
    ids = set(tables["patients"]["patient_id"])
    for name in ("visits", "appointments", "contacts", "pregnancies", "vaccinations"):
        assert set(tables[name]["patient_id"]) <= ids, name
    p = tables["patients"]
    assert set(p["referred_by"].dropna()) <= ids
    assert set(p["guardian_id"].dropna()) <= ids
    assert set(tables["reminders"]["appointment_id"]) <= set(tables["appointments"]["appointment_id"])


def test_no_event_after_end(tables, end):
    limit = end + pd.Timedelta(days=1)
    for name, table in TABLES.items():
        for col in table.columns:
            if col.event_time and col.dtype in ("date", "datetime"):
                assert (tables[name][col.name].dropna() < limit).all(), (name, col.name)
    a = tables["appointments"]
    future = a["scheduled_at"] >= limit
    assert future.any()
    assert a.loc[future, "status"].isin(["booked", "cancelled", "rescheduled"]).all()
    assert (a.loc[~future, "status"] != "booked").all()
    assert (tables["visits"]["visit_date"] <= end).all()


def test_appointment_times(tables):
    a = tables["appointments"]
    assert (a["booked_at"] <= a["scheduled_at"]).all()
    s = a["scheduled_at"]
    assert (s.dt.minute % 10 == 0).all() and (s.dt.second == 0).all()
    assert ((s.dt.hour >= 9) & (s.dt.hour < 18) & (s.dt.hour != 13)).all()
    assert (s.dt.dayofweek != 6).all()
    assert ((s.dt.dayofweek != 5) | (s.dt.hour < 13)).all()
    c = a.dropna(subset=["cancelled_at"])
    assert (c["status"] == "cancelled").all()
    assert ((c["cancelled_at"] >= c["booked_at"]) & (c["cancelled_at"] <= c["scheduled_at"])).all()
    lead = (a["scheduled_at"].dt.normalize() - a["booked_at"].dt.normalize()).dt.days
    assert (lead <= 1).mean() > 0.3 and ((lead >= 7) & (lead <= 28)).mean() > 0.15


def test_reminders_between_booking_and_appointment(tables, end):
    r = tables["reminders"].merge(tables["appointments"], on="appointment_id")
    assert (r["sent_at"] >= r["booked_at"]).all()
    assert (r["sent_at"] <= r["scheduled_at"]).all()
    assert (r["sent_at"] < end + pd.Timedelta(days=1)).all()
    assert set(r["channel"].astype(str)) <= {"kakao", "sms"}
    assert (r["scheduled_at"] >= pd.Timestamp("2024-06-01")).all()  # nothing before the pilot


def test_personal_data_is_fictitious(tables):
    p = tables["patients"]
    assert p["phone"].dropna().str.match(r"^010-0\d{3}-\d{4}$").all()
    assert p["email"].dropna().str.match(r"^[a-z]+\d+@example\.(com|org)$").all()
    assert p["name"].str.match(r"^[가-힣]{3}$").all()
    own = p[p["guardian_id"].isna()]["phone"].dropna()
    assert own.is_unique  # only families share numbers


def test_visits(tables, small_clinic):
    v = tables["visits"]
    p = tables["patients"].set_index("patient_id")
    first = v.groupby("patient_id")["visit_date"].min()
    assert (p.loc[first.index, "first_visit_date"] == first).all()
    assert set(p.index) == set(first.index)
    inpatient = v["visit_type"] == "inpatient"
    assert (v.loc[inpatient, "inpatient_days"] >= 1).all()
    assert (v.loc[~inpatient, "inpatient_days"] == 0).all()
    assert inpatient.any() and (v["visit_type"] == "checkup").any()
    assert (v["charge_insured"] >= 0).all() and (v["charge_self_pay"] >= 0).all()
    share = v.groupby("department", observed=True)[["charge_self_pay", "charge_insured"]].sum()
    share = share["charge_self_pay"] / share.sum(axis=1)
    assert share.idxmax() == "피부과" and share["피부과"] > 0.5
    assert (v.groupby(["patient_id", "visit_date"]).size() == 1).all()


def test_family(tables):
    p = tables["patients"].set_index("patient_id")
    g = tables["pregnancies"]
    assert (g["outcome"].isna() == g["outcome_date"].isna()).all()
    assert (p.loc[g["patient_id"], "sex"] == "F").all()
    children = p[p["guardian_id"].notna()]
    assert len(children) > 0
    moms = p.loc[children["guardian_id"]]
    assert (children["phone"].fillna("").to_numpy() == moms["phone"].fillna("").to_numpy()).all()
    assert (moms["first_visit_date"].to_numpy() < children["first_visit_date"].to_numpy()).all()
    delivered = g[g["outcome"] == "delivered"]
    births = set(zip(children["guardian_id"], children["birth_date"]))
    assert births == set(zip(delivered["patient_id"], delivered["outcome_date"]))
    v = tables["visits"]
    kids = v[v["patient_id"].isin(children.index)]
    assert (kids.groupby("patient_id").head(1)["department"] == "소아청소년과").all()
    prenatal = v.merge(g.dropna(subset=["outcome_date"]), on="patient_id")
    inside = (prenatal["visit_date"] >= prenatal["due_date"] - pd.Timedelta(days=238)) & (
        prenatal["visit_date"] < prenatal["outcome_date"])
    assert (prenatal.loc[inside, "department"] == "산부인과").mean() > 0.9


def test_referrals_and_status(tables):
    p = tables["patients"].set_index("patient_id")
    shares = p["referral_source"].value_counts(normalize=True)
    assert shares.idxmax() == "word_of_mouth" and 0.35 < shares["word_of_mouth"] < 0.55
    r = p.dropna(subset=["referred_by"])
    assert (r["first_visit_date"].to_numpy() > p.loc[r["referred_by"], "first_visit_date"].to_numpy()).all()
    assert (r["referral_source"] == "word_of_mouth").all()
    counts = r["referred_by"].value_counts()
    assert counts.iloc[0] >= 5 * counts.median()  # a few super-referrers
    status = p["record_status"].value_counts(normalize=True)
    assert status["active"] > 0.9 and status.get("deceased", 0) > 0 and status.get("moved", 0) > 0


def test_consent(tables, end):
    p = tables["patients"]
    for ch in ("sms", "kakao", "email"):
        yes = p[f"{ch}_consent"].fillna(False)
        assert (p.loc[yes, f"{ch}_consent_date"].notna()).all()
        assert (p.loc[~yes, f"{ch}_consent_date"].isna()).all()
        assert (p[f"{ch}_opt_out"] == p[f"{ch}_opt_out_date"].notna()).all()
        assert (p[f"{ch}_consent_date"].dropna() >= p.loc[yes, "first_visit_date"]).all()
    old = (end - p["sms_consent_date"]).dt.days > 730
    assert old.any() and not old.all()
    assert 0 < p["night_ad_consent"].mean() < p["sms_consent"].mean()
    assert p["email_consent"].fillna(False)[p["email"].isna()].sum() == 0


def test_contacts(tables):
    c = tables["contacts"]
    hold = c["arm"] == "holdout"
    assert 0.1 < hold.mean() < 0.3
    for col in ("delivered", "bounce_type", "opened", "clicked", "replied"):
        assert c.loc[hold, col].isna().all(), col
        if col != "opened":
            assert c.loc[~hold, col].notna().all(), col
    sent = c[~hold]
    assert (sent["delivered"] == (sent["bounce_type"] == "none")).all()
    assert set(sent["bounce_type"].astype(str)) == {"none", "soft", "hard"}
    assert sent.loc[sent["channel"] == "sms", "opened"].isna().all()
    assert not (sent["clicked"] & ~sent["opened"].fillna(True)).any()
    assert (c.groupby(["campaign_id", "patient_id"]).size() == 1).all()
    assert ((c["sent_at"].dt.hour >= 8) & (c["sent_at"].dt.hour < 21)).all()


def test_contacts_respect_consent(tables):
    c = tables["contacts"].merge(tables["patients"], on="patient_id")
    for ch in ("kakao", "sms", "email"):
        rows = c[c["channel"] == ch]
        assert rows[f"{ch}_consent"].fillna(False).all()
        opted = rows[f"{ch}_opt_out_date"].notna()
        assert (rows.loc[opted, f"{ch}_opt_out_date"] > rows.loc[opted, "sent_at"]).all()
