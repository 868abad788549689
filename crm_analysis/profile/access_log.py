"""The access log: who looked at which patient, and when.

Every lookup of a patient card appends exactly one line (JSON) to a local log
file, so a clinic can show who viewed whose record. A line records

- ``time_utc`` and ``time_local`` (ISO 8601, seconds),
- ``user``: the operating-system user (:func:`getpass.getuser`),
- ``query``: how the lookup was made (``"phone"`` or ``"patient_id"``),
- ``patient_ids``: every patient shown (empty when nobody was found),
- ``as_of`` and ``source``: which data was looked up (a database URL without
  any secret: :func:`crm_analysis.redaction.redact_url`).

The phone number searched for is **never** written, in any form (not hashed
either: with about 10⁸ mobile numbers any hash of one can be reversed by
trying them all). A lookup by patient id logs that id, which is what was
shown anyway.

The file is created with mode 0600 (its folder 0700) and only ever appended
to. Its location is, in order: the ``path`` given, the environment variable
``CRM_ANALYSIS_ACCESS_LOG``, or ``~/.crm_analysis/access.log``. A log that is
switched off (``/dev/null``) or moved is not silent: :func:`log_note` says so,
and ``crm-analysis lookup`` prints it.
"""

from __future__ import annotations

import getpass
import json
import os
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from crm_analysis.redaction import redact_url  # standard library only: a lookup stays light

__all__ = ["AccessLog", "default_log_path", "log_note", "ENV_VAR", "USUAL_PATH"]

#: Environment variable that moves the default log.
ENV_VAR = "CRM_ANALYSIS_ACCESS_LOG"


#: The log's usual place, under the home folder.
USUAL_PATH = Path("~") / ".crm_analysis" / "access.log"


def default_log_path() -> Path:
    """``$CRM_ANALYSIS_ACCESS_LOG`` if set, else ``~/.crm_analysis/access.log`` (read when called, not at import)."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else USUAL_PATH.expanduser()


def _discards(path: Path) -> bool:
    """Whether writing to `path` keeps nothing: the null device, or another character device."""
    if os.path.realpath(path) == os.path.realpath(os.devnull):
        return True
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


def log_note(path: str | os.PathLike | None = None) -> str | None:
    """One line telling the user that lookups are not logged in the usual place, or None when they are.

    Parameters
    ----------
    path : str or Path, optional
        The log asked for (``--access-log``); None: the default (:func:`default_log_path`).

    Returns
    -------
    str or None
        ``"note: the access log is switched off ..."`` when the log is the null device (or another character
        device), ``"note: this lookup is recorded in X ..., not in ~/.crm_analysis/access.log"`` when it was
        moved by `path` or ``$CRM_ANALYSIS_ACCESS_LOG``; None for the usual place.
    """
    env = os.environ.get(ENV_VAR)
    if path is not None:
        where, how = Path(path).expanduser(), f"--access-log {path}"
    elif env:
        where, how = Path(env).expanduser(), f"${ENV_VAR}={env}"
    else:
        return None
    if _discards(where):
        return f"note: the access log is switched off ({how}): this lookup is recorded nowhere"
    if os.path.realpath(where) == os.path.realpath(USUAL_PATH.expanduser()):
        return None
    return f"note: the access log was moved ({how}): this lookup is recorded in {where}, not in {USUAL_PATH}"


class AccessLog:
    """An append-only JSON-lines log of patient lookups.

    Parameters
    ----------
    path : str or Path, optional
        The log file; default :func:`default_log_path`.

    Examples
    --------
    >>> log = AccessLog("/tmp/example_access.log")          # doctest: +SKIP
    >>> log.record(["P0000042"], query="phone", as_of="2026-10-31")   # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path).expanduser() if path is not None else default_log_path()

    def record(self, patient_ids: Iterable[str], *, query: str, as_of=None, source: str = "") -> dict:
        """Append one line for one lookup and return what was written.

        Parameters
        ----------
        patient_ids : iterable of str
            Every patient shown (empty if none was found).
        query : {"phone", "patient_id", "refused"}
            How the lookup was made (``refused``: a request without a valid token, see
            :mod:`crm_analysis.profile.serve`). The searched value itself is not logged.
        as_of : date-like, optional
        source : str
            Which data was looked up; recorded without any secret of a database URL
            (:func:`crm_analysis.redaction.redact_url`).

        Raises
        ------
        ValueError
            If `query` is not one of those kinds.
        OSError
            If the log cannot be written: the lookup should then not be shown.
        """
        if query not in ("phone", "patient_id", "refused"):
            raise ValueError(f"query must be 'phone', 'patient_id' or 'refused', not {query!r}")
        now = datetime.now(timezone.utc)
        entry = {
            "time_utc": now.isoformat(timespec="seconds"),
            "time_local": now.astimezone().isoformat(timespec="seconds"),
            "user": _user(),
            "query": query,
            "patient_ids": [str(p) for p in patient_ids],
            "as_of": None if as_of is None else str(as_of)[:10],
            "source": redact_url(str(source)),
        }
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            mode = os.fstat(fd).st_mode
            # Only a log file of ours is made owner-only: `--access-log /dev/null` (or any device) must never
            # have its permissions changed (as root that would break /dev/null for everyone).
            if stat.S_ISREG(mode) and mode & 0o077:
                os.fchmod(fd, 0o600)
            os.write(fd, line)  # one write with O_APPEND: lines from concurrent lookups do not interleave
        finally:
            os.close(fd)
        return entry

    def read(self) -> list[dict]:
        """All entries, oldest first (empty if the log does not exist yet)."""
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def __repr__(self) -> str:
        return f"AccessLog({str(self.path)!r})"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (e.g. some containers)
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"
