"""One function shows a source without its secrets: userinfo, secret query parameters, ODBC ``PWD=`` (issue 16, point 3)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from crm_analysis.io.sources import redact_secrets, redact_url

SECRET = "Zq9TopSecret"

#: (source, what must survive the redaction)
CASES = [
    (f"postgresql+psycopg://me:{SECRET}@db.clinic.local:5432/crm", "postgresql+psycopg://me:***@db.clinic.local:5432/crm"),
    (f"postgresql://me:{quote('p@ss:w/rd' + SECRET, safe='')}@db/crm", "postgresql://me:***@db/crm"),
    (f"sqlite:////srv/clinic.db?password={SECRET}", "sqlite:////srv/clinic.db?password=***"),
    (f"sqlite:////srv/clinic.db?PassWord={SECRET}&timeout=20", "sqlite:////srv/clinic.db?PassWord=***&timeout=20"),
    (f"postgresql://db/crm?sslmode=require&sslpassword={SECRET}", "postgresql://db/crm?sslmode=require&sslpassword=***"),
    (f"snowflake://me@acct/db?token={SECRET}", "snowflake://me@acct/db?token=***"),
    (f"duckdb:///md:crm?motherduck_token={SECRET}", "duckdb:///md:crm?motherduck_token=***"),
    (f"x://h/d?access_token={SECRET}&refresh_token={SECRET}", "x://h/d?access_token=***&refresh_token=***"),
    (f"x://h/d?api_key={SECRET}&apiKey={SECRET}&KEY={SECRET}", "x://h/d?api_key=***&apiKey=***&KEY=***"),
    (f"x://h/d?secret={SECRET}&client_secret={SECRET}", "x://h/d?secret=***&client_secret=***"),
    (f"x://h/d?pwd={SECRET}&passwd={SECRET}", "x://h/d?pwd=***&passwd=***"),
    (f"x://h/d?pass%77ord={SECRET}", "x://h/d?pass%77ord=***"),  # a percent-encoded name
    # ODBC connection strings, percent-encoded as SQLAlchemy documents them, and as typed
    ("mssql+pyodbc:///?odbc_connect=" + quote(f"DRIVER={{ODBC Driver 18}};SERVER=db;UID=me;PWD={SECRET}", safe=""),
     "mssql+pyodbc:///?odbc_connect=" + quote("DRIVER={ODBC Driver 18};SERVER=db;UID=me;PWD=***", safe="*")),
    (f"mssql+pyodbc:///?odbc_connect=DRIVER%3D%7Bx%7D%3BPassword%3D{SECRET}%3BDatabase%3Dcrm",
     "mssql+pyodbc:///?odbc_connect=" + quote("DRIVER={x};Password=***;Database=crm", safe="*")),
    (f"mssql+pyodbc:///?odbc_connect=DRIVER={{x}};pwd={{{SECRET};x}};UID=me",
     "mssql+pyodbc:///?odbc_connect=" + quote("DRIVER={x};pwd=***;UID=me", safe="*")),
    (f"mssql+pyodbc:///?odbc_connect=" + quote(quote(f"DRIVER=x;PWD={SECRET}", safe=""), safe=""),  # twice encoded
     "mssql+pyodbc:///?odbc_connect=" + quote("DRIVER=x;PWD=***", safe="*")),
]


@pytest.mark.parametrize("source, shown", CASES)
def test_every_secret_bearing_part_is_redacted(source, shown):
    redacted = redact_url(source)
    print(source, "->", redacted)
    assert redacted == shown
    assert SECRET not in redacted and SECRET.lower() not in redacted.lower()


@pytest.mark.parametrize("source", ["/srv/exports/2026-10", "exports/clinic.xlsx", "sqlite:////srv/clinic.db",
                                    "postgresql://me@db:5432/crm?sslmode=require&application_name=crm",
                                    "duckdb:///data/demo.duckdb"])
def test_sources_without_secrets_are_shown_as_given(source):
    assert redact_url(source) == source


def test_error_text_loses_the_secrets_of_its_source():
    url = f"sqlite://me:{SECRET}@//srv/clinic.db?token={SECRET}x&odbc_connect=PWD%3D{SECRET}y"
    message = (f"Invalid SQLite URL: sqlite://me:***@//srv/clinic.db?token={SECRET}x&odbc_connect=PWD%3D{SECRET}y; "
               f"also {url} and {quote(url, safe='')} and the bare {SECRET}y")
    cleaned = redact_secrets(message, url)
    print(cleaned)
    assert SECRET not in cleaned
    assert redact_url(url) in cleaned and "Invalid SQLite URL" in cleaned
    assert redact_secrets("nothing to hide in /srv/x", "/srv/x") == "nothing to hide in /srv/x"
    assert redact_secrets("short pw ab in text", "x://u:ab@h/d") == "short pw *** in text"


@pytest.mark.parametrize("source", [
    f"postgresql://me:{SECRET}?x#y@db/crm",  # what SQLAlchemy takes for the password runs to the first "@"
    f"postgresql://me:{SECRET}@db/crm?application_name=me@clinic&options={SECRET}",  # written twice
])
def test_what_sqlalchemy_takes_for_a_password_is_never_shown(source):
    import sqlalchemy as sa

    password = sa.make_url(source).password
    redacted = redact_url(source)
    print(source, "->", redacted, "| SQLAlchemy's password:", password)
    assert SECRET in password and SECRET not in redacted and redacted.startswith("postgresql://me:***@db/crm")
