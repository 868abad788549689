"""The planner's large-clinic shortcuts give what the plain pandas spelling gives (tiny hand-made frames)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analysis.campaigns.audiences import _fmt_day, _joined, _per_row
from crm_analysis.campaigns.compliance import check_text
from crm_analysis.campaigns.message_types import euckr_bytes
from crm_analysis.campaigns.planner import _stable_order

SENDER = {"name": "데모의원", "name_en": "Demo Clinic", "contact": "02-0000-0000", "opt_out": "무료수신거부 080-000-0000"}
RULES = {"forbidden_words": ["진단", "diagnosis"]}


def test_stable_order_is_sort_values_with_missing_last():
    frame = pd.DataFrame({"at": pd.to_datetime(["2026-11-02", None, "2026-11-01", "2026-11-02", "2026-11-01"]),
                          "who": ["b", "a", None, "a", "b"], "n": [3, 1, 2, 1, 2]})
    for columns in (["at", "who"], ["who", "n"], ["n", "at", "who"]):
        expected = frame.sort_values(columns, kind="stable").index.to_numpy()
        np.testing.assert_array_equal(_stable_order(frame, columns), expected)


def test_joined_is_groupby_join_in_row_order():
    frame = pd.DataFrame({"p": ["x", "y", "x", None, "y", "x"], "d": [1, 1, 1, 2, 2, 1],
                          "v": ["DTaP", "BCG", "HepB", "MMR", "IPV", "Hib"]})
    groups = frame.groupby(["p", "d"], sort=True)
    got = _joined(frame, groups, "v", ", ")
    pd.testing.assert_series_equal(got, groups["v"].agg(", ".join), check_names=False)
    assert got.loc[("x", 1)] == "DTaP, HepB, Hib"


def test_text_made_once_per_distinct_row_is_the_text_of_every_row():
    keys = pd.DataFrame({"at": pd.to_datetime(["2026-11-02 10:00", None, "2026-11-02 10:00", None, "2026-11-03 09:30"],
                                              format="mixed"),
                         "dept": ["내과", "안과", "내과", "안과", None], "step": ["3d", "1d", "2h", "1d", "3d"]},
                        index=[4, 3, 2, 1, 0])

    def text(k: pd.DataFrame) -> pd.Series:
        return k["at"].dt.strftime("%m-%d %H:%M").fillna("?") + " " + k["dept"].fillna("-") + " " + k["step"]

    got = _per_row(keys, text)
    pd.testing.assert_series_equal(got, text(keys).astype(object))
    assert got.tolist() == ["11-02 10:00 내과 3d", "? 안과 1d", "11-02 10:00 내과 2h", "? 안과 1d", "11-03 09:30 - 3d"]


def test_day_formatting_once_per_value_keeps_missing_days():
    days = pd.Series(pd.to_datetime(["2026-11-03 10:00", None, "2026-11-03 12:00", "2026-12-25"], format="mixed"),
                     index=[5, 6, 7, 8])
    assert _fmt_day(days, "ko").tolist() == ["11.0월 3.0일", "nan월 nan일", "11.0월 3.0일", "12.0월 25.0일"]
    assert _fmt_day(days.dropna(), "ko").tolist() == ["11월 3일", "11월 3일", "12월 25일"]
    assert _fmt_day(days.dropna(), "en").tolist() == ["Nov 3", "Nov 3", "Dec 25"]
    assert _fmt_day(days, "en").index.tolist() == [5, 6, 7, 8]


def test_euckr_bytes_counts_each_unencodable_character_as_two():
    texts = pd.Series(["abc", "똠양꿍", "x😀😀y", None, "é"], dtype=object)
    # ASCII 1 byte; Hangul 2 (CP949 has 똠); an emoji the carriers replace by a double-byte character
    assert euckr_bytes(texts).tolist() == [3, 6, 6, 0, 2]


def test_text_rules_bind_advertising_only_but_diagnosis_everywhere():
    text = pd.Series(["(광고) [데모의원] 안내. 문의: 02-0000-0000 무료수신거부 080-000-0000",
                      "[데모의원] 진단 결과 안내", "광고 없이 보낸 광고"], index=[10, 11, 12])
    broken = check_text(text, np.array([True, False, True]), SENDER, RULES)
    assert broken.index.tolist() == [10, 11, 12]
    assert broken.loc[10].sum() == 0
    assert broken.loc[11].tolist() == [False, False, False, False, True]
    assert broken.loc[12].tolist() == [True, True, True, True, False]
