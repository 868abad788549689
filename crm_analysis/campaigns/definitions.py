"""Campaign definitions as data: load the shipped YAML, merge a clinic's override, validate.

The defaults are ``crm_analysis/rules/campaigns.yaml`` (its header documents
every key). An override (a YAML path or a dict) is merged on top: the
``sender``, ``rules``, ``suppression``, ``evaluation`` and ``channel_cost_krw``
sections key by key, campaigns by ``id`` (an override entry with
``enabled: false`` removes a campaign; a new id adds one).

Everything is validated before anything is produced, and every template is
rendered once with sample values and run through the messaging rules
(:func:`crm_analysis.campaigns.compliance.check_template`), so a template that
breaks a rule (say an advertising message without the free opt-out line) is
rejected with a clear error.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from crm_analysis.campaigns.compliance import check_template
from crm_analysis.campaigns.templates import AUDIENCE_FIELDS, COMMON_FIELDS, template_fields
from crm_analysis.contract import CHANNELS
from crm_analysis.exceptions import CampaignConfigError
from crm_analysis.rule_files import read_rule_yaml

__all__ = ["DEFAULT_PATH", "KINDS", "Campaign", "CampaignConfig", "load_campaigns"]

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "rules" / "campaigns.yaml"
KINDS = ("advertising", "transactional")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_SECTIONS = ("sender", "rules", "suppression", "evaluation", "channel_cost_krw", "message_cost_krw")
#: Message types that must be priced (:mod:`crm_analysis.campaigns.message_types`).
_PRICED = ("sms", "lms", "alimtalk", "friendtalk", "email")
#: Audiences whose messages are always advertising (they promote the clinic's services).
ADVERTISING_AUDIENCES = frozenset({"vip_event", "vip_birthday", "recall"})
#: Daytime hours in which advertising needs no night-time consent (정보통신망법 제50조 ③).
LAW_DAY = ("08:00", "21:00")
#: Longest time a marketing consent stays valid without reconfirmation (2 years, in days).
LAW_CONSENT_DAYS = 730


@dataclass(frozen=True)
class Campaign:
    """One validated campaign definition (see ``crm_analysis/rules/campaigns.yaml``)."""

    id: str
    kind: str
    audience: str
    channels: tuple[str, ...]
    templates: Mapping[str, str]
    send: Mapping[str, Any]
    max_per_month: int
    holdout_share: float
    priority: int
    family: bool = False
    cap_exempt: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def advertising(self) -> bool:
        """True for an advertising (광고) campaign: consent, text, night and holdout rules apply."""
        return self.kind == "advertising"

    def run_id(self, period_start) -> str:
        """The id of this campaign's run for the month of `period_start` (``RECALL-2026-11``)."""
        return f"{self.id}-{period_start:%Y-%m}"


@dataclass(frozen=True)
class CampaignConfig:
    """All campaign settings: sender, rules, suppression, evaluation, costs and the campaigns."""

    sender: Mapping[str, str]
    rules: Mapping[str, Any]
    suppression: Mapping[str, Any]
    evaluation: Mapping[str, Any]
    channel_cost_krw: Mapping[str, float]
    campaigns: tuple[Campaign, ...]
    message_cost_krw: Mapping[str, float] = field(default_factory=dict)

    def __getitem__(self, key: str):
        return getattr(self, key)

    def campaign(self, campaign_id: str) -> Campaign:
        """The campaign with id `campaign_id`.

        Raises
        ------
        KeyError
            If no campaign has that id (the message lists the known ids).
        """
        for c in self.campaigns:
            if c.id == campaign_id:
                return c
        raise KeyError(f"no campaign {campaign_id!r}; known: {[c.id for c in self.campaigns]}")


def _read(source: str | Path | Mapping | None) -> dict:
    return read_rule_yaml(source, what="campaign", error=CampaignConfigError)


