"""Survival data from visits: one row per gap between visits.

Patients never cancel; they stop coming. The time from a visit to the next one
is therefore the survival time, and the churn model works **per gap**:

- every distinct visit day of a patient starts a gap (several visits on one day
  count once);
- a gap ends at the patient's next visit day (``event = 1``) or, for the latest
  visit, is right-censored at ``as_of`` (``event = 0``, ``is_open = True``);
- ``duration`` is in whole days (next visit day − visit day, or as_of − visit
  day for the open gap).

Per gap rather than per patient because (a) every return is information, so a
patient with 30 visits contributes 30 gaps and a patient with one visit one
gap, (b) the demo generator draws exactly this quantity (see
``docs/demo_clinic.md`` §1), and (c) the *open* gap of each patient is exactly
the state a prediction needs: how long ago the last visit was and what was
known then.

Covariates describe the patient **as known at the visit that starts the gap**
(no look-ahead: a gap starting at visit k uses only visits 1..k and
appointments scheduled on or before visit k):

=====================  ==========================================================
``age_band``           Completed years at the first visit: 0-19, 20-39, 40-59,
                       60+ (``unknown`` without a birth date).
``sex``                ``F``/``M`` (``unknown`` if missing).
``main_department``    Department of the first visit.
``referral``           ``word_of_mouth`` or ``other`` (missing counts as other).
``referral_source``    The patients table's source (missing counts as ``other``).
``self_pay_heavy``     ``yes`` if the first visit's self-pay charge exceeds the
                       insured charge, else ``no``.
``department``         Department of the visit that starts the gap.
``visit_number``       k: distinct visit days up to and including this one.
``visits_band``        ``visit_number`` banded: 1, 2, 3-5, 6-10, 11-20, 21+.
``self_pay_share``     Self-pay share of all charges up to this visit (NaN when
                       nothing was charged).
``self_pay_mix``       ``none`` (share 0 or unknown), ``some`` (< 0.5),
                       ``mostly`` (≥ 0.5).
``prior_no_shows``     No-shows scheduled on or before this visit's day.
``no_show_history``    ``0``, ``1`` or ``2+``.
``prev_gap_days``      Days since the previous visit day (NaN for the first).
``prev_gap_band``      ``1-7``, ``8-30``, ``31-90``, ``91-180``, ``181+``;
                       missing for the first gap (that case is carried by
                       ``visits_band == 1``).
=====================  ==========================================================

The first five are the generator's fixed covariates (:data:`TRUTH_COVARIATES`);
the rest are the richer, time-varying description used for prediction.
Segments (RFM) are *not* gap covariates: a patient's segment is a function of
the patient's whole history up to ``as_of`` and would leak later visits into
earlier gaps. Its ingredients enter instead (frequency as ``visits_band``,
spend mix as ``self_pay_mix``; recency is the survival clock itself), and
segments are used to report curves and churn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analysis.exceptions import CrmAnalysisError, InsufficientDataError

__all__ = ["survival_data", "current_gaps", "sorted_by_patient_and_day", "TRUTH_COVARIATES", "PREDICTION_COVARIATES", "GAP_COLUMNS"]

#: The demo generator's fixed covariates, with their reference level first.
TRUTH_COVARIATES: dict[str, tuple[str, ...]] = {
    "age_band": ("20-39", "0-19", "40-59", "60+"),
    "sex": ("M", "F"),
    "main_department": ("내과",),
    "referral": ("other", "word_of_mouth"),
    "self_pay_heavy": ("no", "yes"),
}

#: The richer prediction specification (reference level first; other levels are taken from the data).
PREDICTION_COVARIATES: dict[str, tuple[str, ...]] = {
    "age_band": ("20-39", "0-19", "40-59", "60+"),
    "sex": ("M", "F"),
    "main_department": ("내과",),
    "department": ("내과",),
    "referral_source": ("word_of_mouth",),
    "self_pay_mix": ("none", "some", "mostly"),
    "visits_band": ("1", "2", "3-5", "6-10", "11-20", "21+"),
    "no_show_history": ("0", "1", "2+"),
    "prev_gap_band": ("8-30", "1-7", "31-90", "91-180", "181+"),
}

#: Columns of :func:`survival_data`, in order.
GAP_COLUMNS: tuple[str, ...] = (
    "patient_id", "start_date", "duration", "event", "is_open", "age_band", "sex", "main_department",
    "referral", "referral_source", "self_pay_heavy", "department", "visit_number", "visits_band",
    "self_pay_share", "self_pay_mix", "prior_no_shows", "no_show_history", "prev_gap_days", "prev_gap_band",
)

_DAY = np.int64(86_400_000_000_000)
_VISIT_BANDS = ((1, "1"), (2, "2"), (3, "3-5"), (6, "6-10"), (11, "11-20"), (21, "21+"))
_GAP_BANDS = ((1, "1-7"), (8, "8-30"), (31, "31-90"), (91, "91-180"), (181, "181+"))
_AGE_BANDS = ((0, "0-19"), (20, "20-39"), (40, "40-59"), (60, "60+"))


def _days(values) -> np.ndarray:
    """Dates as int64 day numbers since 1970 (NaT gives a hugely negative number)."""
    return np.asarray(values, dtype="datetime64[ns]").view("int64") // _DAY


def _band_code(values: np.ndarray, bands) -> np.ndarray:
    edges = np.array([lo for lo, _ in bands])
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(bands) - 1).astype(np.int8)


def _from_codes(codes: np.ndarray, categories: list[str], missing: str) -> pd.Categorical:
    """A categorical from integer codes; code -1 becomes the `missing` label."""
    codes = np.asarray(codes)
    cats = list(categories)
    if (codes < 0).any():
        if missing not in cats:
            cats.append(missing)
        codes = np.where(codes < 0, cats.index(missing), codes)
    dtype = np.int8 if len(cats) < 127 else np.int32
    return pd.Categorical.from_codes(codes.astype(dtype), categories=cats)


def survival_data(clinic, as_of) -> pd.DataFrame:
    """One row per gap between visit days, right-censored at `as_of`.

    Parameters
    ----------
    clinic : ClinicData
        Needs ``patients`` and ``visits``; ``appointments`` (optional) gives
        the no-show history.
    as_of : str or Timestamp
        End of the observation (end of that day). Rows dated later are ignored,
        so the result is the same as on ``clinic.snapshot(as_of)``.

    Returns
    -------
    DataFrame
        Columns :data:`GAP_COLUMNS` (see the module docstring), sorted by
        patient and start date, with a plain index. Each patient with a visit
        has exactly one row with ``is_open`` (the last, censored gap). The
        input is not modified.

    Raises
    ------
    CrmAnalysisError
        If no visit lies on or before `as_of`.

    See Also
    --------
    current_gaps : each patient's open gap (the state predictions start from).
    """
    as_of = pd.Timestamp(as_of).normalize()
    end_day = _days([as_of])[0]
    visits = clinic.visits
    vday = _days(visits["visit_date"])
    keep = vday <= end_day
    if not keep.any():
        raise InsufficientDataError("return_curves",
                                    f"Return curves: no visit on or before {as_of:%Y-%m-%d}, so there is nothing to "
                                    "build survival data from; check as_of and the visits table.",
                                    f"재방문 곡선: {as_of:%Y-%m-%d}까지 내원 기록이 없어 분석할 수 없습니다.")
    patients = clinic.patients
    p_code, v_code, pid_uniques = _patient_codes(patients["patient_id"], visits["patient_id"])
    v_code = v_code[keep]
    vday = vday[keep]
    dept_cat = visits["department"].astype("category")
    dept_names = [str(c) for c in dept_cat.cat.categories]
    dept = dept_cat.cat.codes.to_numpy().astype(np.int32)[keep]
    ins = np.nan_to_num(visits["charge_insured"].to_numpy(dtype=np.float64, na_value=np.nan)[keep])
    selfp = np.nan_to_num(visits["charge_self_pay"].to_numpy(dtype=np.float64, na_value=np.nan)[keep])
    # sort visits by (patient, day, original order) and collapse to visit days
    order, v_code, vday = sorted_by_patient_and_day(v_code, vday)
    dept, ins, selfp = dept[order], ins[order], selfp[order]
    new_day = np.ones(len(vday), dtype=bool)
    new_day[1:] = (v_code[1:] != v_code[:-1]) | (vday[1:] != vday[:-1])
    starts = np.flatnonzero(new_day)
    g_code, g_day, g_dept = v_code[starts], vday[starts], dept[starts]
    g_ins, g_self = np.add.reduceat(ins, starts), np.add.reduceat(selfp, starts)
    del v_code, vday, dept, ins, selfp, order, new_day, keep  # free the visit-level arrays early
    n = len(starts)
    first = np.ones(n, dtype=bool)
    first[1:] = g_code[1:] != g_code[:-1]
    last = np.ones(n, dtype=bool)
    last[:-1] = g_code[1:] != g_code[:-1]
    next_day = np.empty(n, dtype=np.int64)
    next_day[:-1] = g_day[1:]
    next_day[last] = end_day
    duration = next_day - g_day
    del next_day
    group_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    visit_number = np.arange(n) - group_start + 1
    prev_gap = np.full(n, np.nan)
    prev_gap[~first] = (g_day[1:] - g_day[:-1])[~first[1:]]
    cum_ins = _cum_within(g_ins, group_start)
    cum_self = _cum_within(g_self, group_start)
    total = cum_ins + cum_self
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, cum_self / total, np.nan)
    mix = np.where(~(share > 0), 0, np.where(share < 0.5, 1, 2)).astype(np.int8)
    del cum_ins, cum_self, total, group_start  # gap-level arrays (20M rows at a million patients): freed early

    # fixed covariates: per patient (from the first visit day and the patients table), then taken per gap
    first_idx = np.flatnonzero(first)
    pat_code = g_code[first_idx]
    p_row = np.full(len(pid_uniques), -1, dtype=np.int64)
    p_row[p_code] = np.arange(len(patients))
    rows = p_row[pat_code]
    has_row = rows >= 0
    rows_safe = np.where(has_row, rows, 0)
    per_gap = np.repeat(np.arange(len(first_idx)), np.diff(np.append(first_idx, n)))

    def from_patients(col: str, missing: str) -> pd.Categorical:
        cat = patients[col].astype("category")
        codes = np.where(has_row, cat.cat.codes.to_numpy().astype(np.int32)[rows_safe], -1)
        return _from_codes(codes, [str(c) for c in cat.cat.categories], missing)

    birth = _days(patients["birth_date"])[rows_safe]
    age = _completed_years(birth, g_day[first_idx])
    age_ok = has_row & (birth > -10**9) & (age >= 0)
    age_code = np.where(age_ok, _band_code(np.where(age_ok, age, 0), _AGE_BANDS), -1)
    source = from_patients("referral_source", "other")
    wom = np.asarray(source.categories == "word_of_mouth")[source.codes]
    heavy = g_self[first_idx] > g_ins[first_idx]
    del g_ins, g_self
    no_shows = _prior_no_shows(clinic, pid_uniques, g_code, g_day, end_day)
    fixed = {
        "age_band": _from_codes(age_code, [b for _, b in _AGE_BANDS], "unknown"),
        "sex": from_patients("sex", "unknown"),
        "main_department": _from_codes(g_dept[first_idx], dept_names, "unknown"),
        "referral": pd.Categorical.from_codes(wom.astype(np.int8), ["other", "word_of_mouth"]),
        "referral_source": source,
        "self_pay_heavy": pd.Categorical.from_codes(heavy.astype(np.int8), ["no", "yes"]),
    }
    prev_code = np.where(first, -1, _band_code(np.nan_to_num(prev_gap, nan=1), _GAP_BANDS))
    ns_code = np.minimum(no_shows, 2)
    out = pd.DataFrame({
        "patient_id": pd.array(pid_uniques, dtype="string[pyarrow]").take(g_code),
        "start_date": (g_day * _DAY).astype("datetime64[ns]"),
        "duration": duration.astype(np.int64, copy=False),
        "event": (~last).astype(np.int8),
        "is_open": last,
        **{name: cat.take(per_gap) for name, cat in fixed.items()},
        "department": _from_codes(g_dept, dept_names, "unknown"),
        # counts and whole days fit 32 bits exactly: half the memory of 20M gap rows at a million patients
        "visit_number": visit_number.astype(np.int32),
        "visits_band": pd.Categorical.from_codes(_band_code(visit_number, _VISIT_BANDS), [b for _, b in _VISIT_BANDS]),
        "self_pay_share": share,
        "self_pay_mix": pd.Categorical.from_codes(mix, ["none", "some", "mostly"]),
        "prior_no_shows": no_shows.astype(np.int32),
        "no_show_history": pd.Categorical.from_codes(ns_code.astype(np.int8), ["0", "1", "2+"]),
        "prev_gap_days": prev_gap.astype(np.float32),
        "prev_gap_band": pd.Categorical.from_codes(prev_code.astype(np.int8), [b for _, b in _GAP_BANDS]),
    }, copy=False)
    return out


def sorted_by_patient_and_day(code: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The order of rows by (patient code, day, row) and the codes and days in that order.

    ``np.lexsort((rows, day, code))``, as one sort of packed int64 keys when they fit (the
    usual case: a million patients over ten years and twenty million rows take 57 bits).
    """
    n = len(day)
    if n:
        low, span = int(day.min()), int(day.max()) - int(day.min()) + 1
        row_bits = max(n.bit_length(), 1)
        if ((int(code.max()) + 2) * span).bit_length() + row_bits <= 62:
            key = (((code.astype(np.int64) + 1) * span + (day - low)) << row_bits) | np.arange(n, dtype=np.int64)
            key.sort()
            order = key & ((1 << row_bits) - 1)
            key >>= row_bits
            return order, key // span - 1, key % span + low
    order = np.lexsort((np.arange(n), day, code))
    return order, code[order], day[order]


