"""Korean phone numbers: parse any common spelling, write one canonical form.

Parsing and validity come from Google's libphonenumber (the ``phonenumbers``
package); this module only applies it to whole columns.
"""

from __future__ import annotations

import re

import pandas as pd
import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from crm_analysis.coercion import TEXT

__all__ = ["normalise_phone", "normalise_phones", "is_mobile"]

_NON_DIGIT = re.compile(r"[^0-9+]")


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
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    if not text:
        return None
    if text.endswith(".0") and text[:-2].isdigit():  # numbers that went through a spreadsheet as floats
        text = text[:-2]
    digits = _NON_DIGIT.sub("", text)
    if digits.isdigit() and len(digits) in (9, 10) and digits.startswith("10"):
        digits = "0" + digits  # a leading zero lost to a numeric column
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


def is_mobile(canonical: str) -> bool:
    """Whether a normalised number is a Korean mobile number (reachable by SMS and KakaoTalk)."""
    number = phonenumbers.parse(canonical, "KR")
    return number.country_code == 82 and phonenumbers.number_type(number) in (
        PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


# libphonenumber's own pattern for Korean mobile numbers (national significant
# number, without the trunk 0). Numbers written as plain Korean mobiles are
# checked and formatted with it column-wise; everything else is parsed one by one.
_KR_MOBILE = phonenumbers.PhoneMetadata.metadata_for_region("KR").mobile.national_number_pattern


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
    text = values.astype(TEXT).str.strip()
    text = text.mask(text == "")
    digits = text.str.replace(r"[\s.\-()]", "", regex=True)
    plain = digits.str.fullmatch(r"0\d{9,10}").fillna(False) & \
        digits.str.slice(1).str.fullmatch(_KR_MOBILE).fillna(False)
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
