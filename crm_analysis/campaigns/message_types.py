"""Message types and their cost, counted the way Korean carriers and KakaoTalk bill them.

A text message's length is its size in **EUC-KR** as the carriers count it:
every Hangul syllable and other double-byte character 2 bytes, ASCII 1. The
count uses CP949, EUC-KR's extension that gives all 11,172 Hangul syllables two
bytes (plain EUC-KR lacks some, such as 똠, which Python would spell in 8); a
character neither can encode, such as an emoji, counts as the carriers'
double-byte replacement. Up to :data:`SMS_MAX_BYTES` (90) bytes it goes as an
**SMS** (단문), above as an **LMS** (장문, up to :data:`LMS_MAX_BYTES`).

KakaoTalk messages are **알림톡** (alimtalk, pre-approved templates) for
transactional messages only (appointment, vaccination and pregnancy
information); an advertising message on KakaoTalk is a **친구톡** (friendtalk,
sent only to people who added the clinic's channel). Email is email.

The price of each type lives in the campaign rules (``message_cost_krw`` in
``crm_analysis/rules/campaigns.yaml``), so the plan's cost and the report use
the type each message really goes as.
"""

from __future__ import annotations

import codecs
from typing import Mapping

import numpy as np
import pandas as pd

__all__ = ["MESSAGE_TYPES", "SMS_MAX_BYTES", "LMS_MAX_BYTES", "euckr_bytes", "message_types", "message_costs"]

#: Message types: code -> (Korean, English) names.
MESSAGE_TYPES: dict[str, tuple[str, str]] = {
    "sms": ("SMS(단문)", "SMS"),
    "lms": ("LMS(장문)", "LMS"),
    "alimtalk": ("알림톡", "KakaoTalk alimtalk"),
    "friendtalk": ("친구톡", "KakaoTalk friendtalk"),
    "email": ("이메일", "email"),
}
#: Largest SMS, in EUC-KR bytes; a longer text is an LMS.
SMS_MAX_BYTES = 90
#: Largest LMS, in EUC-KR bytes.
LMS_MAX_BYTES = 2000


def euckr_bytes(text: pd.Series) -> np.ndarray:
    """Each text's length in EUC-KR bytes as carriers count them (via CP949; characters it lacks count as 2)."""
    text = text.astype(object).where(text.notna(), "").astype(str)
    # one encoding per text: each character CP949 lacks becomes "??", the carriers' double-byte replacement
    _register_double_byte()
    return text.str.encode("cp949", errors=_DOUBLE_BYTE).str.len().to_numpy(dtype=np.int64)


_DOUBLE_BYTE = "crm_analysis.double_byte"


def _register_double_byte() -> None:
    """Register the codec error handler that spells each unencodable character as two bytes (on first use)."""
    try:
        codecs.lookup_error(_DOUBLE_BYTE)
    except LookupError:
        codecs.register_error(_DOUBLE_BYTE, lambda err: ("??" * (err.end - err.start), err.end))


def message_types(message: pd.Series, channel: pd.Series, kind: pd.Series) -> pd.Series:
    """The type each message goes as: ``sms``, ``lms``, ``alimtalk``, ``friendtalk`` or ``email``.

    Parameters
    ----------
    message : Series of str
        The rendered texts.
    channel : Series
        ``kakao``, ``sms`` or ``email``.
    kind : Series
        ``advertising`` or ``transactional``.

    Returns
    -------
    Series of str
        Indexed like `message`.
    """
    channel = channel.astype(object).to_numpy()
    advertising = (kind.astype(object) == "advertising").to_numpy()
    long = euckr_bytes(message) > SMS_MAX_BYTES
    out = np.select([channel == "email", (channel == "kakao") & advertising, channel == "kakao", long],
                    ["email", "friendtalk", "alimtalk", "lms"], "sms")
    return pd.Series(out, index=message.index, dtype=object)


def message_costs(types: pd.Series, prices: Mapping[str, float]) -> pd.Series:
    """Each message's cost in KRW from its type and the rules' ``message_cost_krw``.

    Raises
    ------
    KeyError
        If a type has no price (the rules must price every type used).
    """
    missing = sorted(set(types.astype(str)) - set(prices))
    if missing:
        raise KeyError(f"message_cost_krw has no price for {', '.join(missing)}; add it to the campaign rules")
    return types.astype(str).map({k: float(v) for k, v in prices.items()}).astype(float)