def _patient_codes(patient_ids: pd.Series, visit_ids: pd.Series) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """Codes of the patients' and the visits' ids, numbered in order of first appearance (patients first), and
    the ids: ``pd.factorize`` of the two columns one after the other.

    When every patient has an id of their own, a patient's code is their row and a visit's code is found by
    :func:`~crm_analysis.ids.id_positions` (much faster than factorizing twenty million text ids); the
    visits' ids missing from the patients table follow in order of first appearance, as factorize numbers them.
    """
    from crm_analysis.ids import arrow_text, id_positions

    p_codes, p_uniques = pd.factorize(patient_ids.astype("string[pyarrow]"))
    if len(p_uniques) != len(patient_ids):  # a repeated or missing id: factorize numbers them its own way
        codes, uniques = pd.factorize(pd.concat([patient_ids, visit_ids], ignore_index=True).astype("string[pyarrow]"))
        return codes[: len(patient_ids)], codes[len(patient_ids):], uniques
    v_codes = id_positions(visit_ids, arrow_text(patient_ids))
    other = (v_codes < 0) & visit_ids.notna().to_numpy()
    if other.any():
        extra_codes, extra = pd.factorize(visit_ids[other].astype("string[pyarrow]"))
        v_codes[other] = len(p_uniques) + extra_codes
        p_uniques = p_uniques.append(extra)
    return p_codes, v_codes, p_uniques


