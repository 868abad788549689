"""Handing freed memory back to the system, between the steps of a long process.

A process that has built and dropped large frames keeps most of that memory:
glibc's allocator holds freed heap for reuse, and Arrow its pool. Between
two steps that is harmless in a short script, but a monthly run keeps several
processes alive at once (the run, its model workers, two notebook kernels),
and memory one of them no longer uses is memory another cannot have. At a
million patients a process kept two or three times what it still used.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import re
from pathlib import Path

__all__ = ["free_unused_memory", "memory_available", "parse_size"]

#: Where the kernel shows the control groups (Linux).
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: A cgroup v1 limit at or above this is "no limit" (the kernel shows 2**63 rounded down to a page).
_NO_LIMIT = 2 ** 62


def free_unused_memory() -> None:
    """Collect garbage, then return the freed heap (glibc) and Arrow's unused pool memory to the system.

    Costs a few milliseconds; does nothing where the allocator has no such call (not glibc).
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # glibc only
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with contextlib.suppress(ImportError):
        import pyarrow as pa

        pa.default_memory_pool().release_unused()


def parse_size(text: str | int) -> int:
    """Bytes in a size such as ``"6GB"``, ``"6 GiB"``, ``"512M"`` or ``6000000000`` (GB = 10**9, GiB = 2**30;
    a bare ``G`` or ``M`` is taken as GiB or MiB).

    Raises
    ------
    ValueError
        Not a size, or not positive.
    """
    if isinstance(text, int):
        value = text
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)(b?)\s*", str(text), flags=re.IGNORECASE)
        if match is None:
            raise ValueError(f"not a size: {text!r} (e.g. 6GB, 6GiB, 512MiB)")
        number, unit, binary, byte = match.groups()
        power = "kmgt".find(unit.lower()) + 1 if unit else 0
        decimal = bool(byte) and not binary  # "GB": 10**9; "GiB", "G": 2**30
        value = int(float(number) * ((1000 if decimal else 1024) ** power))
    if value <= 0:
        raise ValueError(f"a memory size must be positive, not {text!r}")
    return value


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # cgroup v2 shows "max" for no limit


def _own_cgroups(root: Path, membership: Path) -> list[tuple[Path, str]]:
    """This process's memory control group and each one above it, innermost first, as (folder, version)."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            base, version = root / "memory", "v1"
        elif controllers == "" and (root / "cgroup.controllers").exists():
            base, version = root, "v2"
        else:
            continue
        folder = base / path.lstrip("/")
        while True:
            found.append((folder, version))
            if folder == base:
                break
            folder = folder.parent
    return found


def _cgroup_room(root: Path, membership: Path) -> int | None:
    """Memory this process's control groups still allow: the tightest of their limits less the anonymous memory
    already charged to each (page cache is left out: the kernel reclaims it under the limit); None: no limit."""
    room = None
    for folder, version in _own_cgroups(root, membership):
        limit = _read_int(folder / ("memory.limit_in_bytes" if version == "v1" else "memory.max"))
        if limit is None or limit >= _NO_LIMIT:
            continue
        used = 0
        with contextlib.suppress(OSError):
            stat = dict(line.split() for line in (folder / "memory.stat").read_text().splitlines())
            used = int(stat.get("total_rss" if version == "v1" else "anon", 0))
        room = limit - used if room is None else min(room, limit - used)
    return None if room is None else max(room, 0)


def memory_available(root: str | Path = CGROUP_ROOT, *, meminfo: str | Path = "/proc/meminfo",
                     membership: str | Path = "/proc/self/cgroup") -> int | None:
    """Bytes of memory this process and its children can still use: the machine's available memory
    (``MemAvailable``), or less under a control group's limit (a container's, or systemd's ``MemoryMax``),
    less what the group's processes hold already; None where neither can be read (not Linux).

    Setting ``CRM_ANALYSIS_MEMORY`` (e.g. ``6GB``) states it instead. `root`, `meminfo` and `membership` are
    where Linux shows the control groups, the machine's memory and this process's groups.
    """
    stated = os.environ.get("CRM_ANALYSIS_MEMORY")
    if stated:
        return parse_size(stated)
    machine = None
    with contextlib.suppress(OSError, ValueError, StopIteration):
        line = next(x for x in Path(meminfo).read_text().splitlines() if x.startswith("MemAvailable:"))
        machine = int(line.split()[1]) * 1024
    group = _cgroup_room(Path(root), Path(membership))
    sizes = [size for size in (machine, group) if size is not None]
    return min(sizes) if sizes else None
