"""Everything a patient card needs, computed once per (clinic, as_of).

A card shows analytics (segment, VIP status, return probability, lifetime
value) that come from models fitted on *all* patients. :class:`CardContext`
builds them once, vectorised, together with the phone index and per-patient
row indexes of the history tables, so that each lookup afterwards is a cheap
slice (milliseconds, even with a million patients):

=====================  ========================================================
``phones``             :class:`~crm_analysis.profile.index.PhoneIndex`.
``features``           :func:`~crm_analysis.features.patient_features`.
``segments``           :func:`~crm_analysis.value.segmentation.rfm_scores` +
                       :func:`~crm_analysis.value.segmentation.assign_segments`.
``vips``               :func:`~crm_analysis.value.vip.select_vips` (with reasons).
``churn``              :func:`~crm_analysis.churn.recall_table` from a fitted
                       :class:`~crm_analysis.churn.ChurnModel`: return
                       probability, overdue ratio, recall candidate.
``clv``                :class:`~crm_analysis.value.clv.CLVModel` expected value of
                       the next 12 months.
=====================  ========================================================

An analysis that cannot be computed (a module missing, too little data, an
error) is left out and its reason kept in ``notes``: the card then shows the
field as unavailable, never a made-up value. The data is first cut to
``as_of`` (:meth:`ClinicData.snapshot`), so nothing recorded later is used.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Mapping

import numpy as np
import pandas as pd

from crm_analysis.exceptions import CrmAnalysisWarning
from crm_analysis.profile.index import PhoneIndex

__all__ = ["CardContext", "ANALYSES", "next_vaccinations"]

#: The optional analyses a context can hold, in display order.
ANALYSES: tuple[str, ...] = ("features", "segments", "vips", "churn", "clv")

#: History tables indexed per patient, and the column giving the patient.
_HISTORY = {"visits": "patient_id", "appointments": "patient_id", "contacts": "patient_id",
            "pregnancies": "patient_id"}


class _Rows:
    """Rows of one table grouped by patient: a stable sort by patient position plus group starts.

    Built column-wise once (an Arrow hash lookup and one argsort); :meth:`take`
    then returns one patient's rows by slicing, without scanning the table.
    """

    def __init__(self, table: pd.DataFrame, codes: np.ndarray, n_patients: int):
        order = np.argsort(codes, kind="stable")
        sorted_codes = codes[order]
        self.table = table
        self.order = order
        self.starts = np.searchsorted(sorted_codes, np.arange(n_patients + 1), side="left")

    def take(self, pos: int) -> pd.DataFrame:
        """The rows of the patient at row `pos` of the patients table, in table order."""
        return self.table.iloc[self.order[self.starts[pos]: self.starts[pos + 1]]]


def _positions(values: pd.Series, id_set) -> np.ndarray:
    """Position of each value in `id_set` (an Arrow array of patient ids); -1 if absent or missing."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(values.astype("string[pyarrow]").array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    codes = pc.index_in(arr, value_set=id_set.cast(arr.type)).fill_null(-1)
    return codes.to_numpy(zero_copy_only=False).astype(np.int64)


def _hashed(index: pd.Index) -> pd.Index:
    """`index` as plain Python strings with its hash table built: ``get_loc`` is then a dictionary probe.

    (An Arrow-string index answers ``get_indexer`` by converting itself each time: ~1 s on a million ids.)
    """
    out = pd.Index(index.astype(str).to_numpy(dtype=object), name=index.name)
    if len(out):
        out.get_loc(out[0])
    return out


def _position(index: pd.Index, key: str) -> int | None:
    """Row of `key` in a unique `index` (None if absent)."""
    try:
        pos = index.get_loc(key)
    except KeyError:
        return None
    return int(pos) if isinstance(pos, (int, np.integer)) else None


def _day_numbers(values) -> np.ndarray:
    return np.asarray(values, dtype="datetime64[D]").astype(np.int64)


