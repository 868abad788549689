"""``manifest.json``: what a monthly run ran on, with what, and how long each step took.

It records the parameters (database passwords removed), the SHA-256 of every
input file (a database source is noted as not hashed), the versions of the
packages that shape the results, the project's git commit (when the project
is a git checkout) and the wall time of every step. Timings live here and
nowhere else, so ``kpis.json`` and the outreach lists of two runs of the same
month can be compared byte for byte.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from crm_analysis._version import __version__

__all__ = ["PACKAGES", "input_hashes", "package_versions", "git_commit", "build_manifest"]

#: Packages whose versions are recorded.
PACKAGES = ("pandas", "numpy", "scipy", "statsmodels", "lifelines", "matplotlib", "pyarrow", "papermill",
            "nbconvert", "nbclient", "ipykernel", "weasyprint", "openpyxl", "xlsxwriter", "pandera", "koreanize-matplotlib", "dask", "distributed")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def input_hashes(source: str | Path, mapping: str | Path | None = None) -> dict:
    """SHA-256 of each input file.

    Parameters
    ----------
    source : str or Path
        A folder (every file in it, recursively, by relative path), a single
        file, or a database URL (``{"note": "database: not hashed"}``).
    mapping : str or Path, optional
        Also hashed, under the key ``mapping``.

    Returns
    -------
    dict
        ``{"files": {name: sha256}, "mapping": {name: sha256}}`` or a note.
    """
    out: dict = {}
    text = str(source)
    if "://" in text:
        out["note"] = "database: not hashed"
    else:
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            out["files"] = {p.relative_to(path).as_posix(): _sha256(p) for p in files}
        elif path.is_file():
            out["files"] = {path.name: _sha256(path)}
        else:
            out["note"] = "source not found: not hashed"
    if mapping:
        mapping = Path(mapping)
        out["mapping"] = {mapping.name: _sha256(mapping)} if mapping.is_file() else {mapping.name: None}
    return out


def package_versions() -> dict[str, str | None]:
    """Installed versions of crm-analysis, Python and :data:`PACKAGES` (None when absent)."""
    versions: dict[str, str | None] = {"crm-analysis": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(project_root: str | Path) -> str | None:
    """``git rev-parse HEAD`` in `project_root`, or None (not a checkout, or git missing)."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=str(project_root), capture_output=True, text=True,
                                timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and len(commit) == 40 else None


def build_manifest(*, month: str, parameters: dict, source: str | Path, mapping: str | Path | None,
                   notebooks: list[str], timings: dict[str, float], outputs: list[str], project_root: str | Path,
                   extra: dict | None = None) -> dict:
    """The manifest as a dict (write it with ``json.dumps(..., sort_keys=True)``).

    Parameters
    ----------
    month : str
    parameters : dict
        The run's parameters, already redacted.
    source, mapping
        The inputs, hashed with :func:`input_hashes`.
    notebooks : list of str
        Notebook file names in run order.
    timings : dict
        Step name -> seconds.
    outputs : list of str
        Files published in the month folder.
    project_root : str or Path
        Where to ask git for the commit.
    extra : dict, optional
        Merged in (for example the privacy scan's result).
    """
    return {"month": month, "parameters": parameters, "inputs": input_hashes(source, mapping),
            "packages": package_versions(), "git_commit": git_commit(project_root),
            "notebooks": notebooks, "outputs": sorted(outputs), "timings_seconds": timings, **(extra or {})}
