"""The daily run's no-show model: fitted once a month, kept in a private cache beside the daily folders.

Fitting the no-show risk model is the slowest step of a daily run (seconds on the 20,000-patient demo). The
model a day ``D`` scores with is the **month model** of ``D``'s month: fitted on the outcomes known at the
end of the month before (:func:`training_end`, the month's first day at 00:00), the last
:data:`~crm_analysis.daily.calls.TRAIN_MONTHS` months of them. Every day of a month therefore scores with
the same model, whichever day ran first, and nothing resolved on or after the month's first day (so nothing
on or after ``D``) is used.

:func:`month_model` fits it on the first run of the month and keeps it in ``<outreach>/daily/.model/``
(mode 0700): ``noshow-YYYY-MM-<key>.pkl`` (the pickled :class:`~crm_analysis.noshow.NoShowRiskModel`,
mode 0600; ``YYYY-MM`` the month it serves) beside ``noshow-YYYY-MM-<key>.json`` (0600: the full key, the
pickle's SHA-256, the training end and size; no personal data, and not the source's name). The key is the
SHA-256 of

- the crm_analysis version and this cache's format;
- the source as given (its absolute path, symlinks not resolved, so ``/data/exports/latest`` stays one
  source from day to day; a database URL is only hashed, never written);
- the training end and the training months;
- the content of the appointments scheduled and booked before the training end (ids, patients, times,
  status, cancellation, department): another clinic's data, or a re-export that changed this clinic's
  history, gives another key and a fresh fit.

A later day of the month finds the file, checks its owner, its mode and its hash before unpickling it
(pickle runs code when loaded: only a file this user wrote into an owner-only folder is read) and scores
with it in milliseconds. Anything amiss (another key, a damaged or foreign file) is simply a fresh fit.
Files of months more than :data:`KEEP_MONTHS` before the newest are removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import stat
from pathlib import Path

import pandas as pd

__all__ = ["MODEL_FOLDER", "KEEP_MONTHS", "training_end", "model_key", "month_model", "load_model", "save_model"]

#: The cache's folder inside ``<outreach>/daily/``.
MODEL_FOLDER = ".model"
#: Months of models kept before the newest one (for re-runs of past days).
KEEP_MONTHS = 2
_FORMAT = "crm_analysis-daily-noshow-model/1"
_KEY_COLUMNS = ("appointment_id", "patient_id", "booked_at", "scheduled_at", "status", "cancelled_at", "department")


def training_end(day) -> pd.Timestamp:
    """00:00 of the first day of `day`'s month: the month model is fitted on what was known before it."""
    return pd.Timestamp(day).normalize().replace(day=1)


def _source_identity(source) -> str:
    text = str(source)
    if "://" in text:
        return text
    return os.path.abspath(os.path.expanduser(text))


def model_key(clinic, source, day, train_months: int | None) -> str:
    """The month model's cache key (hex SHA-256): see the module docstring."""
    from crm_analysis._version import __version__

    end = training_end(day)
    digest = hashlib.sha256()
    head = {"format": _FORMAT, "crm_analysis": __version__, "source": _source_identity(source),
            "training_end": f"{end:%Y-%m-%d}", "train_months": train_months}
    digest.update(json.dumps(head, sort_keys=True).encode())
    a = clinic.tables.get("appointments")
    if a is not None:
        before = ((a["scheduled_at"] < end) & (a["booked_at"] < end)).fillna(False).to_numpy()
        cols = [c for c in _KEY_COLUMNS if c in a]
        digest.update(json.dumps(cols).encode())
        digest.update(_content_bytes(a.loc[before, cols]))
    return digest.hexdigest()


def _content_bytes(frame: pd.DataFrame) -> bytes:
    """The frame's values as bytes: its Arrow IPC stream (tens of milliseconds for 400,000 appointments, where
    hashing Arrow-backed text ids row by row takes half a second)."""
    try:
        import pyarrow as pa

        table = pa.Table.from_pandas(frame, preserve_index=False).combine_chunks()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue().to_pybytes()
    except Exception:  # noqa: BLE001 - e.g. a column of mixed types: the slower pandas hash
        return pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()


