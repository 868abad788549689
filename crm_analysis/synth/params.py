"""Every generating parameter of the demo clinic, with its default.

:class:`SynthParams` groups the parameters by sub-process (one frozen dataclass
each). Pass ``params=`` to :func:`crm_analysis.synth.generate_clinic` either as
a :class:`SynthParams` or as a nested dict of overrides, for example
``{"returns": {"dropout_mass": 0.2}, "noshow": {"reminder": {"1d": -0.8}}}``.
All parameters are copied into ``truth.json``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from crm_analysis.synth.catalog import DEPARTMENTS, REGIONS

__all__ = [
    "PopulationParams",
    "ContactQualityParams",
    "ConsentParams",
    "StatusParams",
    "ReturnParams",
    "VisitParams",
    "SpendParams",
    "NoShowParams",
    "ReminderParams",
    "CampaignSpec",
    "FamilyParams",
    "SynthParams",
    "default_campaigns",
]


def _d(mapping: Mapping) -> Any:
    """A default-factory for a dict field (dataclasses forbid mutable defaults)."""
    return field(default_factory=lambda: dict(mapping))


@dataclass(frozen=True)
class PopulationParams:
    """Who the patients are and when they first come."""

    female_share: float = 0.56
    #: Share of patients whose messages go in English (``patients.language`` en; the rest Korean, recorded as missing).
    english_share: float = 0.01
    #: Share of new patients by age band at the first visit.
    age_band_shares: dict = _d({"0-19": 0.16, "20-39": 0.30, "40-59": 0.31, "60+": 0.23})
    oldest_age: int = 92
    #: Yearly growth of the number of new patients (registrations ∝ exp(g·t)).
    annual_growth: float = 0.25
    #: Main department weights by age band; 산부인과 only for women (weight × `obgyn_female_factor`).
    main_department: dict = _d({
        "0-19": {"소아청소년과": 55, "이비인후과": 14, "피부과": 12, "안과": 7, "정형외과": 7, "가정의학과": 5},
        "20-39": {"내과": 18, "피부과": 22, "정형외과": 14, "산부인과": 16, "가정의학과": 10, "이비인후과": 12,
                  "안과": 8},
        "40-59": {"내과": 28, "피부과": 12, "정형외과": 20, "산부인과": 8, "가정의학과": 14, "이비인후과": 9,
                  "안과": 9},
        "60+": {"내과": 34, "정형외과": 26, "안과": 14, "가정의학과": 12, "이비인후과": 7, "피부과": 5,
                "산부인과": 2},
    })
    obgyn_female_factor: float = 1.8
    #: P(self-pay-heavy patient) by main department.
    self_pay_heavy: dict = _d({"내과": 0.04, "소아청소년과": 0.03, "정형외과": 0.25, "피부과": 0.65,
                                "산부인과": 0.15, "가정의학과": 0.08, "이비인후과": 0.04, "안과": 0.20})
    referral_sources: dict = _d({"word_of_mouth": 0.44, "internet": 0.22, "signage": 0.08,
                                  "advertisement": 0.09, "other_clinic": 0.07, "walk_in": 0.07, "other": 0.03})
    #: Share of word-of-mouth patients whose referrer is recorded in ``referred_by``.
    referrer_recorded_share: float = 0.8
    #: Referral propensity of each patient w = 1 + Lomax(alpha), capped (smaller alpha: more super-referrers).
    referrer_pareto_alpha: float = 1.5
    referrer_max_weight: float = 40.0
    regions: dict = _d(REGIONS)
    email_share: dict = _d({"0-19": 0.10, "20-39": 0.55, "40-59": 0.40, "60+": 0.12})
    kakao_user_share: dict = _d({"0-19": 0.90, "20-39": 0.98, "40-59": 0.95, "60+": 0.78})
    phone_missing_share: float = 0.01


@dataclass(frozen=True)
class ContactQualityParams:
    """Patient-level deliverability and engagement."""

    phone_invalid_share: float = 0.02
    kakao_fail_low: float = 0.01
    kakao_fail_high: float = 0.30
    kakao_fail_high_share: float = 0.08
    sms_soft_low: float = 0.01
    sms_soft_high: float = 0.15
    sms_soft_high_share: float = 0.15
    email_invalid_share: float = 0.07
    email_soft_low: float = 0.02
    email_soft_high: float = 0.20
    email_soft_high_share: float = 0.15
    #: Engagement propensity e ~ Beta(a, b).
    engagement_beta: tuple = (1.2, 4.8)
    #: P(opened | delivered) = open_base + open_slope·e (kakao and email; SMS opens are not tracked).
    open_base: float = 0.30
    open_slope: float = 0.60
    #: P(clicked | opened) = e; P(replied | delivered) = reply_slope·e.
    reply_slope: float = 0.25


@dataclass(frozen=True)
class ConsentParams:
    """Marketing consent and opt-outs.

    A patient first agrees to marketing at all with probability ``marketing``
    (the same for everybody, so campaign targeting does not depend on the
    return-model covariates); a consenting patient then agrees per available
    channel with the channel probabilities (SMS when none was picked).
    """

    marketing: float = 0.62
    sms: float = 0.85
    kakao: float = 0.75  # among KakaoTalk users
    email: float = 0.60  # among patients with an email
    night: float = 0.12  # among patients with any marketing consent
    #: Share of consents reconfirmed later; the recorded date is then the reconfirmation.
    reconfirm_share: float = 0.30
    reconfirm_after_days: tuple = (365, 800)
    opt_out_share: float = 0.04  # per channel, over the whole window
    missing_share: float = 0.02  # consent flag left empty


@dataclass(frozen=True)
class StatusParams:
    """record_status assigned at the end of the window."""

    deceased_60plus: float = 0.04
    deceased_other: float = 0.003
    deceased_min_lapse_days: int = 365
    moved: float = 0.05
    moved_min_lapse_days: int = 180


@dataclass(frozen=True)
class ReturnParams:
    """The return-to-visit process (exact proportional hazards).

    S(t|x) = [q + (1-q)·exp(-(t/scale)^shape)]^exp(βᵀx); the mass q is dropout.
    """

    weibull_shape: float = 0.75
    weibull_scale: float = 13.0
    dropout_mass: float = 0.12
    #: Hazard ratios of the non-reference levels (reference: 20-39, M, 내과, not word of mouth, not self-pay heavy).
    hazard_ratios: dict = _d({
        "age_band": {"0-19": 1.10, "40-59": 1.20, "60+": 1.50},
        "sex": {"F": 1.10},
        "main_department": {"소아청소년과": 1.20, "정형외과": 1.80, "피부과": 0.75, "산부인과": 1.00,
                            "가정의학과": 0.85, "이비인후과": 1.05, "안과": 0.70},
        "referral": {"word_of_mouth": 1.25},
        "self_pay_heavy": {"yes": 0.75},
    })


@dataclass(frozen=True)
class VisitParams:
    """Department and type of each visit."""

    main_department_share: float = 0.80
    checkup_share: float = 0.04  # of adults' return visits
    checkup_departments: tuple = ("가정의학과", "내과")
    inpatient_share: dict = _d({"내과": 0.010, "소아청소년과": 0.003, "정형외과": 0.020, "피부과": 0.001,
                                 "산부인과": 0.010, "가정의학과": 0.004, "이비인후과": 0.003, "안과": 0.002})
    inpatient_mean_days: float = 3.5
    inpatient_max_days: int = 30


@dataclass(frozen=True)
class SpendParams:
    """Charges (KRW). total = base × z, z ~ Gamma(p, rate ν_i), ν_i ~ Gamma(q, rate γ)."""

    gg_p: float = 4.0
    gg_q: float = 5.0
    gg_gamma: float = 1.0
    outpatient_base: dict = _d({"내과": 35000, "소아청소년과": 25000, "정형외과": 60000, "피부과": 90000,
                                 "산부인과": 70000, "가정의학과": 40000, "이비인후과": 25000, "안과": 45000})
    checkup_base: float = 150000.0
    inpatient_per_diem: float = 220000.0
    #: P(a visit has self-pay items) by department, for patients who are not self-pay heavy.
    self_pay_any: dict = _d({"내과": 0.15, "소아청소년과": 0.10, "정형외과": 0.40, "피부과": 0.85,
                              "산부인과": 0.35, "가정의학과": 0.25, "이비인후과": 0.10, "안과": 0.30})
    #: Mean self-pay share of a visit that has self-pay items, by department (Beta with `share_concentration`).
    self_pay_mean: dict = _d({"내과": 0.30, "소아청소년과": 0.30, "정형외과": 0.55, "피부과": 0.85,
                               "산부인과": 0.45, "가정의학과": 0.40, "이비인후과": 0.30, "안과": 0.50})
    share_concentration: float = 5.0
    #: Self-pay-heavy patients: P(any self-pay) and the smallest mean share.
    self_pay_any_heavy: float = 0.95
    self_pay_mean_heavy: float = 0.75
    round_to: float = 10.0


@dataclass(frozen=True)
class NoShowParams:
    """Appointments: lead times, walk-ins, no-show logit and cancellations."""

    intercept: float = -3.1
    lead: float = 0.40  # per log1p(lead_days)
    prior: float = 0.45  # per prior no-show, capped at prior_cap
    prior_cap: int = 3
    month: dict = _d({"01": 0.10, "02": 0.05, "03": -0.05, "04": -0.05, "05": 0.00, "06": -0.05,
                       "07": 0.15, "08": 0.20, "09": 0.05, "10": 0.05, "11": -0.10, "12": 0.10})
    trend_per_year: float = -0.05
    department: dict = _d({"소아청소년과": 0.15, "정형외과": -0.05, "피부과": 0.35, "산부인과": -0.15,
                            "가정의학과": 0.05, "이비인후과": 0.10, "안과": 0.00})
    #: Log-odds added for each reminder step actually delivered.
    reminder: dict = _d({"3d": -0.20, "1d": -0.50, "2h": -0.25})
    cancel_base: float = 0.05
    cancel_reminder_bump: float = 0.03
    rescheduled_share: float = 0.35  # of cancellations
    walk_in_first: float = 0.30
    walk_in_return: float = 0.12
    #: Lead-time mixture for return visits: P(0 days), P(1 day), P(2–6 days); the rest are follow-ups 1–6 weeks ahead.
    lead_return: tuple = (0.30, 0.15, 0.12)
    #: Lead-time mixture for a first visit: P(0), P(1); the rest 2–14 days.
    lead_first: tuple = (0.50, 0.20)
    max_lead_days: int = 60
    #: Mean length (days) of the booking window before a first visit.
    first_booking_window: float = 14.0
    #: Appointments are simulated this many days past ``end`` (to create future bookings).
    future_horizon: int = 90


@dataclass(frozen=True)
class ReminderParams:
    """The reminder programme."""

    pilot_month: str = "2024-06"
    pilot_share: float = 0.5
    rollout_1d: str = "2024-09-01"
    rollout_full: str = "2025-09-01"
    min_lead_days: int = 3
    send_hour: int = 10
    earliest_hour: int = 8
    its_months: int = 3


@dataclass(frozen=True)
class CampaignSpec:
    """One past campaign with a randomised holdout."""

    campaign_id: str
    kind: str  # "recall", "vip" or "birthday"
    send_dates: tuple
    window_days: int = 30
    holdout_share: float = 0.2
    #: P(respond | delivered) for a reference patient; patient i: min(1, response_prob·exp(η_i)).
    response_prob: float = 0.10
    min_days_since_visit: int = 0
    max_days_since_visit: int = 100_000
    min_visits: int = 1


def default_campaigns() -> tuple[CampaignSpec, ...]:
    """Quarterly recalls, two VIP invitations and a year of birthday greetings."""
    recalls = ["2024-05-13", "2024-08-12", "2024-11-11", "2025-02-10", "2025-05-12",
               "2025-08-11", "2025-11-10", "2026-02-09", "2026-05-11", "2026-08-10"]
    out = [CampaignSpec(f"RECALL-{d[:7]}", "recall", (d,), window_days=30, holdout_share=0.2, response_prob=0.07,
                        min_days_since_visit=180, max_days_since_visit=730) for d in recalls]
    out += [CampaignSpec(f"VIP-{d[:7]}", "vip", (d,), window_days=30, holdout_share=0.2, response_prob=0.08,
                         max_days_since_visit=60, min_visits=10) for d in ("2024-12-02", "2025-12-01")]
    months = tuple(f"2025-{m:02d}-01" for m in range(1, 13))
    out.append(CampaignSpec("BIRTHDAY-2025", "birthday", months, window_days=30, holdout_share=0.1,
                            response_prob=0.03, max_days_since_visit=365))
    return tuple(out)


@dataclass(frozen=True)
class FamilyParams:
    """Pregnancies followed by the clinic and the children born."""

    birth_share: float = 0.012  # children born, as a share of n_patients
    mother_age: tuple = (20, 45)
    obgyn_weight: float = 6.0  # preference for mothers whose main department is 산부인과
    csection_share: float = 0.45
    miscarriage: float = 0.20  # per delivery
    termination: float = 0.04
    stillbirth: float = 0.005
    ongoing: float = 0.30
    due_offset_sd: float = 7.0
    prenatal_from_day: int = 42  # gestational day from which visits are prenatal (산부인과)
    child_first_visit_days: tuple = (7, 35)
    child_referral_inherit_share: float = 0.5
    vaccination_coverage: float = 0.9  # each scheduled dose is given with this probability (synth/vaccinations.py)
    flu_coverage: float = 0.5  # seasonal influenza, each season


@dataclass(frozen=True)
class SynthParams:
    """All parameters of the demo clinic."""

    population: PopulationParams = field(default_factory=PopulationParams)
    contact: ContactQualityParams = field(default_factory=ContactQualityParams)
    consent: ConsentParams = field(default_factory=ConsentParams)
    status: StatusParams = field(default_factory=StatusParams)
    returns: ReturnParams = field(default_factory=ReturnParams)
    visits: VisitParams = field(default_factory=VisitParams)
    spend: SpendParams = field(default_factory=SpendParams)
    noshow: NoShowParams = field(default_factory=NoShowParams)
    reminders: ReminderParams = field(default_factory=ReminderParams)
    campaigns: tuple = field(default_factory=default_campaigns)
    family: FamilyParams = field(default_factory=FamilyParams)

    def to_dict(self) -> dict:
        """A JSON-ready nested dict of every parameter."""
        return _jsonable(dataclasses.asdict(self))

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> "SynthParams":
        """A copy with nested overrides applied (unknown names raise ``ValueError``)."""
        if not overrides:
            return self
        return _replace(self, overrides, "params")

    def validate(self) -> "SynthParams":
        """Check the few invariants the generator relies on; return self."""
        r = self.returns
        if not (0 < r.dropout_mass < 1 and r.weibull_shape > 0 and r.weibull_scale > 0):
            raise ValueError("returns: need 0 < dropout_mass < 1 and positive Weibull shape and scale")
        if self.noshow.prior < 0 or self.noshow.lead < 0:
            raise ValueError("noshow: lead and prior coefficients must be >= 0")
        if not 0 <= self.noshow.prior_cap <= 6:
            raise ValueError("noshow.prior_cap must be between 0 and 6")
        for name in self.population.main_department["20-39"]:
            if name not in DEPARTMENTS:
                raise ValueError(f"unknown department {name!r}")
        ids = [c.campaign_id for c in self.campaigns]
        if len(set(ids)) != len(ids):
            raise ValueError("campaign ids must be unique")
        return self


def _replace(obj: Any, overrides: Mapping[str, Any], path: str) -> Any:
    if not dataclasses.is_dataclass(obj):
        raise ValueError(f"{path} is not a parameter group")
    names = {f.name for f in dataclasses.fields(obj)}
    changes = {}
    for key, value in overrides.items():
        if key not in names:
            raise ValueError(f"unknown parameter {path}.{key}; known: {', '.join(sorted(names))}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            changes[key] = _replace(current, value, f"{path}.{key}")
        elif key == "campaigns":
            changes[key] = tuple(v if isinstance(v, CampaignSpec) else CampaignSpec(**v) for v in value)
        elif isinstance(current, dict) and isinstance(value, Mapping):
            merged = dict(current)
            for k, v in value.items():
                merged[k] = {**merged[k], **v} if isinstance(merged.get(k), dict) and isinstance(v, Mapping) else v
            changes[key] = merged
        else:
            changes[key] = value
    return dataclasses.replace(obj, **changes)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj
