"""The network summary: branch figures as in kpis.json, honest totals, missing branches, HTML/PDF, privacy.

Branches (module-scoped, built with ``monthly_kpis``; no monthly runs):

- ``big``: the demo clinic (1,500 patients, seed 7), every section plus the churn section;
- ``strict``: the same clinic with a suppression threshold of 50 and without the reminder effect
  (a higher threshold than the network's 5: usable, its own threshold stays);
- ``small``: a second generated clinic (200 patients, seed 11) with the network's threshold 5, so its
  kpis.json hides small counts the summary must show as ``<5``;
- ``broken``: failed (kpis None).

``loose`` (the ``small`` clinic with the threshold 1) is kept out of ``branches``: a kpis.json made with a
lower threshold than the network's must be listed as missing, never shown.
"""

from __future__ import annotations

import copy
import json
import math
import re
from html import escape

import pytest

from crm_analysis.monthly.kpis import CORE_SECTIONS, monthly_kpis
from crm_analysis.network.summary import (DEFAULT_MIN_COUNT, POOL_METHOD, network_html, network_json,
                                          network_summary, pool_effects, write_network_pdf)

MONTH, AS_OF = "2026-10", "2026-10-31"
SMALL_SEED, SMALL_PATIENTS = 11, 200
NAMES = {"big": "강남본점", "strict": "분당엄격점", "small": "제주작은점", "broken": "부산고장점"}
CHEAP = [*CORE_SECTIONS, "vip", "campaigns"]
LOOSE_REASON = (f"its kpis.json hides counts below 1, not {DEFAULT_MIN_COUNT}; "
                f"rerun the branch with --min-count {DEFAULT_MIN_COUNT}")
FAILURES = {"broken": "the data does not meet the contract (3 problem(s)); run validate on it"}
COUNT_KEYS = {"appointments", "no_shows", "base", "retained", "active_12m", "new_month", "returning_month", "count",
              "entered", "left", "n_sent", "n_holdout", "returned_sent", "returned_holdout", "patients", "churned",
              "recall_candidates", "vip_count"}


@pytest.fixture(scope="module")
def small_clinic(tmp_path_factory):
    from crm_analysis import load_clinic, synth

    print(f"\n[network summary] second clinic seed={SMALL_SEED} patients={SMALL_PATIENTS}")
    folder = tmp_path_factory.mktemp("small_branch")
    synth.generate_clinic(n_patients=SMALL_PATIENTS, seed=SMALL_SEED, end=AS_OF).write(folder, format="csv")
    return load_clinic(folder, as_of=AS_OF)


@pytest.fixture(scope="module")
def branches(demo_clinic, small_clinic):
    from crm_analysis.churn.monthly import churn_kpis

    big = monthly_kpis(demo_clinic, AS_OF).to_dict()
    # the churn section as the monthly run's hook adds it (computed directly: no global registration here)
    big["sections"]["churn"] = {"available": True, **churn_kpis(demo_clinic, AS_OF, big["min_count"])}
    strict = monthly_kpis(demo_clinic, AS_OF, sections=CHEAP, min_count=50).to_dict()
    small = monthly_kpis(small_clinic, AS_OF, sections=CHEAP, min_count=DEFAULT_MIN_COUNT).to_dict()
    assert (big["min_count"], strict["min_count"], small["min_count"]) == (DEFAULT_MIN_COUNT, 50, DEFAULT_MIN_COUNT)
    return {"big": big, "strict": strict, "small": small, "broken": None}


@pytest.fixture(scope="module")
def loose(small_clinic):
    """The small clinic's kpis.json made with the threshold 1: it holds counts 1..4 and their money."""
    return monthly_kpis(small_clinic, AS_OF, sections=CHEAP, min_count=1).to_dict()


@pytest.fixture(scope="module")
def summary(branches):
    return network_summary(MONTH, branches, NAMES, FAILURES, network="시험 네트워크")


def _row(summary, section, cid):
    return next(r for r in summary["sections"][section]["rows"] if r["id"] == cid)