def _with_outcomes(contacts: pd.DataFrame, contact_codes: np.ndarray, visits: pd.DataFrame,
                   visit_codes: np.ndarray, as_of: pd.Timestamp, window: int) -> pd.DataFrame:
    """The contacts log with each contact's outcome: ``returned`` and ``revenue``.

    The outcome is defined as in :func:`~crm_analysis.campaigns.evaluation.contact_outcomes`:
    a visit in ``(sent day, sent day + window]`` and the charges of the visits
    in that window, known only once the window has closed by `as_of` (missing
    before). Computed for every contact at once: visits are sorted by
    (patient, day) into one integer key, and each window is two binary searches
    into it plus a difference of cumulative charges.
    """
    vday = _day_numbers(visits["visit_date"].to_numpy())
    charge = (visits["charge_insured"].fillna(0).to_numpy(dtype="float64")
              + visits["charge_self_pay"].fillna(0).to_numpy(dtype="float64"))
    keep = visit_codes >= 0
    cday = _day_numbers(contacts["sent_at"].to_numpy("datetime64[ns]"))
    lo_day = int(min(vday.min(initial=0), cday.min(initial=0)))
    span = np.int64(max(vday.max(initial=0), cday.max(initial=0) + window) - lo_day + 2)
    vkey = visit_codes[keep] * span + (vday[keep] - lo_day)
    order = np.argsort(vkey, kind="stable")
    vkey = vkey[order]
    cum = np.concatenate([[0.0], np.cumsum(charge[keep][order])])
    code = np.maximum(contact_codes, 0)
    start = np.searchsorted(vkey, code * span + (cday + 1 - lo_day), side="left")
    stop = np.searchsorted(vkey, code * span + (cday + window - lo_day), side="right")
    closed = (cday + window <= _day_numbers([as_of.to_datetime64()])[0]) & (contact_codes >= 0)
    returned = pd.array(stop > start, dtype="boolean")
    returned[~closed] = pd.NA
    revenue = np.where(closed, (cum[stop] - cum[start]).round(2), np.nan)
    return contacts.assign(returned=returned, revenue=revenue)


def next_vaccinations(children: pd.DataFrame, as_of: pd.Timestamp,
                       given: pd.DataFrame | None = None) -> pd.DataFrame:
    """Children (patients with a guardian) with their next doses by the national schedule.

    The next doses are those whose recommended window starts first among the
    windows not yet closed on `as_of` (one dose may already be due), leaving
    out the doses `given` (the ``vaccinations`` table, when the data has one)
    records by `as_of`. Adds ``due_from``, ``due_to``, ``vaccines_ko``,
    ``vaccines_en`` (missing when nothing is left or the birth date is unknown).
    """
    from crm_analysis.schedules import vaccination_due

    columns = ["patient_id", "birth_date", *(["sex"] if "sex" in children else [])]
    base = children[columns].assign(patient_id=children["patient_id"].astype(str))
    born = base.loc[base["birth_date"].notna().to_numpy()]
    cols = ["due_from", "due_to", "vaccines_ko", "vaccines_en"]
    if born.empty:
        return children.assign(**{c: None for c in cols})
    if given is not None:
        given = given.loc[(given["vaccination_date"] < as_of + pd.Timedelta(days=1)).fillna(False).to_numpy()]
    due = vaccination_due(born, born["birth_date"].min(), as_of + pd.DateOffset(years=13), days_before=0,
                          given=given)
    due = due.loc[((due["kind"] == "window") & (due["due_to"] >= as_of)).to_numpy()]
    first = due.groupby("patient_id")["due_from"].transform("min")
    nxt = due.loc[(due["due_from"] == first).to_numpy()]
    agg = nxt.groupby("patient_id", sort=False).agg(due_from=("due_from", "min"), due_to=("due_to", "max"),
                                                     vaccines_ko=("ko", ", ".join), vaccines_en=("en", ", ".join))
    found = agg.reindex(base["patient_id"].to_numpy())
    return children.assign(**{c: found[c].to_numpy() for c in cols})


