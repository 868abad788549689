"""BLAS on one thread for the model fits.

The fits (lifelines' Cox and Weibull steps, the reminder GLM's Newton steps) make many tall, thin or
small matrix products. Threaded OpenBLAS splits each into pieces whose threads wait for one another,
which on a busy 2-core machine costs several to twenty times the CPU of one thread; the estimates agree
to rounding (~1e-12).
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits

__all__ = ["one_blas_thread"]


def one_blas_thread() -> threadpool_limits:
    """A context in which BLAS runs on one thread (restored on exit)."""
    return threadpool_limits(limits=1, user_api="blas")