def _hidden(value, threshold=DEFAULT_MIN_COUNT):
    """A count as the network must show it: None when 1..threshold-1."""
    return None if value is None or 0 < value < threshold else value


# --------------------------------------------------------------------------- figures per branch

def test_branch_figures_equal_the_branch_kpis(summary, branches):
    s = branches["big"]["sections"]
    ns = _row(summary, "no_show", "big")
    assert (ns["appointments"], ns["no_shows"], ns["rate"]) == (
        s["no_show"]["month"]["appointments"], s["no_show"]["month"]["no_shows"], s["no_show"]["month"]["rate"])
    rem = s["reminder_effect"]
    assert (ns["risk_difference"], ns["ci_low"], ns["ci_high"], ns["regime"]) == (
        rem["risk_difference"], rem["ci_low"], rem["ci_high"], rem["regime"])
    ret = _row(summary, "retention", "big")
    assert (ret["rate"], ret["base"], ret["retained"]) == (s["retention"]["rate"], s["retention"]["base"],
                                                           s["retention"]["retained"])
    assert [ret[k] for k in ("active_12m", "new_month", "returning_month")] == [
        s["patients"][k] for k in ("active_12m", "new_month", "returning_month")]
    vip = _row(summary, "vip", "big")
    assert [vip[k] for k in ("count", "entered", "left")] == [s["vip"][k] for k in ("count", "entered", "left")]
    rev = _row(summary, "revenue", "big")
    assert rev["total"] == s["revenue_by_department"]["total"]["total"]
    assert rev["departments"] == {r["department"]: r["total"] for r in s["revenue_by_department"]["rows"]}
    camp = _row(summary, "campaigns", "big")
    for r in s["campaigns"]["last_12m"]["rows"]:
        assert camp["kinds"][r["kind"]]["lift"] == r["lift"] and camp["kinds"][r["kind"]]["n_sent"] == r["n_sent"]
    assert camp["overall"]["lift"] == s["campaigns"]["last_12m"]["overall"]["lift"]
    churn = _row(summary, "churn", "big")
    assert (churn["churned"], churn["rate"], churn["recall_candidates"]) == (
        s["churn"]["churned"], s["churn"]["churn_rate"], s["churn"]["recall_candidates"])
    head = next(r for r in summary["clinics"] if r["id"] == "big")
    assert head["no_show_rate"] == s["no_show"]["month"]["rate"] and head["vip_count"] == s["vip"]["count"]
    assert head["name"] == "강남본점"


def test_a_branch_without_the_reminder_section_shows_a_dash(summary):
    row = _row(summary, "no_show", "strict")
    assert not row["reminder_available"] and row["risk_difference"] is None
    assert summary["sections"]["no_show"]["total"]["risk_difference"] is None  # one branch unknown: no pool


# --------------------------------------------------------------------------- totals

def test_totals_are_hand_sums_or_none(summary, branches):
    reported = ["big", "small", "strict"]
    assert summary["reported"] == reported
    for key, section, path in (("active_12m", "patients", ("active_12m",)),
                               ("new_month", "patients", ("new_month",)),
                               ("revenue_total", "revenue_by_department", ("total", "total"))):
        parts = []
        for cid in reported:
            value = branches[cid]["sections"][section]
            for p in path:
                value = value[p]
            threshold = max(DEFAULT_MIN_COUNT, branches[cid]["min_count"])
            parts.append(value if key == "revenue_total" else _hidden(value, threshold))
        expected = None if None in parts else sum(parts)
        print(f"{key}: parts {parts} -> total {summary['totals'][key]}")
        assert summary["totals"][key] == expected
    assert summary["totals"]["revenue_total"] is not None  # money totals are always published by a branch
    insured = sum(branches[c]["sections"]["revenue_by_department"]["total"]["insured"] for c in reported)
    assert summary["sections"]["revenue"]["total"]["insured"] == insured


