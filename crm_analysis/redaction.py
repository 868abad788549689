"""Taking secrets out of database URLs and of messages that quote them.

One place knows where a URL keeps secrets (:func:`redact_url`); everything that
shows a source goes through it: loading messages, ``manifest.json``, the access
log, the command's output and the card index. Standard library only, so the
front desk's lookup can show a source without importing the data stack.
:mod:`crm_analysis.io.sources` re-exports both functions (their old home).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote, unquote_plus

__all__ = ["redact_url", "redact_secrets", "SECRET_NAME", "HIDDEN"]

#: Query-parameter names that hold a secret, matched case-insensitively in the name without ``_`` or ``-``
#: (``password``, ``sslpassword``, ``PWD``, ``token``, ``access_token``, ``api_key``, ``apiKey``, ``secret``,
#: ``client_secret``, ``credentials``, ``sig``...).
SECRET_NAME = re.compile(r"pass|pwd|secret|token|key|credential|auth|signature|^sig$", re.IGNORECASE)
#: An ODBC connection-string attribute holding a password (``PWD=...;`` or ``Password={...};``).
_ODBC_SECRET = re.compile(r"(?P<name>(?<![A-Za-z0-9_])(?:pwd|password)\s*=\s*)(?P<value>\{(?:[^}]|\}\})*\}?|[^;]*)",
                          re.IGNORECASE)
#: What a secret is replaced with (as SQLAlchemy shows a hidden password).
HIDDEN = "***"


def _decoded(text: str) -> str:
    """`text` percent-decoded until it no longer changes (a value may be encoded twice)."""
    for _ in range(4):
        plain = unquote_plus(text)
        if plain == text:
            break
        text = plain
    return text


def _is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(_decoded(name).replace("_", "").replace("-", "")))


#: The userinfo of a URL as SQLAlchemy reads it: a user name without ``:`` or ``/``, then the password up to
#: the first ``@`` (it may hold ``/``, ``?`` or ``#``).
_USERINFO = re.compile(r"(?P<user>[^:/]*):(?P<password>[^@]*)@")


def _secret_parts(source: str) -> tuple[str, list[str]]:
    """`source` shown without its secrets, and the secrets themselves (as written and percent-decoded)."""
    if "://" not in source:
        return source, []
    scheme, rest = source.split("://", 1)
    secrets: list[str] = []
    userinfo = _USERINFO.match(rest)
    if userinfo and userinfo.group("password"):
        secrets.append(userinfo.group("password"))
        rest = f"{userinfo.group('user')}:{HIDDEN}@{rest[userinfo.end():]}"
    rest, question, query = rest.partition("?")
    params = []
    for piece in query.split("&") if question else []:
        name, equals, value = piece.partition("=")
        if equals and value and _is_secret_name(name):
            secrets.append(value)
            piece = f"{name}={HIDDEN}"
        elif equals and value:
            plain = _decoded(value)
            found = [m.group("value") for m in _ODBC_SECRET.finditer(plain) if m.group("value")]
            if found:
                secrets += found
                piece = f"{name}=" + quote(_ODBC_SECRET.sub(lambda m: m.group("name") + HIDDEN, plain), safe="*")
        params.append(piece)
    secrets = sorted({s for secret in secrets for s in (secret, _decoded(secret))}, key=len, reverse=True)
    # A secret written twice (the same password in the userinfo and the query) is hidden wherever it is.
    return _hidden(f"{scheme}://{rest}{question}{'&'.join(params)}", secrets), secrets


def _hidden(text: str, secrets: list[str]) -> str:
    """`text` with each of `secrets` (as written or percent-encoded) replaced by ``***``."""
    for secret in secrets:
        for form in {secret, quote(secret, safe="")}:
            # a short secret (``pw``) only as a word of its own, not inside every word that contains it
            text = text.replace(form, HIDDEN) if len(form) >= 4 else \
                re.sub(rf"(?<![A-Za-z0-9]){re.escape(form)}(?![A-Za-z0-9])", HIDDEN, text)
    return text


def redact_url(source: str) -> str:
    """`source` as it may be shown: a database URL without any secret.

    This is the one place that knows where a URL keeps secrets; everything that shows a source (loading
    messages, ``manifest.json``, the access log, the command's output) shows it through here.

    Parameters
    ----------
    source : str
        A database URL, or a path (returned as given).

    Returns
    -------
    str
        The URL with each secret replaced by ``***``: the password of ``user:password@host``; the value of
        every query parameter whose name holds ``pass``, ``pwd``, ``secret``, ``token``, ``key``,
        ``credential``, ``auth`` or ``signature`` (any case, also percent-encoded: ``password``,
        ``sslpassword``, ``access_token``, ``api_key``, ``client_secret``...); and the ``PWD=`` or
        ``Password=`` attribute of an ODBC connection string in any other parameter (``odbc_connect``,
        percent-encoded or not). Everything else is left as written.

    See Also
    --------
    redact_secrets : the same secrets taken out of a message (a driver's error).

    Examples
    --------
    >>> redact_url("postgresql://me:pw@db/crm?sslmode=require&sslpassword=pw2")
    'postgresql://me:***@db/crm?sslmode=require&sslpassword=***'
    """
    return _secret_parts(str(source))[0]


def redact_secrets(text: str, source: str | Path | None) -> str:
    """`text` (e.g. a database driver's error) without the secrets of `source`.

    The source URL, as written or percent-encoded, becomes :func:`redact_url`'s form, and any secret of it
    left (a password quoted on its own) becomes ``***``.

    Parameters
    ----------
    text : str
    source : str, Path or None
        The source the text is about; None or a path: `text` is returned as given.
    """
    text = str(text)
    if source is None:
        return text
    source = str(source)
    shown, secrets = _secret_parts(source)
    if not secrets:
        return text
    for form in sorted({source, quote(source, safe=""), _decoded(source)}, key=len, reverse=True):
        text = text.replace(form, shown)
    return _hidden(text, secrets)
