"""The return-to-visit model: exact proportional hazards with dropout.

For a patient with covariates x and linear predictor η = βᵀx the time T (days)
from a visit to the next one has survival

    S(t | x) = S_b(t) ** exp(η),   S_b(t) = q + (1 − q)·exp(−(t/λ)^k).

The baseline S_b is improper: it levels off at q, so with probability
q ** exp(η) the patient never returns. Drawing ``v = U ** exp(−η)`` (U uniform)
gives S_b(T) = v; v ≤ q means dropout, otherwise ``T = S_0⁻¹((v − q)/(1 − q))``.
Gaps are drawn independently given x (no frailty), so a Cox model on per-gap
data recovers exp(β) exactly (up to the calendar rounding described in
:mod:`crm_analysis.synth.visits`).
"""

from __future__ import annotations

import numpy as np

from crm_analysis.synth.catalog import AGE_BANDS, DEPARTMENTS
from crm_analysis.synth.params import ReturnParams

__all__ = [
    "coefficients",
    "linear_predictor",
    "draw_latent_gap",
    "survival",
    "cumulative_hazard",
    "inverse_cumulative_hazard",
]

_MAX_DAYS = 1.0e7


def coefficients(rp: ReturnParams) -> dict[str, np.ndarray]:
    """Log hazard ratios as lookup arrays indexed by the covariate codes.

    Returns
    -------
    dict
        ``age_band`` (by :data:`AGE_BANDS` code), ``sex`` (0 M, 1 F),
        ``main_department`` (by :data:`DEPARTMENTS` code), ``referral``
        (0 other, 1 word of mouth) and ``self_pay_heavy`` (0 no, 1 yes).
    """
    hr = rp.hazard_ratios
    age = np.array([np.log(hr["age_band"].get(b, 1.0)) for b in AGE_BANDS])
    sex = np.array([0.0, np.log(hr["sex"].get("F", 1.0))])
    dept = np.array([np.log(hr["main_department"].get(d, 1.0)) for d in DEPARTMENTS])
    wom = np.array([0.0, np.log(hr["referral"].get("word_of_mouth", 1.0))])
    heavy = np.array([0.0, np.log(hr["self_pay_heavy"].get("yes", 1.0))])
    return {"age_band": age, "sex": sex, "main_department": dept, "referral": wom, "self_pay_heavy": heavy}


def linear_predictor(age_band, sex, main_dept, word_of_mouth, self_pay_heavy, rp: ReturnParams) -> np.ndarray:
    """η = βᵀx for each patient (all inputs are integer codes, see :func:`coefficients`)."""
    b = coefficients(rp)
    return (b["age_band"][age_band] + b["sex"][sex] + b["main_department"][main_dept]
            + b["referral"][np.asarray(word_of_mouth, dtype=np.int64)]
            + b["self_pay_heavy"][np.asarray(self_pay_heavy, dtype=np.int64)])


def draw_latent_gap(u: np.ndarray, eta: np.ndarray, rp: ReturnParams) -> np.ndarray:
    """Continuous time to the next visit by inverse transform; ``inf`` for a dropout.

    Parameters
    ----------
    u : ndarray
        Uniform(0, 1) draws, one per gap.
    eta : ndarray
        Linear predictor of each gap's patient.
    """
    q = rp.dropout_mass
    v = np.power(u, np.exp(-eta))
    with np.errstate(divide="ignore", invalid="ignore"):
        w = (v - q) / (1.0 - q)
        t = rp.weibull_scale * np.power(-np.log(w), 1.0 / rp.weibull_shape)
    t = np.where(v <= q, np.inf, np.minimum(t, _MAX_DAYS))
    return t


def survival(t: np.ndarray, eta: np.ndarray, rp: ReturnParams) -> np.ndarray:
    """S(t | x) = S_b(t) ** exp(η)."""
    q = rp.dropout_mass
    t = np.maximum(np.asarray(t, dtype=np.float64), 0.0)
    sb = q + (1.0 - q) * np.exp(-np.power(t / rp.weibull_scale, rp.weibull_shape))
    return np.power(sb, np.exp(eta))


def cumulative_hazard(t: np.ndarray, eta: np.ndarray, rp: ReturnParams) -> np.ndarray:
    """Λ(t | x) = −exp(η)·log S_b(t); finite at t = ∞ (dropout)."""
    q = rp.dropout_mass
    t = np.maximum(np.asarray(t, dtype=np.float64), 0.0)
    with np.errstate(over="ignore"):
        sb = q + (1.0 - q) * np.exp(-np.power(t / rp.weibull_scale, rp.weibull_shape))
    return -np.exp(eta) * np.log(sb)


def inverse_cumulative_hazard(cumhaz: np.ndarray, eta: np.ndarray, rp: ReturnParams) -> np.ndarray:
    """The time t with Λ(t | x) = `cumhaz` (which must be below Λ(∞ | x))."""
    q = rp.dropout_mass
    sb = np.exp(-np.asarray(cumhaz, dtype=np.float64) * np.exp(-eta))
    s0 = np.clip((sb - q) / (1.0 - q), 1e-300, 1.0)
    return rp.weibull_scale * np.power(-np.log(s0), 1.0 / rp.weibull_shape)