def test_rates_are_pooled_from_counts_not_averaged(branches):
    kpis = {"big": branches["big"], "strict": branches["strict"]}
    s = network_summary(MONTH, kpis, NAMES)
    months = [branches[c]["sections"]["no_show"]["month"] for c in kpis]
    pooled = round(sum(m["no_shows"] for m in months) / sum(m["appointments"] for m in months), 4)
    assert s["sections"]["no_show"]["total"]["rate"] == pooled == s["totals"]["no_show_rate"]
    ret = [branches[c]["sections"]["retention"] for c in kpis]
    assert s["totals"]["retention_rate"] == round(sum(r["retained"] for r in ret) / sum(r["base"] for r in ret), 4)
    # a different-sized branch: the pooled rate is not the mean of the rates
    small = copy.deepcopy(branches["big"])
    month = small["sections"]["no_show"]["month"]
    month.update(appointments=100, no_shows=50, rate=0.5)
    s2 = network_summary(MONTH, {"big": branches["big"], "other": small}, NAMES)
    big = branches["big"]["sections"]["no_show"]["month"]
    expected = round((big["no_shows"] + 50) / (big["appointments"] + 100), 4)
    mean = (big["rate"] + 0.5) / 2
    print(f"pooled no-show rate {expected} vs mean of branch rates {mean:.4f}")
    assert s2["totals"]["no_show_rate"] == expected != round(mean, 4)


def test_a_suppressed_branch_value_empties_the_total(branches):
    other = copy.deepcopy(branches["big"])
    other["sections"]["vip"]["entered"] = None  # hidden in that branch's kpis.json
    other["sections"]["patients"]["new_month"] = 3  # a small count (the branch ran with a lower threshold)
    s = network_summary(MONTH, {"big": branches["big"], "other": other}, NAMES)
    vip = s["sections"]["vip"]["total"]
    assert vip["entered"] is None and vip["count"] == 2 * branches["big"]["sections"]["vip"]["count"]
    assert _row(s, "retention", "other")["new_month"] is None and s["totals"]["new_month"] is None
    assert s["totals"]["active_12m"] == 2 * branches["big"]["sections"]["patients"]["active_12m"]


def test_a_hidden_department_hides_its_network_total(summary, branches):
    hidden = [r["department"] for r in branches["strict"]["sections"]["revenue_by_department"]["rows"]
              if r["total"] is None]
    assert len(hidden) >= 2  # the threshold 50 hides some departments of the demo clinic
    total = summary["sections"]["revenue"]["total"]["departments"]
    assert all(total[d] is None for d in hidden)
    # within a branch, hidden departments come at least in pairs, so the network's department totals too
    assert sum(v is None for v in total.values()) != 1


def test_a_failed_branch_is_listed_and_leaves_the_others_totals_alone(summary, branches):
    assert summary["missing"] == [{"id": "broken", "name": "부산고장점", "reason": FAILURES["broken"]}]
    assert summary["failed"] == ["broken"] and summary["n_branches"] == 4
    without = network_summary(MONTH, {k: v for k, v in branches.items() if k != "broken"}, NAMES,
                              network="시험 네트워크")
    assert without["totals"] == summary["totals"] and without["sections"]["no_show"] == summary["sections"]["no_show"]
    # named but never reported, without a recorded reason; and a kpis.json of another month
    old = copy.deepcopy(branches["small"])
    old["month"] = "2026-09"
    s = network_summary(MONTH, {"big": branches["big"], "old": old}, {"big": "a", "gone": "사라진점"},
                        {"x": "worker lost 3 times (KilledWorker)\nTraceback ..."})
    reasons = {m["id"]: m["reason"] for m in s["missing"]}
    assert reasons["gone"] == "no reason recorded"
    assert reasons["x"] == "worker lost 3 times (KilledWorker)"  # first line only
    assert "2026-09" in reasons["old"] and s["reported"] == ["big"]


# --------------------------------------------------------------------------- pooled effects

