"""Charts of the no-show risk model: observed no-show rate by risk decile.

Draws on a given Axes (or a new figure), with Korean or English labels from
``crm_analysis/labels/noshow.yaml``, and returns the Axes. Aggregates only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analysis.i18n import check_lang, label

__all__ = ["plot_deciles"]


def plot_deciles(deciles: pd.DataFrame, split_date=None, ax=None, lang: str = "ko"):
    """Observed no-show rate (bars, ± 1.96 SE) and mean predicted risk (dots) per risk decile.

    Parameters
    ----------
    deciles : DataFrame
        From :func:`~crm_analysis.noshow.backtest.decile_table` (``decile``, ``predicted``,
        ``observed``, ``observed_se``).
    split_date : Timestamp, optional
        Shown in the title (the back-test's first scored day).
    ax : matplotlib Axes, optional
    lang : {"ko", "en"}

    Returns
    -------
    matplotlib Axes
    """
    check_lang(lang)
    from matplotlib.ticker import PercentFormatter

    if ax is None:
        import matplotlib.pyplot as plt

        if lang == "ko":
            from crm_analysis.plotting import use_korean_font

            use_korean_font()
        _, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    x = deciles["decile"].to_numpy()
    obs = deciles["observed"].to_numpy(dtype=float)
    err = 1.96 * deciles["observed_se"].to_numpy(dtype=float)
    ax.bar(x, obs, yerr=np.nan_to_num(err), color="#4c78a8", alpha=0.8, capsize=3, label=label("noshow_observed", lang))
    ax.plot(x, deciles["predicted"].to_numpy(dtype=float), "o-", color="#e45756", label=label("noshow_predicted", lang))
    ax.set_xticks(x)
    ax.set_xlabel(label("noshow_decile_axis", lang))
    ax.set_ylabel(label("noshow_rate_axis", lang))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    if split_date is not None:
        ax.set_title(label("noshow_deciles_title", lang).format(split=f"{pd.Timestamp(split_date):%Y-%m-%d}"))
    ax.legend(loc="upper left")
    return ax