def current_gaps(gaps: pd.DataFrame) -> pd.DataFrame:
    """Each patient's open gap: the state a prediction starts from.

    Parameters
    ----------
    gaps : DataFrame
        From :func:`survival_data`.

    Returns
    -------
    DataFrame
        The rows with ``is_open``, indexed by ``patient_id``; ``duration`` is
        then the days elapsed since the last visit (also copied to
        ``elapsed_days``).
    """
    cur = gaps.loc[gaps["is_open"].to_numpy()].set_index("patient_id")
    return cur.assign(elapsed_days=cur["duration"].to_numpy())


def _cum_within(values: np.ndarray, group_start: np.ndarray) -> np.ndarray:
    """Cumulative sum of `values` restarting at each group start."""
    c = np.cumsum(values)
    before = np.concatenate([[0.0], c[:-1]])[group_start]
    return c - before


def _completed_years(birth_day: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Completed years of age on `day` for people born on `birth_day` (day numbers)."""
    b = pd.DatetimeIndex((birth_day * _DAY).astype("datetime64[ns]"))
    d = pd.DatetimeIndex((day * _DAY).astype("datetime64[ns]"))
    had_birthday = (d.month * 100 + d.day) >= (b.month * 100 + b.day)
    return np.asarray(d.year - b.year - 1 + had_birthday.astype(np.int64), dtype=np.int64)


def _prior_no_shows(clinic, pid_uniques, g_code, g_day, end_day) -> np.ndarray:
    """No-shows of the patient scheduled on or before each gap's start day, as known on as_of."""
    from crm_analysis.ids import arrow_text, id_positions

    out = np.zeros(len(g_code), dtype=np.int64)
    if not clinic.has("appointments"):
        return out
    appts = clinic.appointments
    ns = (appts["status"] == "no_show").to_numpy(dtype=bool, na_value=False)
    # as on a snapshot at as_of: a booking made later, or one cancelled later, was no no-show then
    for col in ("booked_at", "cancelled_at"):
        if col in appts.columns:
            ns &= ~(_days(appts[col]) > end_day)
    if not ns.any():
        return out
    sday = _days(appts["scheduled_at"].to_numpy()[ns])
    # position among the (distinct) ids by an Arrow look-up: get_indexer on Arrow text is many times slower
    code = id_positions(appts["patient_id"], arrow_text(pd.Series(pid_uniques)), ns)
    ok = (code >= 0) & (sday <= end_day)
    code, sday = code[ok], sday[ok]
    # merge-count: for each gap, the number of no-shows of the same patient with day <= gap day
    base = sday.min() if len(sday) else 0
    key_ns = np.sort(code.astype(np.int64) * (1 << 32) + (sday - base))
    key_gap = g_code.astype(np.int64) * (1 << 32) + np.clip(g_day - base, -1, None)
    upto = np.searchsorted(key_ns, key_gap, side="right")
    before_patient = np.searchsorted(key_ns, g_code.astype(np.int64) * (1 << 32) - 1, side="right")
    return (upto - before_patient).astype(np.int64)
