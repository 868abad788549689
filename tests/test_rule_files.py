"""One reader for every rule file: the same three errors, naming the file, whichever analysis reads it."""

from __future__ import annotations

import pytest

from crm_analysis.campaigns.definitions import load_campaigns
from crm_analysis.churn.rules import load_churn_rules
from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.reminders.rules import load_rules as load_reminder_rules
from crm_analysis.rule_files import read_rule_yaml
from crm_analysis.schedules import load_prenatal_schedule, load_vaccination_schedule
from crm_analysis.value.loyalty import loyalty_rules
from crm_analysis.value.segmentation import segment_rules
from crm_analysis.value.vip import vip_rules

READERS = {"segments": segment_rules, "vip": vip_rules, "loyalty": loyalty_rules, "campaigns": load_campaigns,
           "churn": load_churn_rules, "reminders": load_reminder_rules, "prenatal_schedule": load_prenatal_schedule,
           "vaccination_schedule": load_vaccination_schedule}
BAD = {"missing": (None, "does not exist"),
       "invalid": ("segments: [oops\n", "is not valid YAML"),
       "list": ("- just\n- a list\n", "must be a YAML mapping")}


@pytest.mark.parametrize("bad", sorted(BAD))
@pytest.mark.parametrize("reader", sorted(READERS))
def test_every_rule_reader_gives_the_same_clear_error(reader, bad, tmp_path):
    path = tmp_path / f"{reader}.yaml"
    text, message = BAD[bad]
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(CrmAnalysisError, match=message) as caught:
        READERS[reader](path)
    assert isinstance(caught.value, ValueError), "bad input: the command exits with status 2"
    assert path.name in str(caught.value) and len(str(caught.value)) < 400


def test_a_byte_order_mark_an_empty_file_and_a_mapping(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_bytes("\ufeffcatch_all: 기타\n".encode("utf-8"))
    assert read_rule_yaml(path, what="segment") == {"catch_all": "기타"}
    path.write_text("", encoding="utf-8")
    assert read_rule_yaml(path, what="segment") == {}
    given = {"a": {"b": [1]}}
    got = read_rule_yaml(given, what="segment")
    got["a"]["b"].append(2)
    assert given == {"a": {"b": [1]}}, "the mapping given is copied, not changed"
    assert read_rule_yaml(None, what="segment") == {}
