"""End to end: the monthly run with the real notebooks on the small demo clinic.

One session-scoped run (1,500 patients, seed 7, month 2026-10) produces the
report; the tests check the PDF renders (pages are not blank, A4, Korean text
extractable), the HTML hides code and is self-contained, and no artefact shows
any name, phone number or email of the input's patients.
"""

from __future__ import annotations

import json
import re

import nbformat
import numpy as np
import pytest

from crm_analysis.monthly.notebooks import notebook_paths

MONTH = "2026-10"
#: With pytest-xdist, these tests and the notebook tests share one worker, so the session's run is made once.
pytestmark = pytest.mark.xdist_group("demo_monthly_run")


@pytest.fixture(scope="module")
def monthly_run(demo_monthly_run):
    return demo_monthly_run  # tests/conftest.py: one run per session, shared with tests/test_notebooks.py


def test_month_folder_holds_every_artefact(monthly_run):
    month = monthly_run.out_dir
    names = {p.name for p in month.iterdir()}
    assert {"report.html", "report.pdf", "kpis.json", "manifest.json"} <= names
    assert {p.name for p in notebook_paths()} <= names, "every notebook's executed copy is published"
    assert monthly_run.outreach_dir.is_dir()
    assert oct(monthly_run.outreach_dir.stat().st_mode & 0o777) == "0o700"


def test_pdf_pages_render_and_are_not_blank(monthly_run):
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(monthly_run.out_dir / "report.pdf"))
    assert len(pdf) >= 2
    for i in range(len(pdf)):
        page = pdf[i]
        width_mm, height_mm = page.get_size()[0] / 72 * 25.4, page.get_size()[1] / 72 * 25.4
        assert abs(width_mm - 210) < 1 and abs(height_mm - 297) < 1, "pages must be A4"
        pixels = np.asarray(page.render(scale=0.5).to_pil().convert("L"))
        inked = float((pixels < 200).mean())
        assert inked > 0.005, f"page {i + 1} is (almost) blank: {inked:.4f} of its pixels are dark"
    first = np.asarray(pdf[0].render(scale=0.5).to_pil().convert("L"))
    print(f"page 1: {(first < 200).mean():.3f} of pixels dark, {len(pdf)} pages")


def test_korean_text_can_be_extracted_from_the_pdf(monthly_run):
    from pypdf import PdfReader

    reader = PdfReader(str(monthly_run.out_dir / "report.pdf"))
    first = reader.pages[0].extract_text()
    assert "월간 환자 관리 보고서" in first, first[:300]
    assert "이달의 핵심 지표" in first, "the KPI page must open the report"
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "환자 가치" in text and "다음 할 일" in text
    hangul = len(re.findall(r"[\uac00-\ud7a3]", text))
    print(f"{hangul} Hangul syllables extracted from {len(reader.pages)} pages")
    assert hangul > 500


def test_html_hides_code_and_is_self_contained(monthly_run):
    html = (monthly_run.out_dir / "report.html").read_text(encoding="utf-8")
    assert "월간 환자 관리 보고서" in html and "이달의 핵심 지표" in html
    assert html.index("이달의 핵심 지표") < html.index("데이터 품질 점검"), "KPI page first"
    for code in ("load_clinic(", "import ", "use_report_style", "source: str"):
        assert code not in html, f"code is visible in the report: {code!r}"
    assert not re.search(r"""(src|href)=["']https?://""", html), "the report must not load anything from the network"
    assert "data:image/png;base64," in html


def test_kpis_json_matches_the_report(monthly_run):
    kpis = json.loads((monthly_run.out_dir / "kpis.json").read_text(encoding="utf-8"))
    assert kpis == monthly_run.kpis
    executed = nbformat.read(monthly_run.out_dir / "90_monthly_report.ipynb", as_version=4)
    shown = "".join(str(o.get("data", {}).get("text/html", "")) for c in executed.cells for o in c.get("outputs", []))
    assert f"{kpis['sections']['patients']['active_12m']:,}" in shown


