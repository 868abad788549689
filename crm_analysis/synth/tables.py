"""Turn the generator's internal arrays into contract tables.

Every table has exactly the contract's columns in contract order and these
dtypes: ids and strings ``string[pyarrow]``; categories ``category`` (the
contract's allowed values, or the catalog's, as categories); dates
``datetime64[ns]`` at midnight; date-times ``datetime64[ns]``; ints ``int64``;
floats ``float64``; bools nullable ``boolean``. Ids are numbered in time order
(patients by first visit, visits by day, appointments by booking time, reminders
and contacts by sending time) and every table is sorted by its key.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crm_analysis.contract import CHANNELS, REFERRAL_SOURCES, TABLES
from crm_analysis.synth.appointments import CANCELLED, STATUSES, Appointments
from crm_analysis.synth.calendar import NEVER, ClinicCalendar
from crm_analysis.synth.campaigns import BOUNCE_TYPES
from crm_analysis.synth.catalog import DEPARTMENTS, REGIONS, SCHEDULES
from crm_analysis.synth.charges import VISIT_TYPES, VisitDetails
from crm_analysis.synth.family import OUTCOMES, Pregnancies
from crm_analysis.synth.population import Patients
from crm_analysis.synth.referrals import STATUSES as RECORD_STATUSES
from crm_analysis.synth.reminders import REPLIES
from crm_analysis.synth.visits import VisitPath

__all__ = ["make_ids", "TableBuilder", "STRING_DTYPE"]

STRING_DTYPE = pd.StringDtype("pyarrow")


def make_ids(prefix: str, n: int, min_width: int = 7) -> pa.Array:
    """``prefix`` + 1-based number zero-padded to ``max(min_width, digits(n))``."""
    width = max(min_width, len(str(max(n, 1))))
    nums = pa.array(np.arange(1, n + 1, dtype=np.int64)).cast(pa.string())
    return pc.binary_join_element_wise(pa.scalar(prefix), pc.utf8_lpad(nums, width, "0"), "")


def _str(values) -> pd.arrays.ArrowStringArray:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return pd.array(values, dtype=STRING_DTYPE)
    return pd.array(np.asarray(values, dtype=object), dtype=STRING_DTYPE)


def _take(ids: pa.Array, idx: np.ndarray) -> pd.arrays.ArrowStringArray:
    """ids[idx] with -1 as missing."""
    idx = np.asarray(idx, dtype=np.int64)
    arr = pa.array(np.where(idx < 0, 0, idx), mask=idx < 0)
    return _str(ids.take(arr))


def _cat(codes, categories) -> pd.Categorical:
    return pd.Categorical.from_codes(np.asarray(codes, dtype=np.int64), categories=list(categories))


def _bool(values, missing=None) -> pd.arrays.BooleanArray:
    values = np.asarray(values, dtype=bool)
    mask = np.zeros(len(values), bool) if missing is None else np.asarray(missing, dtype=bool)
    return pd.arrays.BooleanArray(values & ~mask, mask)


def _frame(name: str, cols: dict) -> pd.DataFrame:
    table = TABLES[name]
    missing = set(table.column_names) ^ set(cols)
    if missing:
        raise AssertionError(f"{name}: columns differ from the contract: {sorted(missing)}")
    return pd.DataFrame({c: cols[c] for c in table.column_names})


class TableBuilder:
    """Builds the contract tables one at a time (so internal arrays can be freed in between).

    Parameters
    ----------
    cal : ClinicCalendar
    pat : Patients
        All patients; their ids follow first-visit order.
    """

    def __init__(self, cal: ClinicCalendar, pat: Patients):
        self.cal = cal
        n = len(pat)
        self.p_order = np.lexsort((np.arange(n), pat.reg_day))
        self.p_rank = np.empty(n, dtype=np.int64)
        self.p_rank[self.p_order] = np.arange(n)
        self.pids = make_ids("P", n)
        self.pid_of = self.pids.take(pa.array(self.p_rank))  # id of each internal patient index
        self.a_rank = None
        self.aids = None

    def patients(self, pat: Patients, referred_by: np.ndarray, status: np.ndarray,
                 english: np.ndarray | None = None) -> pd.DataFrame:
        """The ``patients`` table (`english`: patients whose messages go in English; the others' language is
        missing, i.e. the clinic's default)."""
        o, dt = self.p_order, self.cal.to_datetime64
        cols = {
            "patient_id": _str(self.pids),
            "name": _str(pat.name[o]),
            "sex": _cat(1 - pat.sex[o], ("F", "M")),
            "birth_date": dt(pat.birth_day[o]),
            "phone": _str(pat.phone[o]),
            "email": _str(pat.email[o]),
            "region": _cat(pat.region[o], REGIONS),
            "first_visit_date": dt(pat.reg_day[o]),
            "referral_source": _cat(pat.referral[o], REFERRAL_SOURCES),
            "referred_by": _take(self.pid_of, referred_by[o]),
            "guardian_id": _take(self.pid_of, pat.mother[o]),
            "language": _cat(np.where(english[o], 1, -1) if english is not None else np.full(len(o), -1),
                             ("ko", "en")),
            "record_status": _cat(status[o], RECORD_STATUSES),
        }
        for j, ch in enumerate(CHANNELS):
            c = pat.consent[o, j]
            cols[f"{ch}_consent"] = _bool(c == 1, c < 0)
            cols[f"{ch}_consent_date"] = dt(np.where(c == 1, pat.consent_day[o, j], NEVER))
            od = pat.opt_out_day[o, j]
            cols[f"{ch}_opt_out"] = _bool(od < NEVER)
            cols[f"{ch}_opt_out_date"] = dt(od)
        night = pat.night_consent[o]
        cols["night_ad_consent"] = _bool(night)
        cols["night_ad_consent_date"] = dt(np.where(night, pat.first_consent_day[o].min(axis=1), NEVER))
        return _frame("patients", cols)

    def visits(self, path: VisitPath, det: VisitDetails) -> pd.DataFrame:
        """The ``visits`` table (ids in date order)."""
        o = np.lexsort((path.seq, self.p_rank[path.pid], path.day))
        return _frame("visits", {
            "visit_id": _str(make_ids("V", len(o))),
            "patient_id": _take(self.pid_of, path.pid[o]),
            "visit_date": self.cal.to_datetime64(path.day[o]),
            "department": _cat(det.dept[o], DEPARTMENTS),
            "visit_type": _cat(det.vtype[o], VISIT_TYPES),
            "inpatient_days": det.inpatient_days[o].astype(np.int64),
            "charge_insured": det.charge_insured[o].astype(np.float64),
            "charge_self_pay": det.charge_self_pay[o].astype(np.float64),
        })

    def appointments(self, app: Appointments) -> pd.DataFrame:
        """The ``appointments`` table (ids in booking order)."""
        dt = self.cal.to_datetime64
        t_book = app.booked_day.astype(np.int64) * 1440 + app.booked_minute
        t_sched = app.day.astype(np.int64) * 1440 + app.minute
        o = np.lexsort((self.p_rank[app.pid], t_sched, t_book))
        self.a_rank = np.empty(len(o), dtype=np.int64)
        self.a_rank[o] = np.arange(len(o))
        self.aids = make_ids("A", len(o))
        shown = app.status[o] == CANCELLED
        return _frame("appointments", {
            "appointment_id": _str(self.aids),
            "patient_id": _take(self.pid_of, app.pid[o]),
            "booked_at": dt(app.booked_day[o], app.booked_minute[o]),
            "scheduled_at": dt(app.day[o], app.minute[o]),
            "department": _cat(app.dept[o], DEPARTMENTS),
            "status": _cat(app.status[o], STATUSES),
            "cancelled_at": dt(np.where(shown, app.cancel_day[o], NEVER), np.where(shown, app.cancel_minute[o], 0)),
            # the pilot's allocation, whatever was then sent (an unreachable patient in the reminder arm gets none)
            "reminder_arm": _cat(np.where(app.pilot[o], np.where(app.arm[o], 0, 1), -1), ("reminder", "control")),
        })

    def reminders(self, rem: dict) -> pd.DataFrame:
        """The ``reminders`` table (ids in sending order); call after :meth:`appointments`."""
        o = np.lexsort((rem["channel"], self.a_rank[rem["app"]], rem["t"]))
        t = rem["t"][o]
        return _frame("reminders", {
            "reminder_id": _str(make_ids("R", len(o))),
            "appointment_id": _take(self.aids, self.a_rank[rem["app"][o]]),
            "channel": _cat(rem["channel"][o], CHANNELS),
            "schedule": _cat(rem["step"][o], SCHEDULES),
            "sent_at": self.cal.to_datetime64(t // 1440, t % 1440),
            "delivered": _bool(rem["delivered"][o]),
            "reply": _cat(rem["reply"][o], REPLIES),
        })

    def contacts(self, contacts: dict, engagement: dict, minute: np.ndarray, event_day: np.ndarray,
                 event_campaign: list[str]) -> pd.DataFrame:
        """The ``contacts`` table (ids in sending order)."""
        ev = contacts["event"].astype(np.int64)
        c_day = event_day[ev]
        camp = np.array(event_campaign, dtype=object)[ev] if len(ev) else np.zeros(0, dtype=object)
        camp_code = np.unique(camp, return_inverse=True)[1] if len(ev) else np.zeros(0, np.int64)
        o = np.lexsort((self.p_rank[contacts["pid"]], camp_code, minute, c_day))
        sent = contacts["arm_sent"].astype(bool)[o]
        bounce = contacts["bounce"][o]
        eng = {k: v[o] for k, v in engagement.items()}
        return _frame("contacts", {
            "contact_id": _str(make_ids("C", len(o))),
            "campaign_id": _str(camp[o]),
            "patient_id": _take(self.pid_of, contacts["pid"][o]),
            "channel": _cat(contacts["channel"][o], CHANNELS),
            "sent_at": self.cal.to_datetime64(c_day[o], minute[o]),
            "arm": _cat(np.where(sent, 0, 1), ("sent", "holdout")),
            "delivered": _bool(bounce == 0, ~sent),
            "bounce_type": _cat(np.where(sent, bounce, -1), BOUNCE_TYPES),
            "opened": _bool(eng["opened"] == 1, eng["opened"] < 0),
            "clicked": _bool(eng["clicked"] == 1, eng["clicked"] < 0),
            "replied": _bool(eng["replied"] == 1, eng["replied"] < 0),
        })

    def vaccinations(self, shots: dict) -> pd.DataFrame:
        """The ``vaccinations`` table, in key order (patient, vaccine, dose, day)."""
        o = np.lexsort((shots["day"], shots["dose"], shots["vaccine"].astype(str), self.p_rank[shots["pid"]]))
        return _frame("vaccinations", {
            "patient_id": _take(self.pid_of, shots["pid"][o]),
            "vaccine": _str(shots["vaccine"][o].astype(str)),
            "dose": shots["dose"][o].astype(np.int64),
            "vaccination_date": self.cal.to_datetime64(shots["day"][o]),
        })

    def pregnancies(self, preg: Pregnancies) -> pd.DataFrame:
        """The ``pregnancies`` table."""
        o = np.lexsort((preg.due_day, self.p_rank[preg.mother]))
        return _frame("pregnancies", {
            "patient_id": _take(self.pid_of, preg.mother[o]),
            "due_date": self.cal.to_datetime64(preg.due_day[o]),
            "outcome": _cat(preg.outcome[o], OUTCOMES),
            "outcome_date": self.cal.to_datetime64(preg.outcome_day[o]),
        })
