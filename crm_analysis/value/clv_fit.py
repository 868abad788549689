"""Maximum-likelihood fits of the CLV model's two parts on sufficient statistics.

BG/NBD needs only each patient's ``(x, t_x, T)`` and Gamma-Gamma only their
``(n, z̄)``, so patients with the same values contribute the same
log-likelihood. The fits here evaluate each *distinct* row once and weight it
by how many patients have it:

- **BG/NBD** on distinct ``(x, t_x, T)`` triples with multiplicities. Every
  patient with no repeat visit shares ``t_x = 0`` and differs only by ``T``,
  so they collapse to at most one row per day of registration; patients with
  repeat visits collapse less (on the 20,000-patient demo, 18,785 triples).
- **Gamma-Gamma** on distinct ``(n, z̄)`` pairs with multiplicities. The
  likelihood has per-frequency sufficient statistics (count and Σ log z̄ per
  ``n``) for every term but ``(p n + q) log(γ + n z̄)``, which has none, so it
  is evaluated once per distinct pair.

Each fit maximises the weighted log-likelihood with its analytic gradient
(L-BFGS-B on log parameters, a few dozen evaluations instead of the several
hundred to thousands of Nelder-Mead), falls back to the Nelder-Mead +
L-BFGS-B fit of :func:`fit_ml` if that does not converge, and takes the Wald
covariance from the same numerical Hessian as :func:`fit_ml`. The estimates
equal the per-patient fit's (``sufficient=False``) to the optimiser's
tolerance (within 5e-7 relative on the demo clinics; ``tests/value/test_clv_fit.py``).

At 1,000,000 patients (the demo's summary resampled, ``benchmarks/bench_clv.py``) the BG/NBD
rows are 482,224 distinct triples and the fit and predictions take about 3 s instead of about 35 s.

References
----------
Fader, Hardie & Lee (2005), "Counting your customers the easy way", eq. 6.
Fader, Hardie & Lee (2005b), "RFM and CLV: using iso-value curves", Gamma-Gamma appendix.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import optimize, special

__all__ = ["MLFit", "fit_bgnbd", "fit_gamma_gamma", "fit_ml", "distinct_rows"]

#: Starting values of (r, α, a, b) and (p, q, γ).
BGNBD_START = (0.5, 1.0, 1.0, 3.0)
GAMMA_GAMMA_START = (2.0, 3.0, 1.0)


class MLFit(NamedTuple):
    """One maximum-likelihood fit.

    Attributes
    ----------
    params : ndarray
        Estimates, in the order of the model's parameters.
    cov_log : ndarray
        Wald covariance of the estimates' logs (inverse Hessian of the negative log-likelihood).
    loglik : float
        Maximised log-likelihood (summed over patients).
    converged : bool
    rows : int
        Rows the likelihood was evaluated on: distinct rows, or patients for the per-patient fit.
    """

    params: np.ndarray
    cov_log: np.ndarray
    loglik: float
    converged: bool
    rows: int


# ----------------------------------------------------------------------------- distinct rows

def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and each element's position among them."""
    return np.unique(values, return_inverse=True)