def _paths(folder: Path, day, key: str) -> tuple[Path, Path]:
    stem = f"noshow-{training_end(day):%Y-%m}-{key[:16]}"
    return folder / f"{stem}.pkl", folder / f"{stem}.json"


def _private(path: Path, folder: bool = False) -> bool:
    """Owned by this user and unreadable by others (a folder: also a real folder, not a link)."""
    try:
        st = path.lstat()
    except OSError:
        return False
    kind = stat.S_ISDIR(st.st_mode) if folder else stat.S_ISREG(st.st_mode)
    return kind and st.st_uid == os.getuid() and not st.st_mode & 0o077


def load_model(folder: str | Path, day, key: str):
    """The cached month model of `day` under `key`, or None (absent, another key, damaged or not private)."""
    folder = Path(folder)
    data, meta = _paths(folder, day, key)
    if not (_private(folder, folder=True) and _private(data) and _private(meta)):
        return None
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
        payload = data.read_bytes()
        if info.get("format") != _FORMAT or info.get("key") != key \
                or hashlib.sha256(payload).hexdigest() != info.get("sha256"):
            return None
        model = pickle.loads(payload)  # noqa: S301 - our own file, hash-checked, owner-only, in a 0700 folder
    except Exception:  # noqa: BLE001 - a cache that cannot be read is refitted
        return None
    return model if hasattr(model, "params_") else None


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` (0600) through a temporary file renamed into place."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_model(folder: str | Path, day, key: str, model) -> Path:
    """Keep the fitted month model of `day` under `key` (folder 0700, files 0600); returns the pickle's path."""
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    data, meta = _paths(folder, day, key)
    payload = pickle.dumps(model, protocol=5)
    info = {"format": _FORMAT, "key": key, "sha256": hashlib.sha256(payload).hexdigest(),
            "training_end": f"{training_end(day):%Y-%m-%d}", "n_appointments": int(getattr(model, "n_", 0)),
            "formula": getattr(model, "formula_", None)}
    _write_private(data, payload)
    _write_private(meta, (json.dumps(info, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    _prune(folder)
    return data


def _prune(folder: Path) -> None:
    files = [(p, p.name.split("-")[1:3]) for p in folder.glob("noshow-*-*-*.*") if p.suffix in (".pkl", ".json")]
    months = [pd.Period(f"{y}-{m}", freq="M") for _, (y, m) in files if y.isdigit() and m.isdigit()]
    if not months:
        return
    oldest = max(months) - KEEP_MONTHS
    for path, (y, m) in files:
        if y.isdigit() and m.isdigit() and pd.Period(f"{y}-{m}", freq="M") < oldest:
            path.unlink(missing_ok=True)


def month_model(known, day, *, source, folder: str | Path | None, train_months: int | None,
                clinic=None) -> tuple[object | None, str]:
    """The month model of `day`: from the cache in `folder` if there, else fitted (and kept there).

    Parameters
    ----------
    known : ClinicData
        The clinic as known at the day's 00:00 (:func:`~crm_analysis.daily.moment.clinic_at`).
    day : Timestamp
    source : str or Path
        The source's name, part of the key.
    folder : path or None
        The cache folder (``<outreach>/daily/.model``); None: no cache (always fitted).
    train_months : int or None
    clinic : ClinicData, optional
        The extract as loaded, whose appointments key the cache (default `known`).

    Returns
    -------
    (NoShowRiskModel or None, str)
        The model and ``"reused"`` or ``"fitted"``; ``(None, "none")`` when the model cannot be fitted on this
        clinic (too little history, no convergence) or crm_analysis.noshow is not installed.
    """
    try:
        from crm_analysis.noshow.scoring import fit_noshow_model
    except ImportError:
        return None, "none"
    from crm_analysis.exceptions import CrmAnalysisError

    key = model_key(clinic if clinic is not None else known, source, day, train_months) if folder else None
    if folder is not None:
        model = load_model(folder, day, key)
        if model is not None:
            return model, "reused"
    try:
        model = fit_noshow_model(known, training_end(day) - pd.Timedelta(days=1), train_months=train_months)
    except CrmAnalysisError:
        return None, "none"
    if folder is not None:
        try:
            save_model(folder, day, key, model)
        except OSError:  # a read-only or full disk: the run goes on, the next day fits again
            pass
    return model, "fitted"
