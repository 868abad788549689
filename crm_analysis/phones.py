"""Korean phone numbers: parse any common spelling, write one canonical form.

Parsing and validity come from Google's libphonenumber (the ``phonenumbers``
package); this module only applies it to whole columns.

Importing it loads neither pandas nor libphonenumber: the one-number functions
(:func:`normalise_phone`, :func:`phone_key`) serve the front desk's lookup,
which must start in a fraction of a second, so every heavier import sits in
the function that needs it.
"""

from __future__ import annotations

import re
import sys
from functools import cache

__all__ = ["normalise_phone", "normalise_phones", "is_mobile", "are_mobile", "phone_key", "INTERNATIONAL_KEY"]

_NON_DIGIT = re.compile(r"[^0-9+]")

#: Added to the key of a number kept in international form (a foreign number), so it never equals a Korean one.
INTERNATIONAL_KEY = 10**15


def normalise_phone(value: object) -> str | None:
    """One number in canonical form, or None if it is not a usable number.

    Korean numbers come out in national format (mobiles as ``010-XXXX-XXXX``),
    others in international format so the country code is kept. Placeholders
    such as ``010-0000-0000`` (the last eight digits all the same) are not
    usable numbers.

    Examples
    --------
    >>> normalise_phone("+82 10-1234-5678")
    '010-1234-5678'
    >>> normalise_phone("01012345678")
    '010-1234-5678'
    >>> normalise_phone("+1 415 555 2671")
    '+1 415-555-2671'
    >>> normalise_phone("010-0000-0000") is None
    True
    >>> normalise_phone("12") is None
    True
    """
    pandas = sys.modules.get("pandas")  # pd.NA can only come from a pandas already loaded
    if value is None or (pandas is not None and value is pandas.NA) or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    if not text:
        return None
    if text.endswith(".0") and text[:-2].isdigit():  # numbers that went through a spreadsheet as floats
        text = text[:-2]
    digits = _NON_DIGIT.sub("", text)
    if digits.isdigit() and len(digits) in (9, 10) and digits.startswith("10"):
        digits = "0" + digits  # a leading zero lost to a numeric column
    import phonenumbers
    from phonenumbers import PhoneNumberFormat

    try:
        number = phonenumbers.parse(digits, "KR")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    national = str(number.national_number)
    if len(national) >= 8 and len(set(national[-8:])) == 1:
        return None
    if number.country_code == 82:
        return phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)


def phone_key(phone: object) -> int | None:
    """The integer key of one phone number written in any common way, or None if it is not a usable number.

    The key is the canonical number's digits (:func:`normalise_phone`; the trunk ``0`` of a Korean number
    drops out), plus :data:`INTERNATIONAL_KEY` for a number kept in international form. The phone index
    (:mod:`crm_analysis.profile.index`) and the card index (:mod:`crm_analysis.profile.card_store`) both
    key numbers with this one function.

    Examples
    --------
    >>> phone_key("010-1234-5678") == phone_key("+82 10-1234-5678") == phone_key("01012345678") == 1012345678
    True
    >>> phone_key("12") is None
    True
    """
    canonical = normalise_phone(phone)
    if canonical is None:
        return None
    digits = "".join(ch for ch in canonical if ch.isdigit())
    return int(digits) + (INTERNATIONAL_KEY if canonical.startswith("+") else 0)


def is_mobile(canonical: str) -> bool:
    """Whether a normalised number is a Korean mobile number (reachable by SMS and KakaoTalk)."""
    import phonenumbers
    from phonenumbers import PhoneNumberType

    number = phonenumbers.parse(canonical, "KR")
    return number.country_code == 82 and phonenumbers.number_type(number) in (
        PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


@cache
def _kr():
    """libphonenumber's metadata for Korea, loaded on first use.

    Its mobile pattern (``_kr().mobile.national_number_pattern``: the national significant number,
    without the trunk 0) checks and formats plain Korean mobiles column-wise; everything else is parsed
    one by one.
    """
    import phonenumbers

    return phonenumbers.PhoneMetadata.metadata_for_region("KR")

# The kinds libphonenumber's ``number_type`` tries, in its order, before fixed line and mobile.
_KINDS_BEFORE_MOBILE = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan",
                        "voicemail")
# A Korean number in national format: trunk 0, then digits and single hyphens. Numbers starting 00
# (international prefix) or 08 (carrier codes) parse differently and are left to libphonenumber.
_KR_NATIONAL = r"0[1-79](?:-?[0-9])*"