def test_pool_effects_by_hand():
    z = 1.959963984540054
    effects = [(-0.10, -0.12, -0.08), (-0.04, -0.08, 0.0)]
    se = [(h - lo) / (2 * z) for _, lo, h in effects]
    w = [1 / s ** 2 for s in se]
    est = (w[0] * -0.10 + w[1] * -0.04) / sum(w)
    pooled = pool_effects(effects)
    assert pooled["estimate"] == round(est, 4) and pooled["n_branches"] == 2
    assert pooled["ci_high"] - pooled["ci_low"] == pytest.approx(2 * z / math.sqrt(sum(w)), abs=2e-4)
    assert pool_effects([(0.1, None, 0.2)]) is None and pool_effects([]) is None
    assert pooled["method"] == POOL_METHOD and "one common effect" in POOL_METHOD
    one = pool_effects([(-0.1, -0.12, -0.08)])
    assert one["n_branches"] == 1 and (one["q"], one["q_p_value"], one["i2"]) == (None, None, None)


def test_heterogeneity_q_and_i2_by_hand():
    z = 1.959963984540054
    # three made-up estimates that disagree: 0.10 +- 0.04, 0.02 +- 0.02, 0.06 +- 0.06 (95% CI half-widths)
    effects = [(0.10, 0.06, 0.14), (0.02, 0.00, 0.04), (0.06, 0.00, 0.12)]
    se = [0.04 / z, 0.02 / z, 0.06 / z]
    w = [1 / s ** 2 for s in se]
    est = sum(wi * e for wi, (e, _, _) in zip(w, effects)) / sum(w)
    q = sum(wi * (e - est) ** 2 for wi, (e, _, _) in zip(w, effects))
    p = math.exp(-q / 2)  # the chi-square survival function with 2 degrees of freedom, in closed form
    i2 = (q - 2) / q
    pooled = pool_effects(effects)
    print(f"by hand: pooled {est:.4f}, Q {q:.4f}, p {p:.4f}, I2 {i2:.4f}; pool_effects: "
          f"{pooled['estimate']}, {pooled['q']}, {pooled['q_p_value']}, {pooled['i2']}")
    assert pooled["estimate"] == round(est, 4)
    assert pooled["q"] == pytest.approx(q, abs=1e-4) and pooled["q_p_value"] == pytest.approx(p, abs=1e-4)
    assert pooled["i2"] == pytest.approx(i2, abs=1e-4) and 0.5 < pooled["i2"] < 1 and pooled["q_p_value"] < 0.05
    # estimates closer together than chance allows: Q below its degrees of freedom, I2 floored at 0
    close = pool_effects([(0.05, 0.01, 0.09), (0.06, 0.02, 0.10), (0.055, 0.015, 0.095)])
    q_close = sum((e - 0.055) ** 2 for e in (0.05, 0.06, 0.055)) / (0.04 / z) ** 2
    print(f"close estimates: Q {close['q']} (by hand {q_close:.4f}), p {close['q_p_value']}, I2 {close['i2']}")
    assert close["q"] == pytest.approx(q_close, abs=1e-4) and close["q"] < 2 and close["i2"] == 0
    assert close["q_p_value"] == pytest.approx(math.exp(-q_close / 2), abs=1e-4)


def test_reminder_effects_pool_only_for_one_schedule(branches):
    twin = copy.deepcopy(branches["big"])
    s = network_summary(MONTH, {"big": branches["big"], "twin": twin}, NAMES)
    rem = branches["big"]["sections"]["reminder_effect"]
    total = s["sections"]["no_show"]["total"]
    assert total["risk_difference"] == pytest.approx(rem["risk_difference"], abs=1e-4)
    assert total["ci_high"] - total["ci_low"] < rem["ci_high"] - rem["ci_low"]  # twice the data: narrower
    assert (total["q"], total["q_p_value"], total["i2"]) == (0, 1, 0)  # identical estimates agree perfectly
    assert total["effect_method"] == POOL_METHOD
    assert s["sections"]["campaigns"]["total"]["overall"]["i2"] == 0
    html, en = network_html(s), network_html(s, lang="en")
    pooled = f"{total['risk_difference'] * 100:+.1f}%p ({total['ci_low'] * 100:+.1f} ~ {total['ci_high'] * 100:+.1f})"
    assert f"<th>{pooled} · I² 0%</th>" in html and f"<th>{pooled} · I² 0%</th>" in en
    campaigns = html.split("캠페인 효과 (최근 12개월)</h2>")[1].split("</table>")[0]
    assert "I² 0%" in campaigns  # the pooled campaign lifts carry I² too
    assert "<td>" + pooled not in html  # the branch rows show no I²
    assert POOL_METHOD in en and POOL_METHOD in html and "고정효과 통합값" in html
    assert html.count(POOL_METHOD) == 2 and en.count(POOL_METHOD) == 2  # under the reminder and campaign tables
    twin["sections"]["reminder_effect"]["regime"] = "1d"
    assert network_summary(MONTH, {"big": branches["big"], "twin": twin}, NAMES)["sections"]["no_show"]["total"][
        "risk_difference"] is None