@lru_cache(maxsize=1)
def _shipped() -> dict:
    """The shipped definitions, parsed once per process (:func:`_merge` copies before changing anything)."""
    return _read(DEFAULT_PATH)


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    unknown = set(override) - {*_SECTIONS, "campaigns"}
    if unknown:
        raise CampaignConfigError(f"unknown campaign config section(s) {sorted(unknown)}; "
                                  f"allowed: {[*_SECTIONS, 'campaigns']}")
    for key in _SECTIONS:
        if key in override:
            out[key] = {**out.get(key, {}), **(override[key] or {})}
    by_id = {c["id"]: c for c in out.get("campaigns", [])}
    for entry in override.get("campaigns", []) or []:
        if "id" not in entry:
            raise CampaignConfigError(f"every campaign override needs an 'id'; got {entry!r}")
        by_id[entry["id"]] = {**by_id.get(entry["id"], {}), **entry}
    out["campaigns"] = [c for c in by_id.values() if c.get("enabled", True)]
    return out


def _campaign(raw: Mapping, sender: Mapping, rules: Mapping) -> Campaign:
    cid = raw.get("id")
    where = f"campaign {cid!r}"
    for key in ("id", "kind", "audience", "channels", "templates", "send"):
        if key not in raw:
            raise CampaignConfigError(f"{where} lacks '{key}'; see {DEFAULT_PATH.name} for an example")
    if raw["kind"] not in KINDS:
        raise CampaignConfigError(f"{where}: kind must be one of {KINDS}, not {raw['kind']!r}")
    if raw["audience"] not in AUDIENCE_FIELDS:
        raise CampaignConfigError(f"{where}: audience must be one of {sorted(AUDIENCE_FIELDS)}, not {raw['audience']!r}")
    channels = tuple(raw["channels"])
    if not channels or set(channels) - set(CHANNELS) or len(set(channels)) != len(channels):
        raise CampaignConfigError(f"{where}: channels must be distinct values from {CHANNELS}, not {list(channels)}")
    templates = dict(raw["templates"])
    if set(templates) != {"ko", "en"}:
        raise CampaignConfigError(f"{where}: templates need exactly a Korean 'ko' and an English 'en' text")
    allowed = {*COMMON_FIELDS, *AUDIENCE_FIELDS[raw["audience"]]}
    for lang, text in templates.items():
        unknown = set(template_fields(text)) - allowed
        if unknown:
            raise CampaignConfigError(f"{where}, template {lang!r}: unknown field(s) {sorted(unknown)}; "
                                      f"this audience offers {sorted(allowed)}")
    send = dict(raw["send"])
    times = [send.get("time", "10:00"), *send.get("window", ["08:00", "21:00"])]
    if len(times) != 3 or not all(_HHMM.match(str(t)) for t in times):
        raise CampaignConfigError(f"{where}: send.time and send.window need HH:MM times, e.g. time: '10:00', "
                                  f"window: ['09:00', '20:00']; got {send}")
    if not times[1] <= times[0] < times[2]:
        raise CampaignConfigError(f"{where}: send.time {times[0]} must lie in the window [{times[1]}, {times[2]})")
    share = float(raw.get("holdout_share", 0.0))
    if not 0.0 <= share < 1.0:
        raise CampaignConfigError(f"{where}: holdout_share must be in [0, 1), not {share}")
    if raw["audience"] in ADVERTISING_AUDIENCES and raw["kind"] != "advertising":
        raise CampaignConfigError(f"{where}: a {raw['audience']} message is advertising (광고); set kind: advertising "
                                  "so consent, the (광고) prefix, the opt-out line and the night rule apply")
    if raw.get("cap_exempt", False) and raw["audience"] != "appointment_reminder":
        raise CampaignConfigError(f"{where}: only appointment reminders may be cap_exempt; remove cap_exempt")
    if raw["kind"] == "advertising" and share <= 0.0:
        raise CampaignConfigError(f"{where}: every advertising campaign holds back a control group; "
                                  "set holdout_share above 0 (e.g. 0.1)")
    cap = int(raw.get("max_per_month", 1))
    if cap < 1:
        raise CampaignConfigError(f"{where}: max_per_month must be at least 1")
    check_template(cid, raw["kind"], templates, sender, rules)
    known = {"id", "kind", "audience", "channels", "templates", "send", "max_per_month", "holdout_share",
             "priority", "family", "cap_exempt", "enabled"}
    options = {k: v for k, v in raw.items() if k not in known}
    return Campaign(id=str(cid), kind=raw["kind"], audience=raw["audience"], channels=channels, templates=templates,
                    send={"time": times[0], "window": (times[1], times[2]), **{k: v for k, v in send.items()
                                                                           if k not in ("time", "window")}},
                    max_per_month=cap, holdout_share=share, priority=int(raw.get("priority", 100)),
                    family=bool(raw.get("family", False)), cap_exempt=bool(raw.get("cap_exempt", False)),
                    options=options)