def _consent_flags(patients: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Per patient (row position) and channel: ``<channel>_valid`` and ``<channel>_opted_out`` at the end of as_of.

    Valid and opted-out follow the campaign rules
    (:func:`~crm_analysis.consent.valid_consent`: given, dated,
    under 2 years old, no opt-out).
    """
    from crm_analysis.consent import opted_out, valid_consent
    from crm_analysis.contract import CHANNELS

    at = pd.Series(np.full(len(patients), as_of + pd.Timedelta(hours=23, minutes=59)), index=patients.index)
    out = {}
    for ch in CHANNELS:
        out[f"{ch}_valid"] = valid_consent(patients, ch, at)
        out[f"{ch}_opted_out"] = opted_out(patients, ch, at)
    return pd.DataFrame(out)


class CardContext:
    """The analytics and indexes behind patient cards, for one clinic at one date.

    Build it with :meth:`build`; then :func:`~crm_analysis.profile.patient_card`
    (``context=...``) or :meth:`find` answer lookups cheaply.

    Attributes
    ----------
    clinic : ClinicData
        The data cut to ``as_of``.
    as_of : Timestamp
    patients : DataFrame
        ``clinic.patients`` (row positions are what the indexes return).
    consent : DataFrame
        Aligned with ``patients``: ``<channel>_valid`` and ``<channel>_opted_out``.
    phones : PhoneIndex
    ids : Index
        ``patient_id`` of each patients row (hashed, for lookups by id).
    features, segments, vips, churn : DataFrame or None
        Indexed by ``patient_id``; None when unavailable (see ``notes``).
    clv : Series or None
        Expected value (KRW) of the next ``clv_horizon_days``.
    notes : dict of str to str
        Analysis name → why it is unavailable.
    settings : dict
        Rules and horizons used (churn horizon, VIP rules, segment rules).
    timings : dict of str to float
        Seconds each part of the build took.
    """

    def __init__(self, **parts: Any):
        self.__dict__.update(parts)

    @classmethod
    def build(cls, clinic, as_of, *, churn: bool = True, clv: bool = True,
              segment_rules: str | Mapping | None = None, vip_rules: str | Mapping | None = None,
              churn_rules: str | Mapping | None = None, clv_horizon_days: int = 365,
              campaign_window_days: int = 30) -> "CardContext":
        """Compute everything once for `clinic` at `as_of`.

        Parameters
        ----------
        clinic : ClinicData
        as_of : str or Timestamp
            The day the cards describe (end of that day). Required: never today by default.
        churn, clv : bool
            Fit the churn model (return probability, overdue ratio) and the
            lifetime-value model. They take the longest; switch them off for a
            quick phone-and-history card (the card then says they were not computed).
        segment_rules, vip_rules, churn_rules : path, mapping or None
            Overrides of the packaged rules, passed to the analyses.
        clv_horizon_days : int
            Horizon of the expected lifetime value (default the next 12 months).
        campaign_window_days : int
            A campaign's outcome is a visit within this many days of the message
            (as in :func:`~crm_analysis.campaigns.evaluate_campaigns`).

        Returns
        -------
        CardContext

        Raises
        ------
        ValueError
            If `as_of` is missing or after the data's own ``as_of``.
        """
        if as_of is None:
            raise ValueError("a patient card needs an explicit as_of date, e.g. as_of='2026-10-31'")
        as_of = pd.Timestamp(as_of).normalize()
        timings: dict[str, float] = {}
        t = time.perf_counter()
        if clinic.as_of is None or as_of < clinic.as_of:
            clinic = clinic.snapshot(as_of)
        elif as_of > clinic.as_of:
            raise ValueError(f"as_of {as_of:%Y-%m-%d} is after the data's own as_of {clinic.as_of:%Y-%m-%d}; "
                             "a card cannot describe days the data does not cover")
        timings["snapshot"] = time.perf_counter() - t

        t = time.perf_counter()
        patients = clinic.tables["patients"]
        phones = PhoneIndex.from_patients(patients)
        ids = pd.Index(patients["patient_id"].astype("string[pyarrow]"), name="patient_id")
        id_lookup = _hashed(ids)
        timings["phone_index"] = time.perf_counter() - t

        t = time.perf_counter()
        import pyarrow as pa

        id_set = pa.array(ids.array)
        if isinstance(id_set, pa.ChunkedArray):
            id_set = id_set.combine_chunks()
        notes: dict[str, str] = {}
        settings: dict[str, Any] = {"clv_horizon_days": int(clv_horizon_days),
                                    "campaign_window_days": int(campaign_window_days)}
        tables = {name: clinic.tables[name] for name in _HISTORY if name in clinic.tables}
        children = patients.loc[patients["guardian_id"].notna().to_numpy()]
        try:
            children = next_vaccinations(children, as_of, clinic.tables.get("vaccinations"))
        except Exception as err:  # noqa: BLE001 - the card then lists the children without vaccinations
            notes["vaccinations"] = f"{type(err).__name__}: {err}"
        tables["children"] = children
        codes = {name: _positions(table[_HISTORY.get(name, "guardian_id")], id_set) for name, table in tables.items()}
        if "contacts" in tables:
            try:
                tables["contacts"] = _with_outcomes(tables["contacts"], codes["contacts"], tables["visits"],
                                                    codes["visits"], as_of, campaign_window_days)
            except Exception as err:  # noqa: BLE001 - the card still lists the campaigns, without outcomes
                notes["campaign_outcomes"] = f"{type(err).__name__}: {err}"
        consent = _consent_flags(patients, as_of)
        history = {name: _Rows(table, codes[name], len(patients)) for name, table in tables.items()}
        timings["history_index"] = time.perf_counter() - t

        parts: dict[str, Any] = {name: None for name in ANALYSES}

        def attempt(name: str, compute) -> None:
            t0 = time.perf_counter()
            try:
                parts[name] = compute()
            except Exception as err:  # noqa: BLE001 - an optional analysis failing must not stop the card
                notes[name] = f"{type(err).__name__}: {err}"
                warnings.warn(f"patient cards: {name} unavailable ({notes[name]})", CrmAnalysisWarning, stacklevel=3)
            timings[name] = time.perf_counter() - t0

        def features():
            from crm_analysis.features import patient_features

            return patient_features(clinic, as_of)

        attempt("features", features)
        feats = parts["features"]

        def segments():
            from crm_analysis.value.segmentation import assign_segments, rfm_scores, segment_rules as read_segment_rules

            settings["segment_rules"] = read_segment_rules(segment_rules)
            return assign_segments(rfm_scores(feats), segment_rules)

        def vips():
            from crm_analysis.value.vip import select_vips

            return select_vips(feats, as_of, vip_rules)

        if feats is not None:
            attempt("segments", segments)
            attempt("vips", vips)
        else:
            notes["segments"] = notes["vips"] = "needs the patient features, which are unavailable"

        def churn_table():
            from crm_analysis.churn import ChurnModel, load_churn_rules, recall_table

            rules = load_churn_rules(churn_rules)
            settings["return_horizon_days"] = int(rules["recall"]["horizon_days"])
            settings["min_overdue_ratio"] = float(rules["recall"]["min_overdue_ratio"])
            model = ChurnModel(rules=churn_rules).fit(clinic, as_of)
            seg = parts["segments"]["segment"] if parts["segments"] is not None else None
            return recall_table(clinic, as_of, model=model, segments=seg, rules=churn_rules)

        if churn:
            attempt("churn", churn_table)
        else:
            notes["churn"] = "not computed: switched off for this lookup"

        def lifetime_value():
            from crm_analysis.value.clv import CLVModel

            return CLVModel(horizon_days=clv_horizon_days).fit(clinic, as_of).predict_value()

        if clv:
            attempt("clv", lifetime_value)
        else:
            notes["clv"] = "not computed: switched off for this lookup"

        # one hashed id index per analysis, so a lookup is a dictionary probe, not a scan
        positions = {name: _hashed(frame.index) for name, frame in parts.items() if frame is not None}
        return cls(clinic=clinic, as_of=as_of, patients=patients, ids=id_lookup, positions=positions,
                   phones=phones, history=history,
                   consent=consent, notes=notes, settings=settings, timings=timings, **parts)

    # ------------------------------------------------------------------ lookups
    def rows_for_phone(self, phone: object) -> np.ndarray:
        """Patients-table row positions of everyone with `phone` (any common spelling)."""
        return self.phones.rows(phone)

    def rows_for_id(self, patient_id: str) -> np.ndarray:
        """The patients-table row position of `patient_id` (empty if unknown)."""
        pos = _position(self.ids, str(patient_id))
        return np.array([] if pos is None else [pos], dtype=np.int64)

    def rows(self, table: str, pos: int) -> pd.DataFrame | None:
        """One patient's rows of a history table (None when the clinic lacks the table)."""
        index = self.history.get(table)
        return None if index is None else index.take(pos)

    def lookup(self, name: str, patient_id: str):
        """The row of analysis `name` for `patient_id`: a Series (or scalar for ``clv``), or None."""
        frame = getattr(self, name)
        if frame is None:
            return None
        i = _position(self.positions[name], str(patient_id))
        return None if i is None else frame.iloc[i]

    def __repr__(self) -> str:
        have = [n for n in ANALYSES if getattr(self, n) is not None]
        return (f"CardContext(as_of={self.as_of:%Y-%m-%d}, patients={len(self.patients):,}, "
                f"analyses={have}, unavailable={sorted(self.notes)})")
