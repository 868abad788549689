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

__all__ = ["free_unused_memory"]


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