def load_campaigns(override: str | Path | Mapping | CampaignConfig | None = None) -> CampaignConfig:
    """The shipped campaign definitions, with `override` merged on top, validated.

    Parameters
    ----------
    override : path, dict or CampaignConfig, optional
        A clinic's own YAML file or dict (merged as described in the module
        docstring). A ready CampaignConfig is returned unchanged.

    Returns
    -------
    CampaignConfig

    Raises
    ------
    CampaignConfigError
        Naming the campaign and the fix, for any invalid setting or a template
        that breaks the messaging rules.

    Examples
    --------
    >>> cfg = load_campaigns({"campaigns": [{"id": "RECALL", "holdout_share": 0.3}]})
    >>> cfg.campaign("RECALL").holdout_share
    0.3
    """
    if isinstance(override, CampaignConfig):
        return override
    raw = _merge(_shipped(), _read(override))
    sender, rules = raw["sender"], raw["rules"]
    for key in ("name", "contact", "opt_out"):
        if not sender.get(key):
            raise CampaignConfigError(f"sender.{key} is empty; advertising law requires the sender's name, contact "
                                      "and a free opt-out number")
    for key in ("day_start", "day_end"):
        if not _HHMM.match(str(rules.get(key, ""))):
            raise CampaignConfigError(f"rules.{key} must be HH:MM, not {rules.get(key)!r}")
    # an override may tighten the legal limits, never loosen them
    if not LAW_DAY[0] <= str(rules["day_start"]) < str(rules["day_end"]) <= LAW_DAY[1]:
        raise CampaignConfigError(f"rules.day_start/day_end ({rules['day_start']}–{rules['day_end']}) must lie "
                                  f"within {LAW_DAY[0]}–{LAW_DAY[1]}: advertising between 21:00 and 08:00 "
                                  "needs night-time consent")
    valid_days = rules.get("consent_valid_days")
    if not isinstance(valid_days, int) or isinstance(valid_days, bool) or not 0 < valid_days <= LAW_CONSENT_DAYS:
        raise CampaignConfigError(f"rules.consent_valid_days must be a whole number of days in 1..{LAW_CONSENT_DAYS}, "
                                  f"not {valid_days!r}: marketing consent must be given or reconfirmed within "
                                  "2 years")
    ids = [c.get("id") for c in raw["campaigns"]]
    if len(set(ids)) != len(ids):
        raise CampaignConfigError(f"campaign ids must be unique: {ids}")
    prices = dict(raw.get("message_cost_krw") or {})
    for key in _PRICED:
        value = prices.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise CampaignConfigError(f"message_cost_krw.{key} must be a price in won (a number ≥ 0), not {value!r}; "
                                      f"price every message type: {', '.join(_PRICED)}")
    if rules.get("message_lang", "ko") not in ("ko", "en"):
        raise CampaignConfigError(f"rules.message_lang must be ko or en, not {rules.get('message_lang')!r}")
    campaigns = tuple(_campaign(c, sender, rules) for c in raw["campaigns"])
    return CampaignConfig(sender=sender, rules=rules, suppression=raw["suppression"], evaluation=raw["evaluation"],
                          channel_cost_krw=raw["channel_cost_krw"], campaigns=campaigns, message_cost_krw=prices)
