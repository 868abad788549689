"""Segment migration between two dates: who moved from which segment to which, and VIP changes.

:func:`segment_migration` computes features, RFM segments and VIPs at two
as-of dates (each with no look-ahead) and compares them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from crm_analysis.features import patient_features
from crm_analysis.value.segmentation import assign_segments, rfm_scores, segment_names
from crm_analysis.sufficiency import require
from crm_analysis.value.vip import select_vips

__all__ = ["segment_migration", "SegmentMigration", "NOT_REGISTERED", "previous_month_end"]

#: Row label for patients registered between the two dates.
NOT_REGISTERED = "(new since)"


def previous_month_end(as_of) -> pd.Timestamp:
    """The last day of the month before `as_of`'s month (2026-10-31 -> 2026-09-30; 2026-10-15 -> 2026-09-30)."""
    as_of = pd.Timestamp(as_of).normalize()
    return as_of.replace(day=1) - pd.Timedelta(days=1)


@dataclass(frozen=True)
class SegmentMigration:
    """Result of :func:`segment_migration`.

    Attributes
    ----------
    from_as_of, to_as_of : Timestamp
    counts : DataFrame
        Rows: segment on `from_as_of` (plus ``"(new since)"`` for patients
        registered after it); columns: segment on `to_as_of`.
    rates : DataFrame
        `counts` divided by its row totals (each row sums to 1).
    vip_entered, vip_left : DataFrame
        Patients selected as VIP on `to_as_of` but not on `from_as_of`, and
        the reverse, with their rule/reason (``left`` says why they no
        longer qualify or whether they only fell outside the capacity).
    segments : DataFrame
        Per patient: ``segment_from`` and ``segment_to``.
    """

    from_as_of: pd.Timestamp
    to_as_of: pd.Timestamp
    counts: pd.DataFrame = field(repr=False)
    rates: pd.DataFrame = field(repr=False)
    vip_entered: pd.DataFrame = field(repr=False)
    vip_left: pd.DataFrame = field(repr=False)
    segments: pd.DataFrame = field(repr=False)

    def summary(self, lang: str = "en", rules: str | Path | Mapping | None = None) -> pd.DataFrame:
        """Per segment: patients on each date, how many stayed, and the share that stayed.

        ``segment`` holds the display name in `lang` (``"ko"``: the rules' Korean names).
        """
        stay = pd.Series(np.diag(self.counts.reindex(columns=self.counts.index[:-1]).to_numpy()[:-1]),
                         index=self.counts.index[:-1])
        before = self.counts.sum(axis=1).iloc[:-1]
        after = self.counts.sum(axis=0)
        out = pd.DataFrame({"patients_from": before, "patients_to": after.reindex(before.index),
                            "stayed": stay})
        out["stayed_share"] = out["stayed"] / out["patients_from"].where(out["patients_from"] > 0)
        names = segment_names(rules, lang)
        out.index = out.index.map(lambda k: names.get(k, k))
        return out.rename_axis("segment").reset_index()

    def plot_heatmap(self, ax=None, lang: str = "ko", rules: str | Path | Mapping | None = None,
                     rates: bool = True):
        """Heatmap of the transition rates (or counts), rows = from, columns = to, names in `lang`."""
        import matplotlib.pyplot as plt

        from crm_analysis.i18n import label

        names = {**segment_names(rules, lang), NOT_REGISTERED: "(신규)" if lang == "ko" else NOT_REGISTERED}
        m = self.rates if rates else self.counts
        ax = ax or plt.subplots(figsize=(7.5, 6))[1]
        im = ax.imshow(m.to_numpy(dtype=float), cmap="Blues", vmin=0, vmax=1 if rates else None)
        ax.set_title(label("seg_heatmap_title", lang))
        ax.set_xticks(range(m.shape[1]), [names.get(c, c) for c in m.columns], rotation=45, ha="right")
        ax.set_yticks(range(m.shape[0]), [names.get(r, r) for r in m.index])
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                val = m.iat[i, j]
                if np.isfinite(val) and val > 0:
                    ax.text(j, i, f"{val:.0%}" if rates else f"{int(val)}", ha="center", va="center", fontsize=7,
                            color="white" if (rates and val > 0.5) else "black")
        ax.set_xlabel(f"{self.to_as_of:%Y-%m-%d}")
        ax.set_ylabel(f"{self.from_as_of:%Y-%m-%d}")
        ax.figure.colorbar(im, ax=ax, fraction=0.046)
        return ax

    def _repr_html_(self) -> str:
        return (f"<h4>Segment migration {self.from_as_of:%Y-%m-%d} → {self.to_as_of:%Y-%m-%d}</h4>"
                f"<p>VIP entered {len(self.vip_entered):,}, left {len(self.vip_left):,}</p>"
                + self.counts.to_html())


