"""Per-patient features as of a date, with no look-ahead.

:func:`patient_features` turns a clinic's tables into one row per patient
known on ``as_of``. Everything is computed from rows dated on or before
``as_of`` only, so a back-test at a past date sees exactly what the clinic
knew then:

- visits by ``visit_date <= as_of``;
- appointments by ``booked_at`` and ``scheduled_at`` on or before ``as_of``
  (their outcome is known by then); a cancellation made after ``as_of`` is
  undone, as in :meth:`ClinicData.snapshot`;
- referrals by the *referred* patient's first visit on or before ``as_of``.

The aggregation is vectorised: visits are sorted once by (patient, date) and
every feature is a numpy ``bincount``/``reduceat`` over the sorted codes, so a
million patients with twenty million visits take seconds.

Columns
-------
The frame is indexed by ``patient_id`` (sorted) and has these columns.

=======================  ======================================================
``first_visit_date``     First visit on or before as_of (from visits; the
                         patients table's ``first_visit_date`` when a patient
                         has none).
``last_visit_date``      Latest visit on or before as_of (NaT if none).
``recency_days``         Days from the last visit to as_of.
``frequency``            Distinct visit days (several visits on one day count
                         once).
``visits_12m``           Distinct visit days in the 12 months ending on as_of
                         (after ``as_of - 1 year``).
``monetary_insured``     Sum of ``charge_insured`` (KRW; missing counts as 0).
``monetary_self_pay``    Sum of ``charge_self_pay`` (KRW).
``monetary_total``       Insured plus self-pay.
``value_12m``            Total charges of visits in the 12 months ending on
                         as_of.
``self_pay_share``       ``monetary_self_pay / monetary_total`` (NaN if 0).
``tenure_days``          Days from the first visit to as_of.
``mean_interval_days``   Mean gap between consecutive distinct visit days
                         (NaN with fewer than 2 visit days).
``median_interval_days`` Median of those gaps.
``interval_cv``          Regularity: standard deviation (ddof=0) of the gaps
                         divided by their mean. Low = regular. NaN with fewer
                         than 2 gaps (one gap says nothing about regularity).
``inpatient_days``       Total days in hospital.
``inpatient_stays``      Number of inpatient visits (``visit_type ==
                         'inpatient'`` or ``inpatient_days > 0``).
``per_diem_charge``      Total charges per day of care, a day of care being
                         one outpatient/check-up visit or one inpatient day:
                         ``monetary_total / Σ max(inpatient_days, 1)``.
``n_departments``        Distinct departments visited.
``main_department``      Department of the first visit.
``last_department``      Department of the latest visit.
``appointments``         Appointments booked and scheduled on or before as_of
                         (0 without an appointments table).
``no_show_count``        Of those, how many were ``no_show``.
``no_show_rate``         ``no_show / (attended + no_show)`` (NaN if none).
``referral_count``       Patients who name this patient in ``referred_by`` and
                         had their first visit on or before as_of.
``age``                  Completed years at as_of (from ``birth_date``).
``age_band``             ``0-19``, ``20-39``, ``40-59`` or ``60+`` at as_of:
                         the demo generator's bands, wide enough for small
                         clinics to have few tiny groups.
``sex``, ``region``,     Copied from the patients table.
``referral_source``,
``record_status``
``opted_out_all``        True when the patient has opted out of every channel
                         (KakaoTalk, SMS, email) by as_of: nothing may be sent.
=======================  ======================================================

Patients with no visit on or before ``as_of`` but a ``first_visit_date`` on
or before it (a data problem) are kept with ``frequency == 0``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analysis.ids import arrow_text, id_positions

__all__ = ["patient_features", "patient_features_and_visit_rows", "AGE_BANDS", "FEATURE_COLUMNS",
           "completed_years", "age_band", "day_numbers"]

#: Age bands (label, lowest age) used for ``age_band``.
AGE_BANDS: tuple[tuple[str, int], ...] = (("0-19", 0), ("20-39", 20), ("40-59", 40), ("60+", 60))

#: Columns of :func:`patient_features`, in order.
FEATURE_COLUMNS: tuple[str, ...] = (
    "first_visit_date", "last_visit_date", "recency_days", "frequency", "visits_12m",
    "monetary_insured", "monetary_self_pay", "monetary_total", "value_12m", "self_pay_share",
    "tenure_days", "mean_interval_days", "median_interval_days", "interval_cv",
    "inpatient_days", "inpatient_stays", "per_diem_charge", "n_departments", "main_department",
    "last_department", "appointments", "no_show_count", "no_show_rate", "referral_count",
    "age", "age_band", "sex", "region", "referral_source", "record_status", "opted_out_all",
)

_DAY = np.int64(86_400_000_000_000)


def day_numbers(values) -> np.ndarray:
    """Dates as int64 day numbers since 1970 (NaT becomes a very small number)."""
    return np.asarray(values, dtype="datetime64[ns]").view("int64") // _DAY


def patient_features(clinic, as_of) -> pd.DataFrame:
    """One row of features per patient registered on or before `as_of`.

    Parameters
    ----------
    clinic : ClinicData
        The clinic's tables (``patients`` and ``visits`` are needed;
        ``appointments`` is used when present).
    as_of : str or Timestamp
        The day the features describe (end of that day). Only rows dated on
        or before it are used.

    Returns
    -------
    DataFrame
        Indexed by ``patient_id`` (sorted), columns :data:`FEATURE_COLUMNS`
        as documented in the module docstring; ``attrs["as_of"]`` holds
        the date. The input is not modified.

    Raises
    ------
    ValueError
        If `as_of` is missing or later than the clinic's own ``as_of``.

    See Also
    --------
    crm_analysis.value.segmentation.rfm_scores : RFM quintile scores from these features.
    crm_analysis.value.loyalty.loyalty_score : the hospital loyalty score.
    """
    return patient_features_and_visit_rows(clinic, as_of)[0]


def patient_features_and_visit_rows(clinic, as_of, full: bool = True) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`patient_features` and, per visit row, the feature row of its patient (-1: not counted).

    The row of each visit is what the features were summed by; a caller summing more per patient
    (the lifetime-value model's spend) reuses it instead of hashing twenty million text ids again.
    ``full=False`` makes only ``first_visit_date``, ``last_visit_date``, ``frequency`` and
    ``value_12m`` (the same values, for the same patients), skipping the costly rest.
    """
    if as_of is None:
        raise ValueError("patient_features needs an explicit as_of date, e.g. as_of='2026-10-31'")
    as_of = pd.Timestamp(as_of).normalize()
    if getattr(clinic, "as_of", None) is not None and as_of > clinic.as_of:
        raise ValueError(f"as_of {as_of:%Y-%m-%d} is after the data's own as_of {clinic.as_of:%Y-%m-%d}; "
                         "features cannot describe days the data does not cover")
    end = int(day_numbers([as_of])[0])
    patients = clinic.tables["patients"]
    visits = clinic.tables["visits"]

    # ---- visits on or before as_of, coded by patient
    vdays_all = day_numbers(visits["visit_date"])
    keep = vdays_all <= end
    all_ids = pd.Index(patients["patient_id"].astype("string"))
    id_set = arrow_text(patients["patient_id"])
    vcode = id_positions(visits["patient_id"], id_set, None if keep.all() else keep)
    vdays = vdays_all[keep]
    known = vcode >= 0
    if not known.all():
        vcode, vdays, keep_idx = vcode[known], vdays[known], np.flatnonzero(keep)[known]
    else:
        keep_idx = np.flatnonzero(keep)

    # ---- which patients: first visit on or before as_of (from visits or the patients table)
    fv_table = day_numbers(patients["first_visit_date"])
    fv_table = np.where(patients["first_visit_date"].isna().to_numpy(), np.iinfo(np.int64).max, fv_table)
    has_visit = np.zeros(len(patients), dtype=bool)
    has_visit[vcode] = True
    registered = has_visit | (fv_table <= end)
    reg_pos = np.flatnonzero(registered)
    order_ids = np.argsort(all_ids.to_numpy()[reg_pos].astype(str), kind="stable")
    reg_pos = reg_pos[order_ids]
    n = len(reg_pos)
    remap = np.full(len(patients), -1, dtype=np.int64)
    remap[reg_pos] = np.arange(n)
    code = remap[vcode]
    # at a million patients each visit-level array is about 165 MB: those no longer needed go at once
    del vdays_all, keep, vcode, known, has_visit

    # ---- sums need no sorting: bincount over the patient codes
    nv = len(code)

    def col(name, fill=0.0):
        if name not in visits:
            return np.full(nv, fill)
        arr = visits[name].to_numpy(dtype="float64", na_value=np.nan)
        # to_numpy can hand back a view of the caller's frame: fill a copy, never the input
        arr = arr.copy() if nv == len(arr) else arr[keep_idx]
        return np.nan_to_num(arr, nan=fill, copy=False)

    def bsum(weights=None, mask=None):
        c = code if mask is None else code[mask]
        w = weights if (weights is None or mask is None) else weights[mask]
        return np.bincount(c, weights=w, minlength=n)

    ins, sp = col("charge_insured"), col("charge_self_pay")
    inp_days = col("inpatient_days")
    total = ins + sp
    year_ago = int(day_numbers([as_of - pd.DateOffset(years=1)])[0])
    recent = vdays > year_ago
    m_ins, m_sp = bsum(ins), bsum(sp)
    m_total = m_ins + m_sp
    value_12m = bsum(total, recent)
    inpatient_days = bsum(inp_days)
    if "visit_type" in visits:
        stay = (visits["visit_type"] == "inpatient").to_numpy(dtype=bool, na_value=False)
        is_stay = (stay if nv == len(stay) else stay[keep_idx]) | (inp_days > 0)
    else:
        is_stay = inp_days > 0
    inpatient_stays = bsum(mask=is_stay).astype(np.int64)
    care_days = bsum(np.maximum(inp_days, 1.0))
    del ins, sp, total, inp_days, is_stay

    # ---- sort visits by (patient, day, original order): one packed int64 sort when it fits
    pos = np.arange(nv, dtype=np.int64)
    if nv:
        d0 = vdays.min()
        span = np.int64(vdays.max() - d0 + 1)
        row_bits = max(int(nv).bit_length(), 1)
        if (int(n) * int(span)).bit_length() + row_bits <= 62:
            key = ((code * span + (vdays - d0)) << row_bits) | pos
            key.sort()
            pos = key & ((np.int64(1) << row_bits) - 1)
            key >>= row_bits
            code_s, day = key // span, key % span + d0
            del key
        else:
            pos = np.argsort(code * span + (vdays - d0), kind="stable")
            code_s, day = code[pos], vdays[pos]
    else:
        code_s, day = code, vdays
    del vdays, recent
    new_patient = np.ones(nv, dtype=bool)
    new_patient[1:] = code_s[1:] != code_s[:-1]
    new_day = new_patient.copy()
    new_day[1:] |= day[1:] != day[:-1]
    last_row = np.ones(nv, dtype=bool)
    last_row[:-1] = code_s[1:] != code_s[:-1]
    frequency = np.bincount(code_s[new_day], minlength=n).astype(np.int64)
    visits_12m = np.bincount(code_s[new_day & (day > year_ago)], minlength=n).astype(np.int64)

    first_day = np.full(n, np.iinfo(np.int64).min)
    last_day = np.full(n, np.iinfo(np.int64).min)
    first_day[code_s[new_patient]] = day[new_patient]
    last_day[code_s[last_row]] = day[last_row]

    if full:  # the rest of the features (the lifetime-value model reads only a few)
        # ---- gaps between distinct visit days
        ucode, uday = code_s[new_day], day[new_day]
        same = np.zeros(len(ucode), dtype=bool)
        same[1:] = ucode[1:] == ucode[:-1]
        gap_code = ucode[same]
        igaps = (uday[1:] - uday[:-1])[same[1:]]
        gaps = igaps.astype("float64")
        n_gaps = np.bincount(gap_code, minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            gap_mean = np.bincount(gap_code, weights=gaps, minlength=n) / n_gaps
            gap_sq = np.bincount(gap_code, weights=gaps ** 2, minlength=n) / n_gaps
            gap_sd = np.sqrt(np.maximum(gap_sq - gap_mean ** 2, 0.0))
            interval_cv = np.where(n_gaps >= 2, gap_sd / gap_mean, np.nan)
        gap_mean = np.where(n_gaps >= 1, gap_mean, np.nan)
        width = np.int64(igaps.max() + 1) if len(igaps) else np.int64(1)
        gsorted = np.sort(gap_code * width + igaps) % width  # gaps sorted within patient
        starts = np.concatenate([[0], np.cumsum(n_gaps)[:-1]])
        median = np.full(n, np.nan)
        has = n_gaps >= 1
        lo = starts[has] + (n_gaps[has] - 1) // 2
        hi = starts[has] + n_gaps[has] // 2
        median[has] = (gsorted[lo] + gsorted[hi]) / 2.0
        del ucode, uday, same, gap_code, igaps, gaps, gsorted

        # ---- departments
        if "department" in visits:
            dep = visits["department"].astype("category")
            dcat = dep.cat.categories
            dcode = dep.cat.codes.to_numpy().astype(np.int64)
            dcode = dcode if nv == len(dcode) else dcode[keep_idx]
            valid = dcode >= 0
            if n * len(dcat) <= 200_000_000:
                seen = np.zeros((n, len(dcat)), dtype=bool)
                seen[code[valid], dcode[valid]] = True
                n_departments = seen.sum(axis=1).astype(np.int64)
            else:
                key = np.unique(code[valid] * len(dcat) + dcode[valid])
                n_departments = np.bincount(key // len(dcat), minlength=n).astype(np.int64)
            main_code = np.full(n, -1)
            last_code = np.full(n, -1)
            main_code[code_s[new_patient]] = dcode[pos[new_patient]]
            last_code[code_s[last_row]] = dcode[pos[last_row]]
            main_department = pd.Categorical.from_codes(main_code, categories=dcat)
            last_department = pd.Categorical.from_codes(last_code, categories=dcat)
            del dep, dcode, valid
        else:
            n_departments = np.zeros(n, dtype=np.int64)
            main_department = last_department = pd.Categorical([None] * n)

        del pos, code_s, day, new_patient, new_day, last_row

        # ---- appointments
        appts_n = np.zeros(n, dtype=np.int64)
        no_show = np.zeros(n, dtype=np.int64)
        attended = np.zeros(n, dtype=np.int64)
        if "appointments" in clinic.tables:
            ap = clinic.tables["appointments"]
            limit = as_of + pd.Timedelta(days=1)
            ok = ((ap["booked_at"] < limit) & (ap["scheduled_at"] < limit)).to_numpy(dtype=bool, na_value=False)
            acode = id_positions(ap["patient_id"], id_set, ok)
            acode = np.where(acode >= 0, remap[np.maximum(acode, 0)], -1)
            # a cancellation made after as_of is undone: the appointment was still ahead ("booked") then
            late_cancel = (ap["cancelled_at"] >= limit).to_numpy(dtype=bool, na_value=False)[ok]
            is_ns = (ap["status"] == "no_show").to_numpy(dtype=bool, na_value=False)[ok] & ~late_cancel
            is_att = (ap["status"] == "attended").to_numpy(dtype=bool, na_value=False)[ok] & ~late_cancel
            good = acode >= 0
            appts_n = np.bincount(acode[good], minlength=n).astype(np.int64)
            no_show = np.bincount(acode[good & is_ns], minlength=n).astype(np.int64)
            attended = np.bincount(acode[good & is_att], minlength=n).astype(np.int64)

        # ---- referrals: referred patients first seen on or before as_of
        fv_reg = np.full(len(patients), np.iinfo(np.int64).max)
        fv_reg[reg_pos] = np.where(first_day != np.iinfo(np.int64).min, first_day, fv_table[reg_pos])
        ref = patients["referred_by"]
        rmask = (ref.notna().to_numpy() & (fv_reg <= end))
        rcode = id_positions(ref, id_set, rmask)
        rcode = remap[rcode[rcode >= 0]]
        referral_count = np.bincount(rcode[rcode >= 0], minlength=n).astype(np.int64)

        # ---- demographics at as_of
        preg = patients.iloc[reg_pos]
        age = completed_years(preg["birth_date"], as_of)
        bands = age_band(age)

    fd = np.where(first_day != np.iinfo(np.int64).min, first_day, fv_table[reg_pos])
    ld = last_day.astype("float64")
    ld[last_day == np.iinfo(np.int64).min] = np.nan
    if full:
        with np.errstate(invalid="ignore", divide="ignore"):
            out = {
                "first_visit_date": _to_dates(fd.astype("float64")),
                "last_visit_date": _to_dates(ld),
                "recency_days": end - ld,
                "frequency": frequency,
                "visits_12m": visits_12m,
                "monetary_insured": m_ins,
                "monetary_self_pay": m_sp,
                "monetary_total": m_total,
                "value_12m": value_12m,
                "self_pay_share": np.where(m_total > 0, m_sp / m_total, np.nan),
                "tenure_days": (end - fd).astype(np.int64),
                "mean_interval_days": gap_mean,
                "median_interval_days": median,
                "interval_cv": interval_cv,
                "inpatient_days": inpatient_days.astype(np.int64),
                "inpatient_stays": inpatient_stays,
                "per_diem_charge": np.where(care_days > 0, m_total / care_days, np.nan),
                "n_departments": n_departments,
                "main_department": main_department,
                "last_department": last_department,
                "appointments": appts_n,
                "no_show_count": no_show,
                "no_show_rate": np.where(attended + no_show > 0, no_show / (attended + no_show), np.nan),
                "referral_count": referral_count,
                "age": pd.array(age.to_numpy(), dtype="Int64"),
                "age_band": bands,
            }
        for name in ("sex", "region", "referral_source", "record_status"):
            out[name] = preg[name].array if name in patients else pd.array([pd.NA] * n, dtype="string")
        out["opted_out_all"] = _opted_out_everywhere(preg, as_of)
    else:
        out = {"first_visit_date": _to_dates(fd.astype("float64")), "last_visit_date": _to_dates(ld),
               "frequency": frequency, "value_12m": value_12m}
    ids = patients["patient_id"].array
    if isinstance(ids, pd.arrays.ArrowStringArray):  # taken as Arrow text, not through a million Python strings
        index = pd.Index(ids.take(reg_pos), name="patient_id")
    else:
        index = pd.Index(all_ids.to_numpy()[reg_pos], name="patient_id", dtype=patients["patient_id"].dtype)
    frame = pd.DataFrame(out, index=index)[[c for c in FEATURE_COLUMNS if c in out]]
    frame.attrs["as_of"] = as_of
    visit_rows = np.full(len(visits), -1, dtype=np.int64)
    visit_rows[keep_idx] = code
    return frame, visit_rows


def completed_years(birth: pd.Series, at) -> pd.Series:
    """Age in completed years on `at` (the canonical age of the package).

    Parameters
    ----------
    birth : Series of datetime64
        Birth dates (missing allowed).
    at : Timestamp or Series of datetime64
        The day(s) the age is taken on; a Series must be aligned with `birth`.

    Returns
    -------
    Series
        Whole years (float, NaN where `birth` or `at` is missing), indexed like
        `birth`. Someone born on 2006-11-01 is 19 on 2026-10-31 and 20 on 2026-11-01.
    """
    if not pd.api.types.is_datetime64_dtype(birth):  # to_datetime of dates already parsed only costs time
        birth = pd.to_datetime(birth)
    if isinstance(at, pd.Series):
        at = pd.to_datetime(at)
        year, month, day = at.dt.year, at.dt.month, at.dt.day
    else:
        at = pd.Timestamp(at)
        year, month, day = at.year, at.month, at.day
    before_birthday = (birth.dt.month > month) | ((birth.dt.month == month) & (birth.dt.day > day))
    return (year - birth.dt.year - before_birthday.astype("float64")).astype("float64")


def age_band(age) -> pd.Categorical:
    """The :data:`AGE_BANDS` band of each age in completed years (missing or negative age: missing band).

    Parameters
    ----------
    age : array-like of float
        From :func:`completed_years`.

    Returns
    -------
    Categorical
        Ordered, categories ``0-19``, ``20-39``, ``40-59``, ``60+``.
    """
    age_f = np.asarray(pd.Series(age).to_numpy(dtype="float64", na_value=np.nan), dtype="float64")
    edges = [lo_ for _, lo_ in AGE_BANDS]
    code = np.searchsorted(edges, np.nan_to_num(age_f, nan=-1.0), side="right") - 1
    code = np.where(np.isnan(age_f) | (code < 0), -1, code)
    return pd.Categorical.from_codes(code, categories=[b for b, _ in AGE_BANDS], ordered=True)


def _opted_out_everywhere(patients: pd.DataFrame, as_of: pd.Timestamp) -> np.ndarray:
    """Opted out of every channel on or before `as_of` (an undated opt-out counts), by the campaign rules' test."""
    from crm_analysis.consent import opted_out
    from crm_analysis.contract import CHANNELS

    if not all(f"{c}_opt_out" in patients for c in CHANNELS):
        return np.zeros(len(patients), dtype=bool)
    at = pd.Series(as_of, index=patients.index)
    out = np.ones(len(patients), dtype=bool)
    for c in CHANNELS:
        out &= opted_out(patients, c, at)
    return out


def _to_dates(days: np.ndarray) -> pd.Series:
    """Float day numbers (NaN for missing) back to datetime64[ns]."""
    ns = np.where(np.isnan(days), np.iinfo(np.int64).min, np.nan_to_num(days).astype(np.int64) * _DAY)
    return ns.view("datetime64[ns]")
