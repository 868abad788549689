"""File formats written by ``SyntheticClinic.write``."""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
import pytest

from crm_analysis.contract import TABLES


@pytest.fixture(scope="module")
def written(small_clinic, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    small_clinic.write(out)
    return out


def test_files_and_no_leftovers(written, small_clinic):
    names = sorted(p.name for p in written.iterdir())
    assert names == sorted([f"{t}.csv" for t in small_clinic.tables] + ["truth.json"])


def test_csv_format(written, small_clinic):
    raw = (written / "appointments.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    header, first = text.splitlines()[:2]
    assert header == ",".join(TABLES["appointments"].column_names)
    fields = first.split(",")
    assert fields[2].count(":") == 2 and len(fields[2]) == 19  # YYYY-MM-DD HH:MM:SS
    p = (written / "patients.csv").read_text(encoding="utf-8-sig").splitlines()
    cols = p[0].split(",")
    row = p[1].split(",")
    assert len(row[cols.index("birth_date")]) == 10
    assert row[cols.index("sms_opt_out")] in ("true", "false")
    assert "True" not in (written / "reminders.csv").read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO((written / "contacts.csv").read_text(encoding="utf-8-sig"))))
    arm = rows[0].index("arm")
    holdout = [r for r in rows[1:] if r[arm] == "holdout"]
    assert holdout and all(r[arm + 1:] == ["", "", "", "", ""] for r in holdout)  # delivered..replied empty


def test_csv_round_trip(written, small_clinic):
    for name, df in small_clinic.tables.items():
        back = pd.read_csv(written / f"{name}.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False)
        assert list(back.columns) == list(df.columns)
        assert len(back) == len(df)
        key = TABLES[name].key[0]
        assert (back[key] == df[key].astype(str).to_numpy()).all()
    v = pd.read_csv(written / "visits.csv", encoding="utf-8-sig")
    assert (v["charge_insured"] == small_clinic.tables["visits"]["charge_insured"].to_numpy()).all()


def test_truth_json(written, small_clinic):
    text = (written / "truth.json").read_text(encoding="utf-8")
    data = json.loads(text)
    assert data == json.loads(json.dumps(small_clinic.truth))
    assert text == json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert "내과" in text  # non-ASCII kept


def test_parquet_round_trip(small_clinic, tmp_path):
    small_clinic.write(tmp_path, format="parquet")
    for name, df in small_clinic.tables.items():
        back = pd.read_parquet(tmp_path / f"{name}.parquet")
        assert list(back.columns) == list(df.columns)
        assert len(back) == len(df)


def test_bad_format(small_clinic, tmp_path):
    with pytest.raises(ValueError, match="format must be one of"):
        small_clinic.write(tmp_path, format="xlsx")


def test_interrupted_write_leaves_no_file(small_clinic, tmp_path, monkeypatch):
    import crm_analysis.io.writing as w

    def fail(*_a, **_k):
        raise RuntimeError("killed")

    monkeypatch.setattr(w.pacsv, "write_csv", fail)
    with pytest.raises(RuntimeError):
        w.write_table_csv("visits", small_clinic.tables["visits"], tmp_path / "visits.csv")
    assert list(tmp_path.iterdir()) == []
