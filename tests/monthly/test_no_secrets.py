"""No artefact of a run shows a secret of its source URL (issue 16, point 3).

A small demo clinic is written to SQLite through a URL carrying planted secrets in every form a database URL
can hold them (a query-string password, ``sslpassword``, a token, an API key and an ODBC ``PWD=`` inside a
percent-encoded ``odbc_connect``; SQLite ignores them all). One monthly run with the real notebooks (no PDF)
reads it through ``crm-analysis run``; then every file the run published (reports, outreach lists, the access
log of a lookup), and everything the commands printed, is searched for the secrets. The executed notebooks
must not hold the source at all, not even redacted.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import quote

import pytest

from crm_analysis.cli import main
from crm_analysis.io.sources import redact_url

pytestmark = [pytest.mark.xdist_group("secrets_run"),
              pytest.mark.filterwarnings("ignore:Query string argument:sqlalchemy.exc.SAWarning")]

SCRIPT = Path(sys.executable).with_name("crm-analysis")
PATIENTS, MONTH = 300, "2026-10"
#: One planted secret per form; letters and digits only, so they read the same percent-encoded or not.
SECRETS = {"password": "Pw7PlantedAlpha", "sslpassword": "Ssl7PlantedBravo", "token": "Tok7PlantedCharlie",
           "api_key": "Key7PlantedDelta", "odbc": "Odbc7PlantedEcho", "userinfo": "User7PlantedFoxtrot"}


def _secret_url(db: Path) -> str:
    odbc = quote(f"DRIVER={{SQLite3}};DATABASE=x;PWD={SECRETS['odbc']}", safe="")
    return (f"sqlite:///{db}?password={SECRETS['password']}&sslpassword={SECRETS['sslpassword']}"
            f"&token={SECRETS['token']}&api_key={SECRETS['api_key']}&odbc_connect={odbc}")


def _leaks(text: str | bytes) -> list[str]:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return [name for name, secret in SECRETS.items() if secret.encode() in data or secret.lower().encode() in data]


def _files(root: Path) -> dict[str, bytes]:
    """Every file under `root`, and every member of the XLSX workbooks (zipped), by name."""
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        found[str(path.relative_to(root))] = path.read_bytes()
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as book:
                found.update({f"{path.name}:{m}": book.read(m) for m in book.namelist()})
    return found


@pytest.fixture(scope="module")
def secret_db(tmp_path_factory):
    """The demo clinic written by ``crm-analysis demo-data`` through the URL with planted secrets."""
    folder = tmp_path_factory.mktemp("secret_db")
    url = _secret_url(folder / "clinic.sqlite")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        assert main(["demo-data", "--patients", str(PATIENTS), "--seed", "16", "--out", url]) == 0
    return url, printed.getvalue()


@pytest.fixture(scope="module")
def secret_run(secret_db, tmp_path_factory):
    """``crm-analysis run`` (real notebooks, no PDF) on the secret URL; returns the run's root and its output."""
    url, _ = secret_db
    root = tmp_path_factory.mktemp("secret_run")
    args = [str(SCRIPT), "run", "--month", MONTH, "--source", url, "--out", str(root / "reports"),
            "--outreach-dir", str(root / "outreach"), "--no-pdf"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
                          env={**os.environ, "PYTHONWARNINGS": "always"})
    print(done.stdout, done.stderr, sep="\n")
    assert done.returncode == 0, done.stderr[-3000:]
    return root, done.stdout + done.stderr


def test_no_artefact_of_the_run_holds_a_planted_secret(secret_db, secret_run):
    root, printed = secret_run
    files = _files(root)
    assert any(name.endswith(".ipynb") for name in files) and any(name.endswith(".xlsx") for name in files)
    leaks = {name: _leaks(data) for name, data in files.items() if _leaks(data)}
    assert not leaks, f"secrets in the artefacts: {leaks}"
    assert not _leaks(printed), f"the run printed {_leaks(printed)}"
    assert not _leaks(secret_db[1]), f"demo-data printed {_leaks(secret_db[1])}"


def test_the_manifest_shows_the_source_redacted(secret_db, secret_run):
    root, _ = secret_run
    manifest = json.loads((root / "reports" / MONTH / "manifest.json").read_text(encoding="utf-8"))
    shown = manifest["parameters"]["source"]
    print("manifest source:", shown)
    assert shown == redact_url(secret_db[0]) and shown.count("***") == 5 and "clinic.sqlite" in shown


def test_executed_notebooks_never_hold_the_source(secret_run):
    root, _ = secret_run
    notebooks = sorted((root / "reports" / MONTH).glob("*.ipynb"))
    assert len(notebooks) >= 5
    for path in notebooks:
        text = path.read_text(encoding="utf-8")
        assert "clinic.sqlite" not in text and "sqlite:" not in text, f"{path.name} holds the source"
        assert "crm-analysis-" not in text, f"{path.name} holds the run's private folder"


def test_lookup_validate_and_dry_run_show_no_secret(secret_db, tmp_path, capsys):
    import sqlalchemy as sa

    url, _ = secret_db
    engine = sa.create_engine(url.split("?")[0])
    with engine.connect() as conn:
        patient = conn.execute(sa.text("SELECT patient_id FROM patients LIMIT 1")).scalar_one()
    engine.dispose()
    log = tmp_path / "access.log"
    assert main(["lookup", "--source", url, "--patient-id", str(patient), "--as-of", "2026-10-31", "--quick",
                 "--access-log", str(log)]) == 0
    assert main(["validate", "--source", url]) == 0
    assert main(["run", "--month", MONTH, "--source", url, "--dry-run"]) == 0
    printed = capsys.readouterr()
    print(printed.out, printed.err, sep="\n")
    assert not _leaks(printed.out + printed.err)
    entry = json.loads(log.read_text(encoding="utf-8"))
    print("access log:", entry)
    assert not _leaks(log.read_bytes())
    assert entry["source"] == redact_url(url) and entry["patient_ids"] == [str(patient)]


def test_errors_about_a_source_show_no_secret(secret_db, tmp_path, capsys):
    url, _ = secret_db
    path = url.split("?")[0][len("sqlite:///"):]
    # SQLite takes no user name: the driver's error quotes the URL (with its query string) back.
    bad = f"sqlite://me:{SECRETS['userinfo']}@/{path}?token={SECRETS['token']}&api_key={SECRETS['api_key']}"
    assert main(["validate", "--source", bad]) == 2
    assert main(["run", "--month", MONTH, "--source", bad, "--out", str(tmp_path / "r"),
                 "--outreach-dir", str(tmp_path / "o"), "--no-pdf"]) == 2
    printed = capsys.readouterr()
    print(printed.out, printed.err, sep="\n")
    assert "cannot open the database" in printed.err
    assert not _leaks(printed.out + printed.err)