def distinct_rows(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of equal-length columns by hashing, not sorting.

    Returns
    -------
    first : ndarray of int
        Position of each distinct row's first occurrence (in order of first occurrence).
    inverse : ndarray of int
        Each row's position among the distinct rows, so ``column[first][inverse] == column``.
    """
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for col in columns:
        codes, uniques = pd.factorize(col)   # NaN gets -1: its own value
        key, _ = pd.factorize(key * (len(uniques) + 1) + codes + 1)
        key = key.astype(np.int64)
    first = np.full(key.max(initial=-1) + 1, len(key), dtype=np.int64)
    np.minimum.at(first, key, np.arange(len(key)))
    return first, key


# ----------------------------------------------------------------------------- per-row likelihoods

class _BgnbdData:
    """x, t_x, T as distinct values plus positions: a few hundred each among thousands of patients."""

    def __init__(self, x, tx, T):
        (self.ux, self.ix), (self.utx, self.itx), (self.uT, self.iT) = _distinct(x), _distinct(tx), _distinct(T)
        self.repeat = (self.ux > 0)[self.ix]


def _bgnbd_loglik(params, data: _BgnbdData) -> np.ndarray:
    """BG/NBD log-likelihood per patient (Fader, Hardie & Lee 2005, eq. 6).

    Every term is computed once per distinct x, t_x or T and taken per patient, in the order of
    operations of the per-patient formula, so each patient's value is exactly that formula's.
    """
    r, alpha, a, b = params
    lg = special.gammaln
    ux, d = data.ux, data
    a12 = (lg(r + ux) - lg(r) + r * np.log(alpha)) + (lg(a + b) + lg(b + ux) - lg(b) - lg(a + b + ux))
    rx = r + ux
    a3 = (-rx)[d.ix] * np.log(alpha + d.uT)[d.iT]
    with np.errstate(divide="ignore", invalid="ignore"):
        head = np.log(a) - np.log(np.maximum(b + ux - 1, 1e-300))
        a4 = np.where(d.repeat, head[d.ix] - rx[d.ix] * np.log(alpha + d.utx)[d.itx], -np.inf)
    return a12[d.ix] + np.logaddexp(a3, a4)


class _GammaGammaData:
    """Visits per patient as distinct counts plus positions; log(z̄) and n·z̄ once."""

    def __init__(self, n, zbar):
        self.un, self.i_n = _distinct(n)
        self.log_zbar = np.log(zbar)
        self.n_zbar = n * zbar


def _gg_loglik(params, data: _GammaGammaData) -> np.ndarray:
    """Gamma-Gamma log-likelihood of the mean spend multiplier per patient, term order as per patient."""
    p, q, gamma = params
    lg = special.gammaln
    pn = p * data.un
    head = lg(pn + q) - lg(pn) - lg(q) + q * np.log(gamma)
    i = data.i_n
    return (head[i] + (pn - 1)[i] * data.log_zbar + (pn * np.log(data.un))[i]
            - (pn + q)[i] * np.log(gamma + data.n_zbar))


# ----------------------------------------------------------------------------- weighted likelihoods with gradients

def _dot(u: np.ndarray, v: np.ndarray) -> float:
    """Σ u·v without BLAS: OpenBLAS threads a long dot product and on a busy machine they spin (10-50× slower)."""
    return float(np.einsum("i,i->", u, v))


class _VisitTriples:
    """Distinct (x, t_x, T) rows, their multiplicities and per-x totals of the weights."""

    def __init__(self, x, tx, T):
        first, self.inverse = distinct_rows(x, tx, T)
        self.rows = _BgnbdData(x[first], tx[first], T[first])
        self.w = np.bincount(self.inverse, minlength=len(first)).astype("float64")
        d = self.rows
        self.w_per_x = np.bincount(d.ix, weights=self.w, minlength=len(d.ux))
        self.wx = self.w * d.ux[d.ix]
        self.total = float(self.w.sum())

    def loglik(self, params) -> np.ndarray:
        """Each distinct row's log-likelihood times its multiplicity."""
        return self.w * _bgnbd_loglik(params, self.rows)


def _bgnbd_nll_grad(theta, data: _VisitTriples) -> tuple[float, np.ndarray]:
    """Weighted BG/NBD negative log-likelihood and its gradient in log parameters.

    With ``u = -(r+x) log(α+T)``, ``v = log a - log(b+x-1) - (r+x) log(α+t_x)`` and
    ``s = e^(v - logaddexp(u, v))`` (the share of the "dropped out after the last visit" term),
    ``ℓ = A(x) + logaddexp(u, v)`` and ``∂ℓ = ∂A + (1-s) ∂u + s ∂v``.
    """
    r, alpha, a, b = params = np.exp(theta)
    d, lg, dg = data.rows, special.gammaln, special.digamma
    ux, ix = d.ux, d.ix
    rx = r + ux
    log_aT, log_atx = np.log(alpha + d.uT), np.log(alpha + d.utx)
    u = (-rx)[ix] * log_aT[d.iT]
    with np.errstate(divide="ignore", invalid="ignore"):
        head = np.log(a) - np.log(np.maximum(b + ux - 1, 1e-300))
        v = np.where(d.repeat, head[ix] - rx[ix] * log_atx[d.itx], -np.inf)
    m = np.logaddexp(u, v)
    s = np.exp(v - m)                      # 0 where there is no repeat visit
    w, ws = data.w, data.w * s
    wu = w - ws                            # w (1 - s) without cancellation for s ≈ 0
    A = (lg(rx) - lg(r) + r * np.log(alpha)) + (lg(a + b) + lg(b + ux) - lg(b) - lg(a + b + ux))
    ll = _dot(data.w_per_x, A) + _dot(w, m)
    c = data.w_per_x
    inv_aT, inv_atx = 1.0 / (alpha + d.uT), 1.0 / (alpha + d.utx)
    g_r = _dot(c, dg(rx) - dg(r) + np.log(alpha)) - _dot(wu, log_aT[d.iT]) - _dot(ws, log_atx[d.itx])
    rxw_u, rxw_s = r * wu + data.wx * (1 - s), r * ws + data.wx * s
    g_alpha = data.total * r / alpha - _dot(rxw_u, inv_aT[d.iT]) - _dot(rxw_s, inv_atx[d.itx])
    ws_x = np.bincount(ix, weights=ws, minlength=len(ux))
    g_a = _dot(c, dg(a + b) - dg(a + b + ux)) + ws_x.sum() / a
    with np.errstate(divide="ignore"):
        inv_b = np.where(ux > 0, 1.0 / np.maximum(b + ux - 1, 1e-300), 0.0)
    g_b = _dot(c, dg(a + b) + dg(b + ux) - dg(b) - dg(a + b + ux)) - _dot(ws_x, inv_b)
    grad = np.array([g_r, g_alpha, g_a, g_b]) * params
    return -ll, -grad


class _SpendPairs:
    """Distinct (n, z̄) rows, their multiplicities, and per-n count and Σ log z̄ (sufficient statistics)."""

    def __init__(self, n, zbar):
        first, inverse = distinct_rows(n, zbar)
        self.rows = _GammaGammaData(n[first], zbar[first])
        self.w = np.bincount(inverse, minlength=len(first)).astype("float64")
        d = self.rows
        self.count = np.bincount(d.i_n, weights=self.w, minlength=len(d.un))
        self.sum_log_zbar = np.bincount(d.i_n, weights=self.w * d.log_zbar, minlength=len(d.un))
        self.total = float(self.w.sum())

    def loglik(self, params) -> np.ndarray:
        """Each distinct row's log-likelihood times its multiplicity."""
        return self.w * _gg_loglik(params, self.rows)


def _gg_nll_grad(theta, data: _SpendPairs) -> tuple[float, np.ndarray]:
    """Weighted Gamma-Gamma negative log-likelihood and its gradient in log parameters.

    Per ``n``: ``c_n [lnΓ(pn+q) - lnΓ(pn) - lnΓ(q) + q log γ + pn log n] + (pn - 1) Σ log z̄``;
    per distinct row: ``-(pn + q) log(γ + n z̄)``.
    """
    p, q, gamma = params = np.exp(theta)
    d, lg, dg = data.rows, special.gammaln, special.digamma
    un, c = d.un, data.count
    pn = p * un
    log_n = np.log(un)
    L = np.log(gamma + d.n_zbar)
    wL = np.bincount(d.i_n, weights=data.w * L, minlength=len(un))
    wR = np.bincount(d.i_n, weights=data.w / (gamma + d.n_zbar), minlength=len(un))
    ll = (_dot(c, lg(pn + q) - lg(pn) - lg(q) + q * np.log(gamma) + pn * log_n)
          + _dot(pn - 1, data.sum_log_zbar) - _dot(pn + q, wL))
    dpq = dg(pn + q)
    g_p = _dot(un, c * (dpq - dg(pn) + log_n) + data.sum_log_zbar - wL)
    g_q = _dot(c, dpq - dg(q) + np.log(gamma)) - wL.sum()
    g_gamma = data.total * q / gamma - _dot(pn + q, wR)
    grad = np.array([g_p, g_q, g_gamma]) * params
    return -ll, -grad


# ----------------------------------------------------------------------------- optimisers

def fit_ml(loglik, start, args) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """Maximum likelihood on log parameters by Nelder-Mead, polished by L-BFGS-B.

    Parameters
    ----------
    loglik : callable
        ``loglik(params, *args)`` returns log-likelihood terms; their sum is maximised.
    start : sequence of float
        Starting parameters (positive).
    args : tuple
        Further arguments of `loglik`.

    Returns
    -------
    params, cov_log, loglik, converged
        Estimates, Wald covariance of their logs (numerical Hessian), maximised log-likelihood, and
        whether Nelder-Mead or the polish converged.
    """
    def nll(theta):
        val = -np.sum(loglik(np.exp(theta), *args))
        return val if np.isfinite(val) else 1e300

    res = optimize.minimize(nll, np.log(start), method="Nelder-Mead",
                            options={"maxiter": 4000, "xatol": 1e-7, "fatol": 1e-9})
    polished = optimize.minimize(nll, res.x, method="L-BFGS-B")
    # L-BFGS-B often stops on its line search at an optimum Nelder-Mead already found: converged
    # means Nelder-Mead converged and polishing did not find a better point far away
    ok = bool(res.success or polished.success)
    if polished.fun <= res.fun:
        res = polished
    theta = res.x
    cov = np.linalg.pinv(_hessian(nll, theta))
    return np.exp(theta), cov, -res.fun, ok


def _hessian(f, x, eps=1e-4):
    k = len(x)
    h = np.zeros((k, k))
    for i in range(k):
        for j in range(i, k):
            ei, ej = np.eye(k)[i] * eps, np.eye(k)[j] * eps
            h[i, j] = h[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * eps ** 2)
    return h


#: Largest |gradient| of the mean negative log-likelihood (per patient, log parameters) accepted as converged.
_GRAD_TOL = 1e-9


def _fit_weighted(nll_grad, start, data) -> MLFit:
    """Gradient fit of a weighted likelihood; Nelder-Mead (:func:`fit_ml`) if it does not converge.

    L-BFGS-B on the mean negative log-likelihood gets close; a few Newton steps on the analytic
    gradient (Hessian by central differences of the gradient) then finish where the function values
    no longer resolve the remaining improvement but the gradient still does. That Hessian also gives
    the Wald covariance.
    """
    scale = 1.0 / data.total   # mean per patient: the tolerances do not depend on the clinic's size

    def mean_nll(theta):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            f, g = nll_grad(theta, data)
        if not (np.isfinite(f) and np.all(np.isfinite(g))):
            return 1e300, np.zeros_like(g)
        return f * scale, g * scale

    res = optimize.minimize(mean_nll, np.log(start), jac=True, method="L-BFGS-B",
                            options={"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-8, "maxcor": 20})
    theta, hess = _newton_polish(lambda th: mean_nll(th)[1], res.x)
    f, g = mean_nll(theta)
    if f < 1e300 and np.max(np.abs(g)) <= _GRAD_TOL and np.all(np.linalg.eigvalsh(hess) > 0):
        cov = np.linalg.pinv(hess / scale)
        return MLFit(np.exp(theta), cov, -f / scale, True, len(data.w))
    est, cov, ll, ok = fit_ml(lambda params: data.loglik(params), start, ())
    return MLFit(est, cov, ll, ok, len(data.w))


def _newton_polish(grad, theta, steps: int = 6, h: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Newton steps on `grad` from `theta` while they shrink the gradient; returns the point and its Hessian."""
    eye = np.eye(len(theta)) * h

    def hessian(th):
        j = np.array([(grad(th + e) - grad(th - e)) / (2 * h) for e in eye])
        return (j + j.T) / 2

    g, hess = grad(theta), hessian(theta)
    for _ in range(steps):
        if np.max(np.abs(g)) <= 1e-13:
            break
        try:
            trial = theta - np.linalg.solve(hess, g)
        except np.linalg.LinAlgError:
            break
        g_trial = grad(trial)
        if not np.max(np.abs(g_trial)) < np.max(np.abs(g)):
            break
        theta, g, hess = trial, g_trial, hessian(trial)
    return theta, hess


def fit_bgnbd(x, t_x, T, *, sufficient: bool = True) -> MLFit:
    """Fit BG/NBD ``(r, α, a, b)`` to repeat visits `x`, time of the last one `t_x` and time observed `T`.

    Parameters
    ----------
    x, t_x, T : ndarray
        Per patient, ``t_x`` and ``T`` in the model's time unit.
    sufficient : bool
        Fit on distinct ``(x, t_x, T)`` rows with multiplicities (default), or per patient with
        Nelder-Mead as before (the reference the default is tested against).

    Returns
    -------
    MLFit
    """
    x, t_x, T = (np.asarray(v, dtype="float64") for v in (x, t_x, T))
    if not sufficient:
        return MLFit(*fit_ml(_bgnbd_loglik, BGNBD_START, (_BgnbdData(x, t_x, T),)), len(x))
    return _fit_weighted(_bgnbd_nll_grad, BGNBD_START, _VisitTriples(x, t_x, T))


def fit_gamma_gamma(n, zbar, *, sufficient: bool = True) -> MLFit:
    """Fit Gamma-Gamma ``(p, q, γ)`` to visits with a charge `n` and mean spend multiplier `zbar`.

    Parameters
    ----------
    n, zbar : ndarray
        Per patient with at least one charged visit.
    sufficient : bool
        Fit on distinct ``(n, z̄)`` rows with multiplicities and per-``n`` sufficient statistics
        (default), or per patient with Nelder-Mead as before.

    Returns
    -------
    MLFit
    """
    n, zbar = np.asarray(n, dtype="float64"), np.asarray(zbar, dtype="float64")
    if not sufficient:
        return MLFit(*fit_ml(_gg_loglik, GAMMA_GAMMA_START, (_GammaGammaData(n, zbar),)), len(n))
    return _fit_weighted(_gg_nll_grad, GAMMA_GAMMA_START, _SpendPairs(n, zbar))