def segment_migration(clinic, from_as_of, to_as_of, *, rules: str | Path | Mapping | None = None,
                      vip_rules: str | Path | Mapping | None = None,
                      features_to: pd.DataFrame | None = None) -> SegmentMigration:
    """Transition matrix of RFM segments between two dates, and VIP entries and exits.

    Parameters
    ----------
    clinic : ClinicData
        Data covering `to_as_of`.
    from_as_of, to_as_of : str or Timestamp
        The earlier and later date (e.g. last month's end and this month's).
    rules : optional
        Segment rules (see :func:`~crm_analysis.value.segmentation.assign_segments`).
    vip_rules : optional
        VIP rules (see :func:`~crm_analysis.value.vip.select_vips`).
    features_to : DataFrame, optional
        :func:`~crm_analysis.features.patient_features` at `to_as_of`, when already made (made here otherwise).

    Returns
    -------
    SegmentMigration

    Raises
    ------
    ValueError
        If `from_as_of` is not before `to_as_of`.
    """
    t0, t1 = pd.Timestamp(from_as_of).normalize(), pd.Timestamp(to_as_of).normalize()
    require("migration", clinic, t1)
    if t0 >= t1:
        raise ValueError(f"from_as_of ({t0:%Y-%m-%d}) must be before to_as_of ({t1:%Y-%m-%d})")
    f0 = patient_features(clinic, t0)
    f1 = patient_features(clinic, t1) if features_to is None else features_to
    s0 = assign_segments(rfm_scores(f0), rules)["segment"]
    s1 = assign_segments(rfm_scores(f1), rules)["segment"]
    order = list(segment_names(rules))
    seg = pd.DataFrame({"segment_to": s1.astype(str)})
    seg["segment_from"] = s0.astype(str).reindex(seg.index).fillna(NOT_REGISTERED)
    counts = pd.crosstab(pd.Categorical(seg["segment_from"], categories=[*order, NOT_REGISTERED]),
                         pd.Categorical(seg["segment_to"], categories=order), dropna=False)
    counts.index.name, counts.columns.name = "from", "to"
    counts.index, counts.columns = counts.index.astype(str), counts.columns.astype(str)
    rates = counts.div(counts.sum(axis=1).where(counts.sum(axis=1) > 0), axis=0)
    v0, v1 = select_vips(f0, t0, vip_rules), select_vips(f1, t1, vip_rules)
    sel0, sel1 = v0.index[v0["selected"]], v1.index[v1["selected"]]
    entered = v1.loc[v1.index.isin(sel1) & ~v1.index.isin(sel0), ["rank", "rule", "reason", "value_12m"]]
    left = v0.loc[v0.index.isin(sel0) & ~v0.index.isin(sel1), ["rank", "rule", "value_12m"]].copy()
    now = v1["reason"].reindex(left.index)
    left["now"] = now.fillna("no longer qualifies (value, visits or an exclusion)")
    left["value_12m_now"] = f1["value_12m"].reindex(left.index).to_numpy()
    return SegmentMigration(t0, t1, counts, rates, entered, left, seg[["segment_from", "segment_to"]])
