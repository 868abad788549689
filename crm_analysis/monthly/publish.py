"""Publishing a folder atomically: one writer at a time, work in hidden staging folders, one rename.

Used by the monthly run (:mod:`crm_analysis.monthly.run`) for ``reports/YYYY-MM/``
and ``outreach/YYYY-MM/``, and by the clinic network's summary
(:mod:`crm_analysis.network.run`).

- :func:`folder_lock` holds an exclusive lock on a folder (one run writes into it at a time);
- :func:`staging_folder` makes a hidden ``.NAME.partial-*`` folder beside the target;
- :func:`publish` swaps a finished staging folder into place (the old version survives until the swap);
- :func:`clean_partials` removes what killed runs left behind (and restores a version a run killed
  mid-swap had set aside);
- :func:`private_workdir` is a run's private scratch folder (0700, under ``$TMPDIR``; from
  :mod:`crm_analysis.private_files`);
- :func:`keep_failed` moves a failed run's work to ``NAME.failed/`` for diagnosis.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from crm_analysis.exceptions import RunFailed
from crm_analysis.private_files import pid_alive, private_root, private_workdir

__all__ = ["LOCK_FILE", "folder_lock", "clean_partials", "staging_folder", "publish", "keep_failed",
           "private_root", "private_workdir", "ensure_private", "pid_alive"]

#: The file a run locks in the folder it writes into (hidden; left in place, it is empty).
LOCK_FILE = ".crm-analysis.lock"


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (one run at a time writes into it).

    The lock is taken on a file in the folder, opened for writing: on NFS, ``flock`` is emulated with
    byte-range locks, which need a file open for writing (a folder opened read-only would fail there).

    Raises
    ------
    RunFailed
        If another run holds the lock.
    """
    fd = os.open(Path(folder) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFailed(f"another crm-analysis run is writing to {folder}; wait for it to finish") from None
        yield
    finally:
        # Unlock before closing: a process forked meanwhile (a notebook kernel) shares the open file,
        # and closing only this process's descriptor would leave the lock held until that one ends.
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def clean_partials(folder: Path, name: str | None = None) -> None:
    """Remove what killed runs left in `folder` (call with the folder's lock held).

    Parameters
    ----------
    folder : Path
    name : str, optional
        Only the staging folders of this target (e.g. ``2026-10``); default all.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return
    for stale in folder.glob(f".{name}.partial-*" if name else ".*.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for retired in folder.glob(".*.old-*"):
        # A run killed between the two renames of publish() left the previous version here and no
        # target folder: put it back rather than lose it.
        target_name, _, pid = retired.name[1:].rpartition(".old-")
        if pid.isdigit() and int(pid) != os.getpid() and pid_alive(int(pid)):
            continue  # another run is publishing right now
        target = folder / target_name
        if not target.exists():
            os.replace(retired, target)
        else:
            shutil.rmtree(retired, ignore_errors=True)


def staging_folder(folder: Path, name: str) -> Path:
    """A new hidden folder ``folder/.NAME.partial-*`` to assemble `name` in (same file system as the target)."""
    return Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=folder))


def publish(work: Path, final: Path, mode: int = 0o755) -> None:
    """Swap the finished folder `work` into place as `final`; the old version survives until the swap."""
    os.chmod(work, mode)
    if final.exists():
        retired = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, retired)
        os.replace(work, final)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(work, final)


def keep_failed(work: Path, folder: Path, name: str) -> Path:
    """Move a failed run's `work` to ``folder/NAME.failed`` (replacing an older one); returns that path."""
    failed = Path(folder) / f"{name}.failed"
    shutil.rmtree(failed, ignore_errors=True)
    os.replace(work, failed)
    return failed


def ensure_private(folder: Path) -> Path:
    """Create `folder` (owner-only if new: it holds personal data); returns it."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder
