"""Load a clinic in a forked child process while this process goes on.

The ``crm-analysis run`` command spends its first seconds importing the
analysis stack (statsmodels, lifelines, IPython...) on one core. Loading and
validating the extract needs none of that, so the command forks a child as
soon as :mod:`crm_analysis.io` is imported (:meth:`ForkedLoad.start`): the
child loads the source, checks the month, cuts the snapshot at `as_of` and
writes it as a snapshot cache (:func:`crm_analysis.io.cache.write_snapshot_cache`,
the copy the run's notebooks read anyway) into a private folder. The run then
reads that cache (:meth:`ForkedLoad.result`) instead of loading the source
itself. An error in the child (a broken contract, a month outside the data)
is raised there, as loading would have raised it.

Forking is used only where it is safe: POSIX, and a process with one thread.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import threading
from pathlib import Path

import pandas as pd

__all__ = ["ForkedLoad", "CACHE_NAME", "NOTEBOOK_SOURCE", "write_run_copy"]

#: The snapshot cache's folder name inside the private folder.
CACHE_NAME = "clinic.cache"
#: What the executed notebooks show as their ``source`` (and their clinic's ``source``): they read the run's
#: private validated copy, and never see the source itself, not even without its secrets.
NOTEBOOK_SOURCE = "the run's validated copy of the clinic data (its source is named in manifest.json)"


class ForkedLoad:
    """A clinic being loaded by a forked child; :meth:`result` waits for it.

    Made by :meth:`start`; `folder` is the private folder the cache is written into.
    """

    def __init__(self, pid: int, read_fd: int, folder: Path) -> None:
        self.pid = pid
        self.folder = Path(folder)
        self._read = read_fd
        self._done = False

    @property
    def cache(self) -> Path:
        return self.folder / CACHE_NAME

    @classmethod
    def start(cls, source, *, mapping, month: str, as_of: pd.Timestamp, folder: Path) -> "ForkedLoad | None":
        """Fork a child that loads `source` (with `mapping`), checks `month`, and writes the snapshot at
        `as_of` into `folder` (:func:`write_run_copy`). None where forking is not safe."""
        if not hasattr(os, "fork") or threading.active_count() != 1:
            return None
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the caller's code
            try:
                os.close(read)
                try:
                    payload = ("ok", *_load(source, mapping, month, as_of, Path(folder)))
                except BaseException as err:  # noqa: BLE001 - handed to the parent, which raises it
                    payload = ("error", err)
                try:
                    data = pickle.dumps(payload)
                except Exception:  # noqa: BLE001 - an error that does not pickle: its type and text
                    data = pickle.dumps(("error", RuntimeError(f"{type(payload[1]).__name__}: {payload[1]}")))
                with os.fdopen(write, "wb") as pipe:
                    pipe.write(data)
            finally:
                os._exit(0)
        os.close(write)
        return cls(pid, read, folder)

    def result(self):
        """``(snapshot, warnings)`` once the child is done; raises what loading raised.

        The snapshot is read back from the cache, its ``source`` the loaded one (not the cache's label).
        """
        from crm_analysis.io.cache import read_snapshot_cache

        with os.fdopen(self._read, "rb") as pipe:
            data = pipe.read()
        self._done = True
        os.waitpid(self.pid, 0)
        if not data:
            raise RuntimeError("the process loading the clinic ended without a result (was it killed?)")
        kind, *rest = pickle.loads(data)
        if kind == "error":
            raise rest[0]
        warnings, source = rest
        return read_snapshot_cache(self.cache).with_source(source), warnings

    def cancel(self) -> None:
        """End the child if its result was never taken (the run failed before it needed the data)."""
        if self._done:
            return
        self._done = True
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self._read)

    def close(self) -> None:
        """:meth:`cancel`, and remove the private folder with the copy of the data."""
        self.cancel()
        shutil.rmtree(self.folder, ignore_errors=True)


def write_run_copy(snapshot, folder: Path) -> Path:
    """Write `snapshot` as the run's snapshot cache in `folder` (``CACHE_NAME``), its ``source`` set to
    :data:`NOTEBOOK_SOURCE`: the copy the notebooks read, which never names the source."""
    from crm_analysis.io.cache import write_snapshot_cache

    return Path(write_snapshot_cache(snapshot.with_source(NOTEBOOK_SOURCE), Path(folder) / CACHE_NAME))


def _load(source, mapping, month: str, as_of: pd.Timestamp, folder: Path) -> tuple[list[str], str]:
    from crm_analysis.io.loading import load_clinic

    clinic = load_clinic(source, mapping=mapping)
    warnings = clinic.check_month(month)
    snapshot = clinic.snapshot(as_of)
    write_run_copy(snapshot, folder)
    return warnings, snapshot.source
