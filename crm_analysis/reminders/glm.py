"""The logistic GLM (Binomial, logit link) behind the adjusted reminder effect.

:func:`fit_binomial` fits ``statsmodels``' ``GLM`` on a dense numpy design
(built by :class:`~crm_analysis.reminders.adjusted.ReminderEffectModel`
without patsy, which was the slow part) with Newton's method, falling back
to IRLS when the Hessian is singular, and patient-clustered errors
(``cov_type="cluster"``). :class:`BinomialGLMFit` keeps the named
coefficients and their covariance.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from crm_analysis.exceptions import InsufficientDataError

__all__ = ["BinomialGLMFit", "fit_binomial"]


class BinomialGLMFit:
    """A fitted logistic GLM: coefficients and their (cluster-robust) covariance.

    The small part of the ``statsmodels`` ``GLMResults`` interface the model
    uses (``params``, ``bse``, ``pvalues``, ``cov_params()``, ``conf_int()``),
    produced by :func:`fit_binomial`; inference is normal-based as in
    ``statsmodels`` GLM.
    """

    def __init__(self, params: pd.Series, cov: np.ndarray, cov_type: str, n_iter: int, deviance: float):
        self.params = params
        self._cov = cov
        self.cov_type = cov_type
        self.n_iter = n_iter
        self.deviance = deviance
        self.bse = pd.Series(np.sqrt(np.maximum(np.diag(cov), 0.0)), index=params.index)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.pvalues = pd.Series(2 * stats.norm.sf(np.abs(params.to_numpy() / self.bse.to_numpy())),
                                     index=params.index)

    def cov_params(self) -> pd.DataFrame:
        return pd.DataFrame(self._cov, index=self.params.index, columns=self.params.index)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        z = stats.norm.ppf(1 - alpha / 2)
        return pd.DataFrame({0: self.params - z * self.bse, 1: self.params + z * self.bse})


def fit_binomial(x: np.ndarray, y: np.ndarray, groups: np.ndarray, names: list[str], cov_type: str,
                  tol: float = 1e-8, max_iter: int = 100) -> BinomialGLMFit:
    """Fit a logistic GLM with ``statsmodels`` and name its coefficients.

    Parameters
    ----------
    x : numpy.ndarray
        Dense design matrix, one row per appointment, columns `names`.
    y : numpy.ndarray
        Outcome, 0 or 1.
    groups : numpy.ndarray
        Cluster codes (patients) for ``cov_type="cluster"``.
    names : list of str
        Column names of `x`.
    cov_type : str
        ``statsmodels`` covariance type, e.g. ``"cluster"`` or ``"nonrobust"``.

    Returns
    -------
    BinomialGLMFit

    Raises
    ------
    InsufficientDataError
        If the fit does not converge or the design is singular (for example under perfect separation, or
        too few appointments for the covariates): thin data, so the monthly run skips the section.
    """
    model = sm.GLM(y, x, family=sm.families.Binomial())
    cov_kwds = {"groups": groups} if "cluster" in cov_type else None
    res, converged = None, False
    try:  # Newton is several times faster than IRLS at 10^5 rows
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = model.fit(method="newton", cov_type=cov_type, cov_kwds=cov_kwds, maxiter=max_iter, tol=tol, disp=0)
        converged = bool(res.mle_retvals.get("converged", False)) and bool(np.all(np.isfinite(res.params)))
    except (np.linalg.LinAlgError, ValueError):
        converged = False
    if not converged:  # a singular Hessian (aliased columns): IRLS solves with a pseudo-inverse
        try:
            res = model.fit(method="irls", cov_type=cov_type, cov_kwds=cov_kwds, maxiter=max_iter)
            converged = bool(res.converged) and bool(np.all(np.isfinite(res.params)))
            converged = converged and bool(np.all(np.isfinite(res.cov_params())))
        except (np.linalg.LinAlgError, ValueError):  # singular even so: too few distinct appointments
            converged = False
    if not converged:  # on a real clinic this is thin data: too few appointments to tell the covariates apart
        raise InsufficientDataError(
            "reminders", f"Reminder evaluation: the logistic model could not be fitted on this clinic's appointments "
                         f"(no convergence in {max_iter} iterations or a singular design: too few appointments for "
                         "its covariates, or reminder steps always sent together); more months of data help.",
            "예약 알림 평가: 예약 자료가 적어 (또는 알림 단계가 늘 함께 발송되어) 노쇼 모형을 추정할 수 없었습니다. "
            "더 긴 기간의 자료가 도움이 됩니다.")
    n_iter = int(res.mle_retvals.get("iterations", 0)) if hasattr(res, "mle_retvals") and res.mle_retvals else 0
    return BinomialGLMFit(pd.Series(np.asarray(res.params), index=names), np.asarray(res.cov_params()), cov_type,
                          n_iter, float(res.deviance))