def _personal(patients) -> set[str]:
    """Independent of crm_analysis.privacy: names (3+ chars), phones with and without dashes, emails."""
    names = {n for n in patients["name"].dropna().astype(str) if len(n) >= 3}
    phones = set(patients["phone"].dropna().astype(str))
    phones |= {re.sub(r"\D", "", p) for p in phones}
    return names | {p for p in phones if len(p) >= 9} | set(patients["email"].dropna().astype(str))


def test_privacy_scan_passes_on_every_artefact(monthly_run, demo_clinic):
    from pypdf import PdfReader

    from crm_analysis.privacy import personal_values, scan_artefacts

    month = monthly_run.out_dir
    artefacts = sorted(p for p in month.iterdir() if p.suffix in (".html", ".pdf", ".ipynb", ".json"))
    assert {p.suffix for p in artefacts} == {".html", ".pdf", ".ipynb", ".json"}
    values = _personal(demo_clinic.patients)
    assert len(values) > 3000
    ids = set(demo_clinic.patients["patient_id"].astype(str))
    for path in artefacts:
        if path.suffix == ".pdf":
            text = "\n".join(page.extract_text() for page in PdfReader(str(path)).pages)
        else:
            text = path.read_text(encoding="utf-8")
            if path.suffix in (".json", ".ipynb"):
                text += json.dumps(json.loads(text), ensure_ascii=False)
        text = re.sub(r"[A-Za-z0-9+/=\\n]{400,}", " ", text)  # base64 images are pictures, not text
        squeezed = re.sub(r"(?<=\d)[\s.\-](?=\d)", "", text)
        leaked = sorted(v for v in values if v in text or v in squeezed)
        assert not leaked, f"{path.name} shows personal data, e.g. {leaked[:3]}"
        shown_ids = sorted(set(re.findall(r"[A-Za-z]*[0-9]+", text)) & ids)
        assert not shown_ids, f"{path.name} shows patient ids, e.g. {shown_ids[:3]}"
    assert scan_artefacts(artefacts, personal_values(demo_clinic.patients)) == []
    print(f"privacy scan: {len(values):,} personal values, {len(artefacts)} artefacts, no hit")


def test_outreach_lists_are_private_and_reproducible(monthly_run, demo_dir, tmp_path):
    """The lists are written owner-only, and lists made from models fitted anew are the same bytes."""
    from crm_analysis.monthly import Month
    from crm_analysis.monthly.outreach import outreach_lists
    from crm_analysis.report.outreach import write_outreach_lists

    folder = monthly_run.outreach_dir
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    print(f"outreach lists: {names}")
    staff = [f"{stem}_2026-11" for stem in ("VIP행사초대", "생일축하", "재내원안내", "임신주수안내", "예방접종안내", "예약알림",
                                            "수신동의확인안내")]
    system = ["system/campaign_holdout", "system/campaign_suppression"]
    assert names == sorted([*(f"{n}.{ext}" for n in staff + system for ext in ("csv", "xlsx")), "안내.txt",
                            "system/안내.txt", "cards.sqlite"])
    for path in folder.rglob("*"):
        assert oct(path.stat().st_mode & 0o777) == ("0o700" if path.is_dir() else "0o600"), path.name
    month = Month.open(demo_dir, monthly_run.kpis["as_of"])  # nothing saved: every model fitted here
    again = write_outreach_lists(outreach_lists(month), tmp_path / "again", as_of=month.as_of)
    from crm_analysis.monthly.cards import write_month_cards

    index, _ = write_month_cards(month, tmp_path / "again", source=demo_dir)  # the caller-ID cards too
    for path in [*again, index]:
        name = path.relative_to(tmp_path / "again")
        assert path.read_bytes() == (folder / name).read_bytes(), f"{name} differs between two computations"