def _matches_desc(national: pd.Series, desc: phonenumbers.PhoneNumberDesc | None) -> np.ndarray:
    """libphonenumber's ``_is_number_matching_desc``, for a column of national significant numbers."""
    import numpy as np

    if desc is None or not desc.national_number_pattern:
        return np.zeros(len(national), dtype=bool)
    found = national.str.fullmatch(desc.national_number_pattern).fillna(False).to_numpy(dtype=bool)
    if desc.possible_length:
        found &= national.str.len().isin(desc.possible_length).fillna(False).to_numpy(dtype=bool)
    return found


def are_mobile(canonical: pd.Series) -> pd.Series:
    """:func:`is_mobile` for a column of normalised numbers (missing values are not mobile).

    Korean numbers in national format are typed column-wise with libphonenumber's
    own metadata, in the order its ``number_type`` uses (general pattern,
    then premium rate, toll free, ... and last mobile); any other value is
    passed to :func:`is_mobile` once per distinct value. Both give the same
    answer (``tests/test_phones.py`` checks it).

    Parameters
    ----------
    canonical : pandas.Series
        Numbers as :func:`normalise_phones` writes them.

    Returns
    -------
    pandas.Series
        Booleans, on the index of `canonical`.
    """
    import pandas as pd

    from crm_analysis.coercion import TEXT

    kr = _kr()
    text = canonical.astype(TEXT)
    national = text.str.replace("-", "", regex=False).str.slice(1)  # parsing strips the trunk 0
    general = kr.general_desc
    typed = (text.str.fullmatch(_KR_NATIONAL).fillna(False).to_numpy(dtype=bool)
             & _matches_desc(national, general)
             & ~national.str.len().isin(general.possible_length_local_only).fillna(False).to_numpy(dtype=bool))
    mobile = _matches_desc(national, kr.mobile)
    if kr.same_mobile_and_fixed_line_pattern:
        mobile |= _matches_desc(national, kr.fixed_line)
    for kind in _KINDS_BEFORE_MOBILE:
        mobile &= ~_matches_desc(national, getattr(kr, kind))
    result = typed & mobile
    rest = text.notna().to_numpy(dtype=bool) & ~typed
    if rest.any():
        lookup = {number: is_mobile(number) for number in pd.unique(text[rest])}
        result[rest] = text[rest].map(lookup).to_numpy(dtype=bool)
    return pd.Series(result, index=canonical.index, dtype=bool)


def normalise_phones(values: pd.Series) -> tuple[pd.Series, pd.Index]:
    """Normalise a column of phone numbers.

    Plain Korean mobile numbers (``01012345678``, ``010-1234-5678``,
    ``010 1234 5678``) are validated against libphonenumber's mobile pattern
    and formatted column-wise; other spellings are parsed one distinct value
    at a time with :func:`normalise_phone`. Both paths give the same result
    (``tests/test_phones.py`` checks it).

    Returns
    -------
    normalised : pandas.Series
        Text; unusable numbers become missing.
    invalid : pandas.Index
        Labels of values that were given but are not usable numbers.
    """
    import pandas as pd

    from crm_analysis.coercion import TEXT

    text = values.astype(TEXT).str.strip()
    text = text.mask(text == "")
    digits = text.str.replace(r"[\s.\-()]", "", regex=True)
    plain = digits.str.fullmatch(r"0\d{9,10}").fillna(False) & \
        digits.str.slice(1).str.fullmatch(_kr().mobile.national_number_pattern).fillna(False)
    placeholder = (digits.str.slice(-8) == digits.str.slice(-1).str.repeat(8)).fillna(False)
    fast = plain & ~placeholder
    eleven = digits.str.len() == 11
    formatted = (digits.str.slice(0, 3) + "-"
                 + digits.str.slice(3, 7).where(eleven, digits.str.slice(3, 6)) + "-"
                 + digits.str.slice(7).where(eleven, digits.str.slice(6)))
    normalised = pd.Series(pd.NA, index=values.index, dtype=TEXT)
    normalised[fast.to_numpy()] = formatted[fast]
    slow = text.notna() & ~fast
    uniques = pd.unique(text[slow])
    lookup = {u: normalise_phone(u) for u in uniques}
    normalised[slow.to_numpy()] = text[slow].map(lookup).astype(TEXT)
    invalid = values.index[(normalised.isna() & text.notna()).to_numpy()]
    return normalised, invalid
