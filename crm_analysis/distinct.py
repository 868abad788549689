"""Work done once per distinct value: a million rows often hold a few thousand values.

:func:`each_distinct` applies a function (usually a text format) to the
distinct values of a column only and spreads the results back to every row.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

__all__ = ["each_distinct"]


def each_distinct(values, fn: Callable[[pd.Series], object] | str) -> np.ndarray:
    """``fn`` of each value, computed once per distinct value, as an object array (one entry per row).

    Parameters
    ----------
    values : Series or array-like
    fn : callable or str
        Given the distinct values as a Series (in order of first appearance), returns their results in that
        order; or a format string (``"{:.1f}"``) applied to each distinct value.

    Returns
    -------
    numpy.ndarray of object

    Notes
    -----
    Floats are told apart by their bits, so ``-0.0`` and NaN give what they give one by one (``"-0.0"``,
    ``"nan"``); missing values of other types form a value of their own.
    """
    values = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    raw = values.to_numpy()
    keys = raw.view(np.int64) if raw.dtype == np.float64 else values
    codes, _ = pd.factorize(keys, use_na_sentinel=False)
    first = np.unique(codes, return_index=True)[1] if len(codes) else np.zeros(0, dtype=np.int64)
    distinct = values.iloc[first].reset_index(drop=True)
    results = [fn.format(v) for v in distinct] if isinstance(fn, str) else fn(distinct)
    out = np.empty(len(first), dtype=object)
    out[:] = list(results)
    return out[codes]