# --------------------------------------------------------------------------- JSON, purity, errors

def test_json_is_deterministic_and_the_input_is_not_modified(branches):
    before = copy.deepcopy(branches)
    a = network_json(network_summary(MONTH, branches, NAMES, FAILURES))
    b = network_json(network_summary(MONTH, dict(reversed(list(branches.items()))), NAMES, FAILURES))
    assert a == b and a.endswith("}\n") and "강남본점" in a
    assert json.loads(a)["month"] == MONTH
    assert branches == before


def test_a_bad_threshold_is_explained(branches):
    with pytest.raises(ValueError, match="suppression threshold"):
        network_summary(MONTH, branches, NAMES, min_count=0)


# --------------------------------------------------------------------------- HTML and PDF

_EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def test_html_is_korean_by_default_and_english_on_request(summary):
    ko, en = network_html(summary), network_html(summary, lang="en")
    for heading in ("네트워크 요약", "노쇼율과 예약 알림 효과", "재방문과 환자 수", "VIP 환자", "캠페인 효과",
                    "이번 달 진료비", "이탈과 재방문 안내", "보고되지 않은 지점", "네트워크 합계"):
        assert heading in ko, heading
    for heading in ("Network summary", "No-shows and the reminder effect", "Retention and patients",
                    "Campaign lifts", "Branches missing from this summary"):
        assert heading in en and heading not in ko, heading
    assert "<th>network total</th>" in en and "<th>네트워크 합계</th>" in ko
    assert "<em>" in ko and "노쇼율과" not in en  # Korean notes carry the English in italics; English is English only
    for name in NAMES.values():
        assert name in ko and name in en
    assert escape(FAILURES["broken"]) in ko and escape(FAILURES["broken"]) in en
    assert not _EXTERNAL.search(ko) and not _EXTERNAL.search(en)
    assert "http://" not in ko and "https://" not in ko


def test_hostile_names_are_text_and_the_page_forbids_scripts(branches):
    """Branch names, ids, departments, failure reasons and the network's name from a hostile config or data."""
    from html.parser import HTMLParser

    bad = '<img src=x onerror=alert(1)><script>alert(2)</script><a href="javascript:alert(3)">x</a>'
    spoilt = {cid: None if kpis is None else json.loads(json.dumps(kpis, ensure_ascii=False)
                                                          .replace("내과", "내과" + json.dumps(bad)[1:-1]))
              for cid, kpis in branches.items()}
    spoilt[bad] = None
    names = {cid: name + bad for cid, name in {**NAMES, bad: bad}.items()}
    summary = network_summary(MONTH, spoilt, names, {**FAILURES, bad: bad}, network=bad)
    found, text, policies = [], [], []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.extend([tag] if tag == "script" else [])
            found.extend(f"{tag} {k}" for k, v in attrs if k.startswith("on") or "javascript:" in (v or ""))
            if tag == "meta" and dict(attrs).get("http-equiv") == "Content-Security-Policy":
                policies.append(dict(attrs)["content"])

        def handle_data(self, data):
            text.append(data)

    for lang in ("ko", "en"):
        parser = Parser(convert_charrefs=True)
        parser.feed(network_html(summary, lang))
        parser.close()
    assert not found, found[:5]
    assert "".join(text).count(bad) >= 8, "the hostile values are shown as text"
    assert len(policies) == 2 and all("default-src 'none'" in p and "script-src 'none'" in p for p in policies)


