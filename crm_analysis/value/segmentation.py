"""RFM scores and named patient segments.

:func:`rfm_scores` turns :func:`~crm_analysis.features.patient_features` into
recency, frequency and monetary quintile scores (1-5, 5 = best), and
:func:`assign_segments` names each patient's segment from ordered rules kept in
YAML (``crm_analysis/rules/segments.yaml``; the analyst can pass an edited copy).

Quintiles are equal-count groups of the *ranked* patients, so every score
holds a fifth of the patients even when many share a value (most patients
have one or two visits). Ties are broken deterministically: by the other two
RFM measures (the better one ranks higher), then by ``patient_id``. Recency is
reversed: the most recent visit scores 5.

:func:`read_rules` is the shared loader for the package's rule files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crm_analysis.rule_files import read_rule_yaml

__all__ = ["rfm_scores", "assign_segments", "segment_rules", "segment_summary", "segment_names",
           "read_rules", "value_view", "RULES_DIR"]

#: Folder of the default rule files shipped with the package.
RULES_DIR = Path(__file__).resolve().parents[1] / "rules"

_SCORES = ("r", "f", "m")


def read_rules(rules: str | Path | Mapping | None, default: str) -> dict[str, Any]:
    """Read a rule file: the packaged default, a YAML path, or a dict.

    Parameters
    ----------
    rules : str, Path, Mapping or None
        None for the package's default ``rules/<default>``, a path to a YAML
        file, or the rules themselves as a dict.
    default : str
        File name of the default in ``crm_analysis/rules/``.

    Returns
    -------
    dict
        The parsed rules (a new dict; the input is not modified).

    Raises
    ------
    RuleFileError
        (a ``ValueError``) If the file does not exist, is not valid YAML or is not a YAML mapping
        (:func:`crm_analysis.rule_files.read_rule_yaml`).
    """
    return read_rule_yaml(RULES_DIR / default if rules is None else rules, what=default.removesuffix(".yaml"))


def rfm_scores(features: pd.DataFrame, *, recency: str = "recency_days", frequency: str = "frequency",
               monetary: str = "monetary_total", bins: int = 5) -> pd.DataFrame:
    """Recency, frequency and monetary quintile scores.

    Parameters
    ----------
    features : DataFrame
        From :func:`~crm_analysis.features.patient_features`, indexed by
        ``patient_id``.
    recency, frequency, monetary : str
        Columns to score. Recency is reversed (fewer days = higher score).
        Missing recency (no visit yet) ranks worst; missing frequency or
        monetary counts as 0.
    bins : int
        Number of equal-count groups (5 for quintiles).

    Returns
    -------
    DataFrame
        Same index, columns ``recency_days``, ``frequency``, ``monetary``
        (the scored values), ``r``, ``f``, ``m`` (int 1..bins), ``rfm``
        (text such as ``"545"``) and ``rfm_sum``.

    Raises
    ------
    KeyError
        If a scored column is missing.
    """
    missing = [c for c in (recency, frequency, monetary) if c not in features]
    if missing:
        raise KeyError(f"rfm_scores needs the column(s) {missing}; compute them with "
                       "crm_analysis.features.patient_features")
    n = len(features)
    rec = features[recency].to_numpy(dtype="float64", na_value=np.nan)
    rec = np.where(np.isnan(rec), np.inf, rec)
    freq = np.nan_to_num(features[frequency].to_numpy(dtype="float64", na_value=np.nan))
    mon = np.nan_to_num(features[monetary].to_numpy(dtype="float64", na_value=np.nan))
    id_rank = np.argsort(np.argsort(features.index.to_numpy().astype(str), kind="stable"), kind="stable")
    good = {"r": -rec, "f": freq, "m": mon}        # larger is better for all three
    ties = {"r": ("f", "m"), "f": ("m", "r"), "m": ("f", "r")}
    out = {"recency_days": features[recency].to_numpy(), "frequency": freq, "monetary": mon}
    for s in _SCORES:
        a, b = ties[s]
        # lexsort: last key is primary; ascending, so the best patient comes last; later id ranks lower
        order = np.lexsort((-id_rank, good[b], good[a], good[s]))
        score = np.empty(n, dtype=np.int64)
        score[order] = np.arange(n) * bins // max(n, 1) + 1
        out[s] = score
    frame = pd.DataFrame(out, index=features.index)
    frame["rfm"] = (frame["r"].astype(str) + frame["f"].astype(str) + frame["m"].astype(str))
    frame["rfm_sum"] = frame["r"] + frame["f"] + frame["m"]
    return frame


def segment_rules(rules: str | Path | Mapping | None = None) -> dict[str, Any]:
    """Read and check segment rules (default: ``rules/segments.yaml``).

    Returns
    -------
    dict
        ``{"segments": [...], "catch_all": {...}}`` with each range as a tuple.

    Raises
    ------
    ValueError
        Naming the rule and what to fix when the rules are malformed.
    """
    doc = read_rules(rules, "segments.yaml")
    where = "segment rules"
    unknown = set(doc) - {"segments", "catch_all"}
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; expected 'segments' and 'catch_all'")
    catch = doc.get("catch_all")
    if isinstance(catch, str):
        catch = {"name": catch}
    if not isinstance(catch, Mapping) or not catch.get("name"):
        raise ValueError(f"{where}: 'catch_all' must name the segment for patients no rule matches, "
                         "e.g. catch_all: {name: Others, ko: 기타}")
    segs = doc.get("segments")
    if not isinstance(segs, list) or not segs:
        raise ValueError(f"{where}: 'segments' must be a non-empty list of rules like "
                         "{name: Champions, r: [4, 5], f: [4, 5]}")
    checked, names = [], set()
    for i, rule in enumerate(segs, start=1):
        if not isinstance(rule, Mapping) or not rule.get("name"):
            raise ValueError(f"{where}: rule {i} needs a 'name'")
        name = str(rule["name"])
        if name in names or name == catch["name"]:
            raise ValueError(f"{where}: segment name {name!r} is used twice; names must be unique")
        names.add(name)
        bad = set(rule) - {"name", "ko", "action", *_SCORES}
        if bad:
            raise ValueError(f"{where}: rule {name!r} has unknown key(s) {sorted(bad)}; "
                             "use r, f, m ranges such as r: [4, 5] (and optional ko, action)")
        out = {"name": name, "ko": str(rule.get("ko", name)), "action": _action(rule.get("action", ""), name)}
        for s in _SCORES:
            rng = rule.get(s, [1, 5])
            if (not isinstance(rng, (list, tuple)) or len(rng) != 2
                    or not all(isinstance(v, int) and not isinstance(v, bool) for v in rng)
                    or not 1 <= rng[0] <= rng[1] <= 5):
                raise ValueError(f"{where}: rule {name!r} has {s}: {rng!r}; a range must be two whole "
                                 "scores [low, high] with 1 <= low <= high <= 5")
            out[s] = (int(rng[0]), int(rng[1]))
        checked.append(out)
    catch = {"name": str(catch["name"]), "ko": str(catch.get("ko", catch["name"])),
             "action": _action(catch.get("action", ""), str(catch["name"]))}
    return {"segments": checked, "catch_all": catch}


def _action(value, name: str) -> dict[str, str]:
    """An action text as {"en": ..., "ko": ...} (a plain string serves both languages)."""
    if isinstance(value, Mapping):
        if set(value) - {"en", "ko"}:
            raise ValueError(f"segment rules: rule {name!r} action must be text or {{en: ..., ko: ...}}")
        en = str(value.get("en", value.get("ko", "")))
        return {"en": en, "ko": str(value.get("ko", en))}
    return {"en": str(value), "ko": str(value)}


def segment_names(rules: str | Path | Mapping | None = None, lang: str = "en") -> dict[str, str]:
    """Segment name -> display name in `lang` (``"ko"`` uses each rule's ``ko``), in rule order."""
    parsed = segment_rules(rules)
    key = "ko" if lang == "ko" else "name"
    return {r["name"]: r[key] for r in [*parsed["segments"], parsed["catch_all"]]}


def assign_segments(scores: pd.DataFrame, rules: str | Path | Mapping | None = None) -> pd.DataFrame:
    """Name each patient's segment: the first rule whose score ranges all match.

    Parameters
    ----------
    scores : DataFrame
        From :func:`rfm_scores` (columns ``r``, ``f``, ``m``).
    rules : str, Path, Mapping or None
        Segment rules; None for the packaged ``rules/segments.yaml``.

    Returns
    -------
    DataFrame
        A copy of `scores` with ``segment``: a categorical whose categories
        are the rule names in order, then the catch-all. Every patient has
        exactly one segment.

    Raises
    ------
    ValueError
        If the rules are malformed (see :func:`segment_rules`).
    """
    parsed = segment_rules(rules)
    r, f, m = (scores[c].to_numpy() for c in _SCORES)
    names = [s["name"] for s in parsed["segments"]] + [parsed["catch_all"]["name"]]
    code = np.full(len(scores), len(names) - 1, dtype=np.int64)
    unassigned = np.ones(len(scores), dtype=bool)
    for i, rule in enumerate(parsed["segments"]):
        hit = unassigned.copy()
        for s, v in zip(_SCORES, (r, f, m)):
            lo, hi = rule[s]
            hit &= (v >= lo) & (v <= hi)
        code[hit] = i
        unassigned &= ~hit
    out = scores.copy()
    out["segment"] = pd.Categorical.from_codes(code, categories=names)
    return out


def segment_summary(features: pd.DataFrame, segments: pd.DataFrame, *,
                    rules: str | Path | Mapping | None = None, lang: str = "en") -> pd.DataFrame:
    """Size and value of each segment, in rule order.

    Parameters
    ----------
    features : DataFrame
        From :func:`~crm_analysis.features.patient_features`.
    segments : DataFrame
        From :func:`assign_segments` (same index).
    rules : optional
        The rules used (for display names and actions).
    lang : {"en", "ko"}
        Language of the ``segment_name`` column.

    Returns
    -------
    DataFrame
        One row per segment: ``segment``, ``segment_name``, ``patients``,
        ``share``, ``value_12m_total``, ``value_12m_share``,
        ``value_12m_mean``, ``visits_12m_mean``, ``recency_days_median``,
        ``action``.
    """
    parsed = segment_rules(rules)
    df = features[["value_12m", "visits_12m", "recency_days"]].join(segments["segment"])
    g = df.groupby("segment", observed=False)
    out = pd.DataFrame({
        "patients": g.size(),
        "value_12m_total": g["value_12m"].sum(),
        "value_12m_mean": g["value_12m"].mean(),
        "visits_12m_mean": g["visits_12m"].mean(),
        "recency_days_median": g["recency_days"].median(),
    })
    out.insert(1, "share", out["patients"] / max(len(df), 1))
    total = out["value_12m_total"].sum()
    out.insert(3, "value_12m_share", out["value_12m_total"] / total if total else np.nan)
    info = {r["name"]: r for r in [*parsed["segments"], parsed["catch_all"]]}
    out.index = out.index.astype(str)
    out.insert(0, "segment_name", [info.get(s, {}).get("ko" if lang == "ko" else "name", s) for s in out.index])
    out["action"] = [info[s]["action"]["ko" if lang == "ko" else "en"] if s in info else "" for s in out.index]
    return out.rename_axis("segment").reset_index()


def _label_key(value) -> str:
    import re

    return "seg_" + re.sub(r"[^0-9a-z]+", "_", str(value).lower()).strip("_")


#: Columns of the patient-value tables that count patients.
_COUNT_COLUMNS = frozenset({"patients", "patients_from", "patients_to", "stayed", "referrals"})


def value_view(df: pd.DataFrame, lang: str = "ko"):
    """A display-ready view of a patient-value table: headers and known values in `lang`, readable numbers.

    Headers and values (referral sources, VIP rules, back-test methods, yes/no)
    are looked up as ``seg_<name>`` in ``crm_analysis/labels/segmentation.yaml``;
    shares and errors are shown as percentages, money and counts with thousands
    separators, small means with one decimal, yes/no as 예/아니오 (Yes/No). A plain
    0, 1, 2, ... index is hidden.

    Counts (``patients``, ``patients_from``, ``patients_to``, ``stayed``,
    ``referrals``) show a hidden one as ``<5`` and are marked for the report's
    checks. A table whose counts are not suppressed yet (plain integers: the
    referral and back-test tables) is suppressed here with
    :func:`crm_analysis.privacy.suppress_small_counts`, down each column; with one
    count column, every other number of the row describes its patients and is
    hidden with it. Shares and rates are hidden in any row with a hidden count.

    Parameters
    ----------
    df : DataFrame
    lang : {"ko", "en"}

    Returns
    -------
    pandas.io.formats.style.Styler
    """
    from crm_analysis.cells import escaped_style
    from crm_analysis.i18n import LABELS, check_lang
    from crm_analysis.privacy import suppress_small_counts

    check_lang(lang)
    counts = [c for c in df.columns if str(c) in _COUNT_COLUMNS]
    raw = [c for c in counts if isinstance(df[c].dtype, np.dtype) and pd.api.types.is_integer_dtype(df[c].dtype)]
    if raw:
        others = [c for c in df.columns if c not in counts and pd.api.types.is_numeric_dtype(df[c].dtype)
                  and not pd.api.types.is_bool_dtype(df[c].dtype)]
        df = suppress_small_counts(df, raw, additive="columns",
                                   linked=dict.fromkeys(others, raw[0]) if len(raw) == 1 else None)
    if counts:  # a share beside a hidden count can give it back (stayed / patients before), so it goes too
        gone = df[counts].isna().any(axis=1).to_numpy()
        shares = [c for c in df.columns if any(k in str(c) for k in ("share", "rate"))]
        if gone.any() and shares:
            df = df.assign(**{str(c): df[c].astype("Float64").mask(gone) for c in shares})

    def tr(v):
        entry = LABELS.get(_label_key(v))
        return entry[lang] if entry is not None else v

    out = df.copy()
    for col in out.columns:
        if out[col].dtype == bool or isinstance(out[col].dtype, pd.CategoricalDtype) or out[col].dtype == object:
            out[col] = out[col].map(tr)
    if not isinstance(out.index, pd.RangeIndex):
        out.index = out.index.map(tr)
        out.index.name = tr(out.index.name) if out.index.name else None
    formats = {}
    for col in df.columns:
        name = str(col)
        if pd.api.types.is_bool_dtype(df[col]):
            continue
        if any(k in name for k in ("share", "rate", "error")):
            formats[col] = "{:.1%}"
        elif name == "spearman":
            formats[col] = "{:.2f}"
        elif pd.api.types.is_integer_dtype(df[col]):
            continue  # counts and whole numbers: escaped_style's format_number
        elif pd.api.types.is_float_dtype(df[col]):
            largest = df[col].abs().max()  # NA when every value is hidden
            small = bool(pd.isna(largest) or largest < 1000)
            formats[col] = "{:,.1f}" if small else "{:,.0f}"
    out.columns = [tr(c) for c in out.columns]
    formats = {tr(c): f for c, f in formats.items()}
    styler = escaped_style(out, formats, lang=lang, counts=[tr(c) for c in counts])
    if isinstance(out.index, pd.RangeIndex) and out.index.name is None:
        styler = styler.hide(axis="index")
    return styler
