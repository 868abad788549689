"""Korean phone numbers: parse any common spelling, write one canonical form.

Parsing and validity come from Google's libphonenumber (the ``phonenumbers``
package); this module only applies it to whole columns.
"""

from __future__ import annotations

import re

import pandas as pd
import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

__all__ = ["normalise_phone", "normalise_phones", "is_mobile"]

_NON_DIGIT = re.compile(r"[^0-9+]")


def normalise_phone(value: object) -> str | None:
    """One number in Korean national format, or None if it is not a valid number.

    Mobile numbers come out as ``010-XXXX-XXXX``.

    Examples
    --------
    >>> normalise_phone("+82 10-1234-5678")
    '010-1234-5678'
    >>> normalise_phone("01012345678")
    '010-1234-5678'
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
    return phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)


def is_mobile(canonical: str) -> bool:
    """Whether a normalised number is a mobile number (can receive SMS and KakaoTalk)."""
    number = phonenumbers.parse(canonical, "KR")
    return phonenumbers.number_type(number) in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


def normalise_phones(values: pd.Series) -> tuple[pd.Series, pd.Index]:
    """Normalise a column of phone numbers.

    Each distinct spelling is parsed once, so a million-row column with many
    repeats is quick.

    Returns
    -------
    normalised : pandas.Series
        ``string`` dtype; invalid numbers become missing.
    invalid : pandas.Index
        Labels of values that were given but are not valid numbers.
    """
    text = values.astype("string").str.strip()
    text = text.mask(text == "")
    uniques = pd.unique(text.dropna())
    lookup = {u: normalise_phone(u) for u in uniques}
    normalised = text.map(lookup).astype("string")
    invalid = values.index[(normalised.isna() & text.notna()).to_numpy()]
    return normalised, invalid
