"""The access log grows by one line per lookup and never holds a phone number."""

from __future__ import annotations

import getpass
import json
import re

import pytest

from crm_analysis.profile import AccessLog, PatientNotFoundError, patient_card
from crm_analysis.profile.access_log import ENV_VAR, default_log_path


def digit_runs(text: str) -> set[str]:
    """Every run of 4+ digits, also across separators (so 010-1234-5678 yields 01012345678)."""
    return {re.sub(r"\D", "", m) for m in re.findall(r"\+?\d[\d\s().\-]{3,}\d", text)} | set(re.findall(r"\d{4,}", text))


def test_one_line_per_lookup_and_no_phone_numbers(demo_clinic, card_ctx, tables, as_of, tmp_path):
    log = tmp_path / "logs" / "access.log"
    p = tables["patients"]
    phones = p["phone"].dropna()
    shared = phones[phones.duplicated(keep=False)].iloc[0]
    single = phones[~phones.duplicated(keep=False)].iloc[5]
    lookups = [shared, shared.replace("-", ""), "+82 " + single[1:], "010-9876-5432", single]
    for n, phone in enumerate(lookups, start=1):
        try:
            patient_card(demo_clinic, phone=phone, as_of=as_of, context=card_ctx, access_log=log)
        except PatientNotFoundError:
            pass
        assert len(log.read_text(encoding="utf-8").splitlines()) == n
    patient_card(demo_clinic, patient_id=str(p["patient_id"].iloc[0]), as_of=as_of, context=card_ctx, access_log=log)
    entries = AccessLog(log).read()
    assert len(entries) == len(lookups) + 1
    assert (log.stat().st_mode & 0o777) == 0o600
    assert (log.parent.stat().st_mode & 0o777) == 0o700
    assert entries[0]["user"] == getpass.getuser()
    assert entries[0]["patient_ids"] == p.loc[p["phone"] == shared, "patient_id"].astype(str).tolist()
    assert entries[3]["patient_ids"] == [] and entries[3]["query"] == "phone"
    assert entries[-1]["query"] == "patient_id"
    assert all(e["time_utc"].endswith("+00:00") and e["as_of"] == f"{as_of:%Y-%m-%d}" for e in entries)

    text = log.read_text(encoding="utf-8")
    digits = {re.sub(r"\D", "", x) for x in [*lookups, *phones]}
    national = digits | {d[1:] for d in digits if d.startswith("0")} | {"82" + d[1:] for d in digits}
    found = digit_runs(text)
    leaked = {d for d in national if any(d in run for run in found)}
    assert not leaked, "the access log contains a phone number"
    for phone in lookups:
        assert phone not in text


def test_default_location_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "elsewhere.log"))
    assert default_log_path() == tmp_path / "elsewhere.log"
    AccessLog().record(["P1"], query="patient_id")
    assert json.loads((tmp_path / "elsewhere.log").read_text())["patient_ids"] == ["P1"]
    with pytest.raises(ValueError, match="query must be"):
        AccessLog().record([], query="010-1234-5678")


def test_existing_log_with_loose_permissions_is_tightened(tmp_path):
    log = tmp_path / "access.log"
    log.write_text("")
    log.chmod(0o644)
    AccessLog(log).record(["P1"], query="patient_id")
    assert (log.stat().st_mode & 0o777) == 0o600


def test_the_log_records_the_source_looked_up_without_its_secrets(demo_clinic, card_ctx, tables, as_of, tmp_path):
    """Which source was looked up is recorded, through the one redaction function (issue 16, points 3 and 8)."""
    from crm_analysis.io.sources import redact_url

    log = tmp_path / "access.log"
    patient_card(demo_clinic, patient_id=str(tables["patients"]["patient_id"].iloc[0]), as_of=as_of,
                 context=card_ctx, access_log=log)
    assert AccessLog(log).read()[-1]["source"] == demo_clinic.source != ""
    url = "postgresql://me:Pw4Access@db/crm?sslpassword=Ssl4Access&token=Tok4Access"
    entry = AccessLog(log).record(["P1"], query="patient_id", source=url)
    print(entry["source"])
    assert entry["source"] == redact_url(url) == "postgresql://me:***@db/crm?sslpassword=***&token=***"
    assert "4Access" not in log.read_text(encoding="utf-8")


def test_a_log_pointed_at_a_device_never_has_its_permissions_changed(monkeypatch):
    """`--access-log /dev/null` switches the log off; run as root, tightening its mode would break /dev/null."""
    import os

    def refuse(fd, mode):
        raise AssertionError(f"fchmod({mode:o}) on {os.readlink(f'/proc/self/fd/{fd}')}")

    monkeypatch.setattr(os, "fchmod", refuse)
    AccessLog("/dev/null").record(["P1"], query="patient_id", source="demo")