def test_pdf_has_pages_with_extractable_korean(summary, tmp_path):
    from pypdf import PdfReader

    path = write_network_pdf(summary, tmp_path / "network.pdf")
    reader = PdfReader(str(path))
    texts = [page.extract_text() for page in reader.pages]
    print(f"network.pdf: {len(texts)} page(s), {path.stat().st_size:,} bytes")
    assert texts and all(t.strip() for t in texts)
    text = "\n".join(texts)
    assert "네트워크 요약" in text and "강남본점" in text and "부산고장점" in text


# --------------------------------------------------------------------------- privacy

def _counts(obj, path=""):
    """Every (path, value) of a count key anywhere in the summary."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in COUNT_KEYS and not isinstance(value, (dict, list)):
                yield f"{path}.{key}", value
            yield from _counts(value, f"{path}.{key}")
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _counts(value, f"{path}[{i}]")


def _hidden_counts(obj):
    """The paths of the count keys that are None (hidden) anywhere in a branch's kpis.json sections."""
    return [p for p, v in _counts(obj) if v is None]


def test_no_count_below_the_threshold_shows(summary, branches):
    small_vip = branches["small"]["sections"]["vip"]
    raw = [small_vip[k] for k in ("entered", "left")]
    hidden = _hidden_counts(branches["small"]["sections"])
    print(f"small branch (threshold 5) VIP entered/left in its kpis.json: {raw}; hidden counts: {hidden}")
    assert None in raw and hidden  # the small branch hid some counts: the test has something to show as <5
    vip_total = summary["sections"]["vip"]["total"]
    print(f"network VIP total count/entered/left: {vip_total}")
    assert vip_total["entered"] is None and vip_total["left"] is None  # a hidden part empties the total
    assert vip_total["count"] == sum(branches[c]["sections"]["vip"]["count"] for c in ("big", "small", "strict"))
    leaks = [(p, v) for p, v in _counts(summary) if v is not None and 0 < v < DEFAULT_MIN_COUNT]
    assert leaks == []
    strict_rows = [r for section in summary["sections"].values() for r in section["rows"] if r["id"] == "strict"]
    strict = [(p, v) for p, v in _counts(strict_rows) if v is not None and 0 < v < 50]
    assert len(strict_rows) == len(summary["sections"]) and strict == []  # a branch's own higher threshold stays
    assert {r["id"]: r["hidden_below"] for r in summary["clinics"]} == {"big": 5, "small": 5, "strict": 50}
    html = network_html(summary)
    assert f"&lt;{DEFAULT_MIN_COUNT}" in html and "&lt;50" in html
    row = re.search(r"<tr><td>제주작은점</td>(.*?)</tr>", html.split("VIP 환자</h2>")[1]).group(1)
    cells = re.findall(r"<td>(.*?)</td>", row)
    assert cells[1:] == ["&lt;5" if v is None else f"{v:,}" for v in raw]


def test_a_threshold_50_branch_serves_a_network_threshold_up_to_50(branches):
    for network_min in (DEFAULT_MIN_COUNT, 20, 50):
        s = network_summary(MONTH, branches, NAMES, FAILURES, min_count=network_min)
        assert "strict" in s["reported"], network_min
        leaks = [(p, v) for p, v in _counts(s) if v is not None and 0 < v < network_min]
        assert leaks == [], network_min
    # under the network threshold 50 the threshold-5 branches are missing, the threshold-50 one is shown
    s = network_summary(MONTH, branches, NAMES, FAILURES, min_count=50)
    reasons = {m["id"]: m["reason"] for m in s["missing"]}
    print(f"network threshold 50: reported {s['reported']}, missing {sorted(reasons)}")
    assert s["reported"] == ["strict"] and set(reasons) == {"big", "small", "broken"}
    assert reasons["big"] == "its kpis.json hides counts below 5, not 50; rerun the branch with --min-count 50"
    assert s["totals"]["active_12m"] == branches["strict"]["sections"]["patients"]["active_12m"]
    assert "&lt;50" in network_html(s) and "&lt;5<" not in network_html(s)


