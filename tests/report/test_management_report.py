"""The management report a director reads in one minute (issue 21): page 1, one page per analysis, the appendix.

Uses the session's monthly run of the small demo clinic (tests/conftest.py ``demo_monthly_run``).
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from crm_analysis.monthly.glance import TILES

pytestmark = pytest.mark.xdist_group("demo_monthly_run")

#: A number printed with more than two decimals (``43.400000``), not part of a longer token such as a date.
RAW_FLOAT = re.compile(r"(?<![\w.])\d+\.\d{3,}(?![\w.])")
#: Markdown that did not render: bold/italic markers, inline code ticks, a heading's hashes at a line start.
LITERAL_MARKDOWN = re.compile(r"\*\*|__|`|^\s*#{1,6}\s", re.M)


@pytest.fixture(scope="module")
def published(demo_monthly_run):
    return demo_monthly_run


@pytest.fixture(scope="module")
def kpis(published):
    return json.loads((published.out_dir / "kpis.json").read_text(encoding="utf-8"))["sections"]


@pytest.fixture(scope="module")
def html(published):
    return (published.out_dir / "report.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def pdf_pages(published):
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(published.out_dir / "report.pdf"))
    return [pdf[i].get_textpage().get_text_range() for i in range(len(pdf))]


def test_kpis_json_figures_add_up_on_one_base(kpis):
    patients, churn, glance = kpis["patients"], kpis["churn"], kpis["glance"]
    assert patients["new_month"] + patients["returning_month"] == patients["visiting_month"]
    assert patients["visiting_month"] <= patients["active_12m"] <= patients["registered"]
    # the churned are counted among the patients at risk, on the registered patients: no pair adds past the whole
    assert churn["patients"] == patients["registered"]
    assert 0 < churn["churned"] <= churn["at_risk"] <= churn["patients"]
    assert churn["at_risk"] + (churn["patients"] - churn["at_risk"]) == patients["registered"]
    # each tile's "this month" is the figure of the other sections
    tiles = {t["key"]: t for t in glance["tiles"]}
    assert [t.key for t in TILES if t.key in tiles] == list(tiles)
    assert tiles["visiting_month"]["this"] == patients["visiting_month"]
    assert tiles["new_month"]["this"] == patients["new_month"]
    assert tiles["active_12m"]["this"] == patients["active_12m"]
    assert tiles["retention_rate"]["this"] == kpis["retention"]["rate"]
    assert tiles["no_show_rate"]["this"] == kpis["no_show"]["month"]["rate"]
    assert tiles["charges_month"]["this"] == kpis["revenue_by_department"]["total"]["total"]
    for tile in tiles.values():
        assert len(tile["series"]) == 13 and tile["series"][-1] == tile["this"]
        assert tile["last_month"] == tile["series"][-2] and tile["last_year"] == tile["series"][0]
    # next month's recall list is drawn from the recall candidates
    recall = next(r for r in kpis["actions"]["rows"] if r["audience"] == "recall")
    assert recall["recipients"] <= churn["recall_candidates"]
    pilot = kpis["reminder_effect"]["pilot"]
    assert pilot["ci_low"] <= pilot["risk_difference"] <= pilot["ci_high"]
    print({k: t["this"] for k, t in tiles.items()}, {k: churn[k] for k in ("patients", "at_risk", "churned")})


def test_page_one_has_tiles_effects_and_actions_with_their_files(pdf_pages, kpis):
    first = pdf_pages[0]
    for label in ("내원 환자", "신환", "노쇼율", "지난달", "작년 같은 달", "이달 할 일", "무작위 시범 운영", "보정 모형"):
        assert label in first, label
    for row in kpis["actions"]["rows"]:
        assert row["file"] in first.replace("\r\n", "").replace("\n", ""), row["file"]
    assert 3 <= len(kpis["actions"]["rows"]) <= 5
    print(first[:600])


def test_management_pdf_is_short_plain_and_in_order(pdf_pages):
    text = "\n".join(pdf_pages)
    print(f"{len(pdf_pages)} pages; first lines: {[p.splitlines()[0] for p in pdf_pages]}")
    assert len(pdf_pages) <= 12
    for i, page in enumerate(pdf_pages, 1):
        assert not RAW_FLOAT.search(page), f"page {i}: raw float {RAW_FLOAT.search(page).group()!r}"
        assert not LITERAL_MARKDOWN.search(page), f"page {i}: literal markdown {LITERAL_MARKDOWN.search(page)!r}"
        assert "다음 할 일" in page or i == 1, f"page {i} ends with no next step"
    assert "데이터 품질 점검" not in text and "비례위험" not in text, "data quality and diagnostics are appendix only"


def test_html_holds_the_appendix_a_contents_and_unique_anchors(html):
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    ids = [tag["id"] for tag in soup.find_all(id=True)]
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    assert not duplicates, duplicates[:10]
    contents = soup.find("nav", class_="contents")
    links = [a["href"][1:] for a in contents.find_all("a")]
    assert len(links) >= 10 and set(links) <= set(ids)
    assert html.index("이달의 핵심 지표") < html.index("부록") < html.index("데이터 품질 점검")
    print(f"{len(ids)} ids, {len(links)} contents links")


def test_every_chart_has_real_alt_text(html):
    from bs4 import BeautifulSoup

    images = BeautifulSoup(html, "html.parser").find_all("img")
    assert len(images) >= 8
    for img in images:
        alt = img.get("alt", "")
        assert alt and "No description" not in alt and alt != "chart", alt
    print([img["alt"][:60] for img in images])


def test_the_readme_shows_page_one_rendered_by_the_docs_script(published, tmp_path):
    import importlib.util

    from PIL import Image

    from crm_analysis.monthly.notebooks import PROJECT_ROOT

    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert "](docs/images/page_one.png)" in readme and "docs/render_page_one.py" in readme
    spec = importlib.util.spec_from_file_location("render_page_one", PROJECT_ROOT / "docs" / "render_page_one.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    png = script.render_page_one(published.out_dir / "report.pdf", tmp_path / "page_one.png")
    for image in (Image.open(png), Image.open(PROJECT_ROOT / "docs" / "images" / "page_one.png")):
        width, height = image.size
        assert abs(height / width - 297 / 210) < 0.01 and width >= 700, image.size


# ---------------------------------------------------------------------------------------- one language per report

HANGUL = re.compile(r"[\uac00-\ud7a3]")
#: A token of visible text: split at spaces and the punctuation around words.
TOKEN = re.compile(r"[^\s()\[\]{},;:'\"“”‘’<>|=·~—–]+")
#: Latin words a Korean report keeps: acronyms and the names of methods, units and products.
KEPT_IN_KOREAN = {"RFM", "VIP", "VIPs", "CLV", "AUC", "CI", "KRW", "SMS", "LMS", "PDF", "HTML", "CSV", "XLSX", "BG",
                  "NBD", "Gamma-Gamma", "Cox", "AFT", "Weibull", "C-index", "ICI", "E50", "ITS", "ID", "OK"}
#: Korean a report in English keeps: the legal advertising prefix, quoted as the law writes it.
KEPT_IN_ENGLISH = {"(광고)", "광고"}


def _visible_text(html: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["style", "script", "title"]):
        tag.decompose()
    alts = [img.get("alt", "") for img in soup.find_all("img")]
    return soup.get_text("\n") + "\n" + "\n".join(alts)


def _code_like(token: str) -> bool:
    """File, folder, rule and column names, commands and numbers: written as the system writes them."""
    return bool(re.search(r"[_./@\\\d]", token))


def words_in_the_other_language(html: str, lang: str) -> Counter:
    """Tokens of the report's visible text (alt texts included) in the other language: Hangul in an English
    report, Latin words in a Korean one; code-like tokens (``재내원안내_2026-11.xlsx``, ``cost_effect``) and the
    words in the KEPT sets are data or names, not prose."""
    text = re.sub(r"crm-analysis \w+", "", _visible_text(html))  # commands, as typed
    found: Counter = Counter()
    for token in TOKEN.findall(text):
        if lang == "en":
            if HANGUL.search(token) and token not in KEPT_IN_ENGLISH and not _code_like(token):
                found[token] += 1
        elif not _code_like(token):
            for word in re.findall(r"[A-Za-z][A-Za-z\-]{2,}", token):
                if word not in KEPT_IN_KOREAN and word.strip("-") not in KEPT_IN_KOREAN:
                    found[word] += 1
    return found


def test_the_korean_report_has_no_english_prose(html):
    found = words_in_the_other_language(html, "ko")
    print(f"Latin words outside names and data: {found.most_common(20)}")
    assert not found, found.most_common(20)


@pytest.fixture(scope="module")
def english_run(demo_dir, tmp_path_factory):
    from crm_analysis.monthly.run import run_month

    root = tmp_path_factory.mktemp("english_run")
    return run_month("2026-10", demo_dir, out=root / "reports", outreach_dir=root / "outreach", lang="en",
                     pdf=False, progress=False)


def test_the_english_report_is_english_throughout(english_run):
    html = (english_run.out_dir / "report.html").read_text(encoding="utf-8")
    found = words_in_the_other_language(html, "en")
    print(f"Hangul outside names and data: {found.most_common(20)}")
    assert not found, found.most_common(20)
    assert "The month at a glance" in html and "Appendix" in html and "이달의 핵심 지표" not in html
    # the checker finds what it is meant to find
    assert words_in_the_other_language("<p>환자 수 <b>12</b> 재내원안내_2026-11.xlsx</p>", "en") == Counter({"환자": 1, "수": 1})
    assert words_in_the_other_language("<p>환자 수 patients RFM cost_effect</p>", "ko") == Counter({"patients": 1})
