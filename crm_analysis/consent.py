"""Marketing consent as the law reads it: valid consent, opt-outs and night-time consent.

The bottom layer of the package (it needs only pandas), so features, churn,
campaigns and the caller-ID card all read consent the same way without
importing the campaign machinery. The rules behind it are those of
정보통신망법 제50조: consent given or reconfirmed less than two years before the
send day, no message of any kind to a channel the recipient opted out of, and
no advertising at night without a separate night-time consent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["valid_consent", "opted_out", "night_consent", "CONSENT_VALID_DAYS"]

#: How long a marketing consent stays valid without reconfirmation (2 years).
CONSENT_VALID_DAYS = 730


def _flag(values: pd.Series) -> np.ndarray:
    """A yes/no column as booleans, missing meaning no."""
    return values.astype("boolean").fillna(False).to_numpy(dtype=bool)


def _days_between(later: pd.Series, earlier: pd.Series) -> pd.Series:
    return (later.dt.normalize() - earlier).dt.days


def valid_consent(recipients: pd.DataFrame, channel: str, at: pd.Series, *, valid_days: int = CONSENT_VALID_DAYS) -> np.ndarray:
    """Whether each row has a valid marketing consent for `channel` at time `at`.

    Valid means ``<channel>_consent`` is true, dated on or before the send day
    and less than `valid_days` days before it, and no opt-out on that channel.
    A consent without a date is not valid (its age cannot be shown).
    """
    flag = _flag(recipients[f"{channel}_consent"])
    date = recipients[f"{channel}_consent_date"]
    age = _days_between(at, date)
    ok = flag & date.notna().to_numpy() & (age >= 0).fillna(False).to_numpy() & (age < valid_days).fillna(False).to_numpy()
    return ok & ~opted_out(recipients, channel, at)


def opted_out(recipients: pd.DataFrame, channel: str, at: pd.Series) -> np.ndarray:
    """Whether each row has opted out of `channel` by time `at` (an undated opt-out counts)."""
    flag = _flag(recipients[f"{channel}_opt_out"])
    date = recipients[f"{channel}_opt_out_date"]
    before = (date <= at).fillna(True).to_numpy() if len(date) else np.zeros(0, bool)
    return flag & (date.isna().to_numpy() | before)


def night_consent(recipients: pd.DataFrame, at: pd.Series) -> np.ndarray:
    """Whether each row has a night-time advertising consent given by the day of `at`."""
    flag = _flag(recipients["night_ad_consent"])
    date = recipients["night_ad_consent_date"]
    return flag & (date <= at.dt.normalize()).fillna(False).to_numpy()