def test_a_branch_with_a_lower_threshold_is_missing_not_shown(branches, loose):
    raw = loose["sections"]
    small_counts = [(p, v) for p, v in _counts(raw) if v is not None and 0 < v < DEFAULT_MIN_COUNT]
    print(f"loose branch (threshold 1): counts below {DEFAULT_MIN_COUNT} in its kpis.json: {small_counts}")
    assert loose["min_count"] == 1 and small_counts  # it does hold something that must not show
    names = {**NAMES, "loose": "제주느슨점"}
    with_loose = network_summary(MONTH, {**branches, "loose": loose}, names, FAILURES, network="시험 네트워크")
    reasons = {m["id"]: m["reason"] for m in with_loose["missing"]}
    print(f"missing: {reasons}")
    assert reasons == {"broken": FAILURES["broken"], "loose": LOOSE_REASON}
    assert "loose" not in with_loose["reported"] and with_loose["failed"] == ["broken", "loose"]
    assert all(r["id"] != "loose" for r in with_loose["clinics"])
    assert all(r["id"] != "loose" for sec in with_loose["sections"].values() for r in sec["rows"])
    # the others' figures and totals are exactly those of the network without it
    without = network_summary(MONTH, branches, NAMES, FAILURES, network="시험 네트워크")
    assert with_loose["totals"] == without["totals"] and with_loose["sections"] == without["sections"]
    assert with_loose["clinics"] == without["clinics"]
    # the outputs do not depend on its figures at all: the same as a failed branch with that reason
    as_failed = network_summary(MONTH, {**branches, "loose": None}, names, {**FAILURES, "loose": LOOSE_REASON},
                                network="시험 네트워크")
    assert network_json(with_loose) == network_json(as_failed)
    for lang in ("ko", "en"):
        assert network_html(with_loose, lang) == network_html(as_failed, lang)
    # and none of its money figures (distinct won amounts) is printed
    rev = raw["revenue_by_department"]
    money = {v for v in [rev["total"][k] for k in ("insured", "self_pay", "total")]
             + [r["total"] for r in rev["rows"]] if v}
    # the same figures the small branch (threshold 5) shows legitimately are not evidence of a leak
    shown = {v for v in [branches["small"]["sections"]["revenue_by_department"]["total"][k]
                         for k in ("insured", "self_pay", "total")]
             + [r["total"] for r in branches["small"]["sections"]["revenue_by_department"]["rows"]] if v}
    only_loose = {f"{v:,.0f}" for v in money - shown}
    without_small = network_summary(MONTH, {k: v for k, v in branches.items() if k != "small"} | {"loose": loose},
                                    names, FAILURES)
    html, text = network_html(without_small), network_json(without_small)
    all_money = {f"{v:,.0f}" for v in money}
    print(f"loose money figures checked: {len(all_money)} ({len(only_loose)} hidden in the small branch)")
    assert only_loose and len(all_money) >= 4
    assert [m for m in all_money if m in html] == []
    assert [v for v in money if re.search(rf"\b{v:.0f}(?:\.0)?\b", text)] == []


def test_the_artefacts_hold_nothing_personal(summary, demo_clinic, small_clinic, tmp_path):
    from crm_analysis.privacy import personal_values, scan_artefacts

    (tmp_path / "network_kpis.json").write_text(network_json(summary), encoding="utf-8")
    (tmp_path / "network.html").write_text(network_html(summary), encoding="utf-8")
    write_network_pdf(summary, tmp_path / "network.pdf")
    values = personal_values(demo_clinic.patients) + personal_values(small_clinic.patients)
    assert len(values) > 1000
    assert scan_artefacts(sorted(tmp_path.iterdir()), values) == []
