"""Fictitious personal data: Korean names, phone numbers and email addresses.

Phone numbers have the form ``010-0XXX-XXXX``: a middle block starting with 0
is never issued in Korea, so no generated number can reach a real person.
Email addresses use the reserved domains ``example.com`` and ``example.org``.
"""

from __future__ import annotations

import numpy as np

from crm_analysis.synth.catalog import GIVEN_SYLLABLES, SURNAME_ROMAN, SURNAMES

__all__ = ["draw_names", "draw_phones", "draw_emails", "EMAIL_DOMAINS", "PHONE_PATTERN"]

EMAIL_DOMAINS: tuple[str, ...] = ("example.com", "example.org")
#: Regular expression every generated phone number matches.
PHONE_PATTERN = r"^010-0\d{3}-\d{4}$"


def draw_names(sex: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Full names (surname + two-syllable given name) for each patient.

    Parameters
    ----------
    sex : ndarray of int
        0 for M, 1 for F; picks the syllable lists.
    rng : numpy.random.Generator

    Returns
    -------
    names : ndarray of str
    surname_code : ndarray of int
        Index into the surname list (used for email addresses).
    """
    n = len(sex)
    surnames = np.array(list(SURNAMES))
    weights = np.array(list(SURNAMES.values()), dtype=np.float64)
    code = rng.choice(len(surnames), size=n, p=weights / weights.sum())
    first = np.empty(n, dtype="<U1")
    second = np.empty(n, dtype="<U1")
    u1, u2 = rng.random(n), rng.random(n)
    for s, key in ((0, "M"), (1, "F")):
        a, b = (np.array(x) for x in GIVEN_SYLLABLES[key])
        m = sex == s
        first[m] = a[(u1[m] * len(a)).astype(np.int64)]
        second[m] = b[(u2[m] * len(b)).astype(np.int64)]
    # avoid doubled syllables such as 민민
    same = first == second
    second[same] = np.where(sex[same] == 1, "아", "호")
    names = np.char.add(np.char.add(surnames[code], first), second)
    return names, code


def draw_phones(n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` distinct fictitious mobile numbers ``010-0XXX-XXXX``."""
    if n > 10_000_000:
        raise ValueError("at most 10,000,000 distinct fictitious numbers exist")
    nums = rng.choice(10_000_000, size=n, replace=False)
    return np.array([f"010-0{k // 10000:03d}-{k % 10000:04d}" for k in nums.tolist()], dtype=object)


def draw_emails(surname_code: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Distinct addresses like ``kim482913@example.com`` (reserved domains only)."""
    n = len(surname_code)
    roman = np.array([SURNAME_ROMAN[s] for s in SURNAMES])[surname_code]
    token = rng.choice(max(10 * n, 1_000_000), size=n, replace=False)
    domain = rng.random(n) < 0.7
    return np.array([f"{r}{t:06d}@{EMAIL_DOMAINS[0] if d else EMAIL_DOMAINS[1]}"
                     for r, t, d in zip(roman.tolist(), token.tolist(), domain.tolist())], dtype=object)
