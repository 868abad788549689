"""The clinic calendar: which days are open, appointment slots, day arithmetic.

Internally the generator counts time in whole days from ``start`` (day 0) and
in minutes within a day. The clinic is closed on Sundays and Korean public
holidays, open 09:00–18:00 on weekdays (lunch 13:00–14:00) and 09:00–13:00 on
Saturdays. Appointments sit on 10-minute slots.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crm_analysis.synth.catalog import HOLIDAYS, RECURRING_HOLIDAYS

__all__ = ["ClinicCalendar", "NEVER", "DAY_NS", "MINUTE_NS"]

#: Day index meaning "never" (a dropout's next visit).
NEVER: int = 2**40
DAY_NS: int = 86_400 * 10**9
MINUTE_NS: int = 60 * 10**9

_WEEKDAY_SLOTS = np.array([9 * 60 + 10 * i for i in range(24)] + [14 * 60 + 10 * i for i in range(24)])
_SATURDAY_SLOTS = np.array([9 * 60 + 10 * i for i in range(24)])


@dataclass(frozen=True)
class ClinicCalendar:
    """Open days and slots between ``start - lookback`` and ``end + lookahead``.

    Parameters
    ----------
    start, end : str
        First and last day of the data window (ISO dates, inclusive).
    lookback, lookahead : int
        Days before ``start`` and after ``end`` the calendar also covers.
    """

    start: str
    end: str
    lookback: int = 400
    lookahead: int = 500

    def __post_init__(self) -> None:
        s = np.datetime64(self.start, "D")
        e = np.datetime64(self.end, "D")
        if e <= s:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        days = np.arange(s - self.lookback, e + self.lookahead + 1, dtype="datetime64[D]")
        weekday = (days.astype(np.int64) + 3) % 7  # Monday = 0
        month = days.astype("datetime64[M]").astype(np.int64) % 12 + 1
        dom = (days - days.astype("datetime64[M]")).astype(np.int64) + 1
        closed = weekday == 6
        for m, d in RECURRING_HOLIDAYS:
            closed |= (month == m) & (dom == d)
        closed |= np.isin(days, np.array(HOLIDAYS, dtype="datetime64[D]"))
        open_ = ~closed
        n = len(days)
        idx = np.arange(n)
        # next open index >= i (n when none)
        nxt = np.where(open_, idx, n)
        nxt = np.minimum.accumulate(nxt[::-1])[::-1]
        prv = np.where(open_, idx, -1)
        prv = np.maximum.accumulate(prv)
        object.__setattr__(self, "_origin", s)
        object.__setattr__(self, "_offset", self.lookback)
        object.__setattr__(self, "_open", open_)
        object.__setattr__(self, "_next", nxt - self.lookback)
        object.__setattr__(self, "_prev", prv - self.lookback)
        object.__setattr__(self, "_rank", np.cumsum(open_))  # open days up to and including each index
        object.__setattr__(self, "_weekday", weekday)
        object.__setattr__(self, "_month", month)
        object.__setattr__(self, "n_days", int((e - s).astype(np.int64)) + 1)

    # ------------------------------------------------------------------ days
    @property
    def last_day(self) -> int:
        """Day index of ``end``."""
        return self.n_days - 1

    @property
    def horizon(self) -> int:
        """Last day index the calendar knows about."""
        return self.last_day + self.lookahead

    def _index(self, day: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(day, dtype=np.int64) + self._offset, 0, len(self._open) - 1)

    def is_open(self, day: np.ndarray) -> np.ndarray:
        """Whether the clinic is open on each day index."""
        return self._open[self._index(day)]

    def next_open(self, day: np.ndarray) -> np.ndarray:
        """First open day on or after `day`; :data:`NEVER` beyond the calendar."""
        day = np.asarray(day, dtype=np.int64)
        out = self._next[self._index(day)].astype(np.int64)
        beyond = (day > self.horizon) | (out > self.horizon)
        return np.where(beyond, NEVER, out)

    def last_open(self, day: np.ndarray) -> np.ndarray:
        """Last open day on or before `day`."""
        return self._prev[self._index(day)].astype(np.int64)

    def n_open_between(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Number of open days in the interval (a, b]."""
        return (self._rank[self._index(b)] - self._rank[self._index(a)]).astype(np.int64)

    def nth_open_after(self, day: np.ndarray, k: np.ndarray) -> np.ndarray:
        """The k-th open day strictly after `day` (k ≥ 1)."""
        target = self._rank[self._index(day)] + np.asarray(k, dtype=np.int64)
        return (np.searchsorted(self._rank, target, side="left") - self._offset).astype(np.int64)

    def nth_open_before(self, day: np.ndarray, k: np.ndarray) -> np.ndarray:
        """The k-th open day strictly before `day` (k ≥ 1)."""
        target = self._rank[self._index(np.asarray(day) - 1)] - np.asarray(k, dtype=np.int64) + 1
        return (np.searchsorted(self._rank, np.maximum(target, 1), side="left") - self._offset).astype(np.int64)

    def weekday(self, day: np.ndarray) -> np.ndarray:
        """Weekday (Monday = 0)."""
        return self._weekday[self._index(day)]

    def month(self, day: np.ndarray) -> np.ndarray:
        """Calendar month (1–12)."""
        return self._month[self._index(day)]

    def years_since_start(self, day: np.ndarray) -> np.ndarray:
        """Time since ``start`` in years of 365.25 days."""
        return np.asarray(day, dtype=np.float64) / 365.25

    def day_of(self, iso: str) -> int:
        """Day index of an ISO date."""
        return int((np.datetime64(iso, "D") - self._origin).astype(np.int64))

    def month_start_day(self, year: int, month: int) -> int:
        """Day index of the first day of a month."""
        return self.day_of(f"{year:04d}-{month:02d}-01")

    def iso(self, day: int) -> str:
        """ISO date of a day index."""
        return str(self._origin + np.timedelta64(int(day), "D"))

    # ----------------------------------------------------------------- slots
    def slot_at(self, day: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The slot (minute of day) at quantile `u` in [0, 1) of each day's slots (in time order)."""
        day = np.asarray(day, dtype=np.int64)
        saturday = self.weekday(day) == 5
        wk = _WEEKDAY_SLOTS[np.minimum((u * len(_WEEKDAY_SLOTS)).astype(np.int64), len(_WEEKDAY_SLOTS) - 1)]
        sa = _SATURDAY_SLOTS[np.minimum((u * len(_SATURDAY_SLOTS)).astype(np.int64), len(_SATURDAY_SLOTS) - 1)]
        return np.where(saturday, sa, wk).astype(np.int64)

    def random_slot(self, day: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A uniformly drawn 10-minute slot (minute of day) on each (open) day."""
        return self.slot_at(day, rng.random(len(day)))

    # ------------------------------------------------------------ conversion
    def to_datetime64(self, day: np.ndarray, minute: np.ndarray | int = 0) -> np.ndarray:
        """``datetime64[ns]`` of day indices plus minutes; :data:`NEVER` or negative minutes give NaT."""
        day = np.asarray(day, dtype=np.int64)
        minute = np.broadcast_to(np.asarray(minute, dtype=np.int64), day.shape)
        base = self._origin.astype("datetime64[ns]").astype(np.int64)
        ns = base + day * DAY_NS + minute * MINUTE_NS
        bad = (day >= NEVER) | (minute < 0)
        ns = np.where(bad, np.iinfo(np.int64).min, ns)
        return ns.view("datetime64[ns]")
