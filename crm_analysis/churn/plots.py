"""Charts of the churn analysis: hazard ratios, calibration, return curves.

Each helper draws on a given Axes (or a new figure), uses Korean or English
labels from ``crm_analysis/labels/churn.yaml`` and returns the Axes. They
show aggregates only.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, PercentFormatter

from crm_analysis.data_labels import department_name, term_names
from crm_analysis.i18n import check_lang, label

__all__ = ["plot_hazard_ratios", "plot_calibration", "plot_return_curves"]


def _new_axes(ax, figsize):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _model_label(name: str, lang: str) -> str:
    try:
        return label(f"churn_model_{name}", lang)
    except KeyError:
        return name


def plot_hazard_ratios(table: pd.DataFrame, ax=None, lang: str = "ko"):
    """Forest plot of ``hazard_ratio`` with ``lower``/``upper`` per ``term`` (log scale).

    The axis label says whether the intervals allow for a patient's repeated gaps (the table's
    ``ci_method``, from :meth:`~crm_analysis.churn.ChurnModel.hazard_ratios`).
    """
    check_lang(lang)
    ax = _new_axes(ax, (7, 1 + 0.3 * max(len(table), 1)))
    y = np.arange(len(table))
    hr = table["hazard_ratio"].to_numpy()
    ax.errorbar(hr, y, xerr=[hr - table["lower"].to_numpy(), table["upper"].to_numpy() - hr],
                fmt="o", color="#4C72B0", ecolor="#4C72B0", capsize=2)
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    lo = float(min(table["lower"].min(), 1.0)) if len(table) else 0.5
    hi = float(max(table["upper"].max(), 1.0)) if len(table) else 2.0
    ticks = [t for t in (0.25, 0.33, 0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0) if lo * 0.95 <= t <= hi * 1.05]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks(y, term_names(table["term"].astype(str), lang).to_numpy())
    ax.invert_yaxis()
    method = set(table["ci_method"]) if "ci_method" in table.columns else set()
    robust = "churn_hr_xlabel_robust" if method and all(m.startswith("patient-clustered") for m in method) else None
    ax.set_xlabel(label(robust or ("churn_hr_xlabel_model_based" if method else "churn_hr_xlabel"), lang))
    ax.set_title(label("churn_hr_title", lang))
    ax.grid(axis="x", alpha=0.3)
    return ax


def plot_calibration(tables: Mapping[str, pd.DataFrame], t0: int, ax=None, lang: str = "ko"):
    """Predicted against observed return rate by decile, one line per model."""
    check_lang(lang)
    ax = _new_axes(ax, (5.5, 5))
    top = 0.0
    for name, table in tables.items():
        ax.plot(table["predicted"], table["observed"], marker="o", label=_model_label(name, lang))
        top = max(top, float(table["predicted"].max()), float(table["observed"].max()))
    top = min(1.0, top * 1.05 + 0.02)
    ax.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1, label=label("churn_perfect", lang))
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel(label("churn_calibration_xlabel", lang))
    ax.set_ylabel(label("churn_calibration_ylabel", lang))
    ax.set_title(label("churn_calibration_title", lang).format(days=t0))
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return ax


def plot_return_curves(curves: Mapping[str, pd.DataFrame], by: str, ax=None, lang: str = "ko", max_days: int = 365):
    """Kaplan–Meier share returned (1 − S) with 95% bands, one line per group."""
    check_lang(lang)
    ax = _new_axes(ax, (8, 4.5))
    for group, curve in curves.items():
        c = curve[curve.index <= max_days]
        t = c.index.to_numpy()
        line = ax.step(t, 1 - c["survival"].to_numpy(), where="post", label=str(department_name(group, lang)))[0]
        ax.fill_between(t, 1 - c["upper"].to_numpy(), 1 - c["lower"].to_numpy(), step="post",
                        alpha=0.15, color=line.get_color())
    ax.set_xlim(0, max_days)
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel(label("churn_km_xlabel", lang))
    ax.set_ylabel(label("churn_km_ylabel", lang))
    ax.set_title(label("churn_km_title", lang).format(by=by))
    ax.legend(frameon=False, ncols=2, fontsize="small")
    ax.grid(alpha=0.3)
    return ax
