"""Fixed vocabularies of the demo clinic: departments, regions, names, holidays.

These are data, not parameters: changing them changes what the clinic *is*,
so they live apart from :mod:`crm_analysis.synth.params`. Everything here is
fictitious or public knowledge (Korean public holidays, common surnames).
"""

from __future__ import annotations

__all__ = [
    "DEPARTMENTS",
    "AGE_BANDS",
    "AGE_BAND_EDGES",
    "SEXES",
    "REGIONS",
    "SURNAMES",
    "SURNAME_ROMAN",
    "GIVEN_SYLLABLES",
    "HOLIDAYS",
    "RECURRING_HOLIDAYS",
    "SCHEDULES",
]

#: Departments, in code order. The first is the reference level of every model.
DEPARTMENTS: tuple[str, ...] = (
    "내과", "소아청소년과", "정형외과", "피부과", "산부인과", "가정의학과", "이비인후과", "안과",
)

#: Age bands of the return model, by completed years of age at the first visit.
AGE_BANDS: tuple[str, ...] = ("0-19", "20-39", "40-59", "60+")
#: Lower edges (years) of :data:`AGE_BANDS`.
AGE_BAND_EDGES: tuple[int, ...] = (0, 20, 40, 60)

SEXES: tuple[str, ...] = ("M", "F")

#: Area of residence with its share of patients. The clinic sits in 송파구.
REGIONS: dict[str, float] = {
    "송파구": 0.30, "강남구": 0.13, "강동구": 0.12, "서초구": 0.07, "광진구": 0.05,
    "성동구": 0.03, "동작구": 0.02, "마포구": 0.02, "용산구": 0.02, "영등포구": 0.02,
    "관악구": 0.02, "분당구": 0.07, "하남시": 0.06, "수지구": 0.02, "과천시": 0.02,
    "광주시": 0.02, "구리시": 0.01,
}

#: Surnames with their approximate share of the Korean population (2015 census, rounded).
SURNAMES: dict[str, float] = {
    "김": 21.5, "이": 14.7, "박": 8.4, "최": 4.7, "정": 4.3, "강": 2.3, "조": 2.1, "윤": 2.1,
    "장": 2.0, "임": 1.7, "한": 1.5, "오": 1.5, "서": 1.5, "신": 1.5, "권": 1.4, "황": 1.4,
    "안": 1.3, "송": 1.3, "전": 1.1, "홍": 1.1, "유": 1.1, "고": 0.9, "문": 0.9, "양": 0.9,
    "손": 0.9, "배": 0.8, "백": 0.7, "허": 0.6, "남": 0.5, "심": 0.5, "노": 0.4, "하": 0.4,
    "곽": 0.4, "성": 0.4, "차": 0.4, "주": 0.4, "우": 0.4, "구": 0.4, "민": 0.3, "진": 0.3,
    "나": 0.3, "지": 0.3, "엄": 0.3, "채": 0.3, "원": 0.3, "천": 0.2, "방": 0.2, "공": 0.2,
}

#: Romanisation used to build fictitious email local parts.
SURNAME_ROMAN: dict[str, str] = {
    "김": "kim", "이": "lee", "박": "park", "최": "choi", "정": "jung", "강": "kang", "조": "cho",
    "윤": "yoon", "장": "jang", "임": "lim", "한": "han", "오": "oh", "서": "seo", "신": "shin",
    "권": "kwon", "황": "hwang", "안": "ahn", "송": "song", "전": "jeon", "홍": "hong", "유": "yoo",
    "고": "ko", "문": "moon", "양": "yang", "손": "son", "배": "bae", "백": "baek", "허": "heo",
    "남": "nam", "심": "shim", "노": "noh", "하": "ha", "곽": "kwak", "성": "sung", "차": "cha",
    "주": "joo", "우": "woo", "구": "koo", "민": "min", "진": "jin", "나": "na", "지": "ji",
    "엄": "eom", "채": "chae", "원": "won", "천": "cheon", "방": "bang", "공": "kong",
}

#: Syllables for two-syllable given names: (first syllables, second syllables) by sex.
GIVEN_SYLLABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "M": (
        ("민", "준", "서", "지", "현", "성", "동", "영", "재", "상", "도", "시", "우", "건", "태",
         "승", "정", "종", "진", "하"),
        ("준", "호", "민", "우", "현", "수", "훈", "진", "석", "혁", "윤", "원", "규", "빈", "철",
         "환", "욱", "범", "기", "섭"),
    ),
    "F": (
        ("서", "지", "민", "수", "예", "하", "유", "은", "혜", "현", "미", "소", "채", "다", "윤",
         "나", "가", "세", "주", "정"),
        ("연", "은", "현", "아", "희", "영", "진", "원", "윤", "린", "서", "빈", "인", "경", "숙",
         "정", "나", "미", "율", "희"),
    ),
}

#: Reminder schedule steps, in bit order: bit 0 = 3 days before, bit 1 = 1 day, bit 2 = 2 hours.
SCHEDULES: tuple[str, ...] = ("3d", "1d", "2h")

#: Solar public holidays that recur every year (month, day).
RECURRING_HOLIDAYS: tuple[tuple[int, int], ...] = (
    (1, 1), (3, 1), (5, 5), (6, 6), (8, 15), (10, 3), (10, 9), (12, 25),
)

#: Other days the clinic is closed: lunar holidays, substitute holidays and election days, 2023–2027.
HOLIDAYS: tuple[str, ...] = (
    "2023-09-28", "2023-09-29", "2023-10-02",
    "2024-02-09", "2024-02-12", "2024-04-10", "2024-05-06", "2024-05-15", "2024-09-16",
    "2024-09-17", "2024-09-18", "2024-10-01",
    "2025-01-27", "2025-01-28", "2025-01-29", "2025-01-30", "2025-03-03", "2025-05-06",
    "2025-06-03", "2025-10-06", "2025-10-07", "2025-10-08",
    "2026-02-16", "2026-02-17", "2026-02-18", "2026-03-02", "2026-05-25", "2026-06-03",
    "2026-08-17", "2026-09-24", "2026-09-25", "2026-10-05",
    "2027-02-08", "2027-02-09", "2027-05-13", "2027-09-14", "2027-09-15", "2027-09-16",
)
