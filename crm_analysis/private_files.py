"""Private temporary folders for personal data: ``$TMPDIR/crm-analysis-<uid>/run-<pid>-*``, mode 0700.

A monthly run keeps its copy of the clinic data, its models and its kernels'
files in one (:func:`private_workdir`); a folder whose process is gone (a
killed run) is removed by the next run. This module sits at the bottom of the
package (the command line makes the folder before it imports the analysis
stack: :mod:`crm_analysis.io.forked_load`).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from crm_analysis.exceptions import RunFailed

__all__ = ["private_root", "private_workdir", "pid_alive"]


def private_root() -> Path:
    """``$TMPDIR/crm-analysis-<uid>``: 0700, owned by this user.

    Raises
    ------
    RunFailed
        If the folder exists but is not private to this user.
    """
    root = Path(tempfile.gettempdir()) / f"crm-analysis-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    info = root.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise RunFailed(f"{root} is not private to this user (owner and mode 0700 required); remove it and run again")
    return root


def private_workdir() -> Path:
    """A fresh private folder for this run; the folders of runs that were killed are removed first."""
    root = private_root()
    for stale in root.glob("run-*"):
        match = re.match(r"run-(\d+)-", stale.name)
        if match and not pid_alive(int(match.group(1))):
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=root))


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
