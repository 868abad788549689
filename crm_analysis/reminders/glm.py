"""The logistic GLM (Binomial, logit link) behind the adjusted reminder effect.

:func:`fit_binomial` fits ``statsmodels``' ``GLM`` on a dense numpy design
(built by :class:`~crm_analysis.reminders.adjusted.ReminderEffectModel`
without patsy, which was the slow part) by Newton's method and computes the
patient-clustered (CRV1) covariance itself, with the formula of
``statsmodels``' ``cov_type="cluster"`` (:func:`cluster_covariance`).
:class:`BinomialGLMFit` keeps the named coefficients and their covariance.

Speed, at 10^5–10^6 appointments:

* when at most half the design rows are distinct (exports with days only
  repeat rows: 84,071 appointments of the Kaggle export make 11,896
  patterns), the GLM is fitted on the distinct rows with successes and
  trials, which gives the same likelihood, estimates and Hessian; the demo
  clinic's daily trend makes 85% of its rows distinct, so it is fitted on
  the rows;
* Newton starts from a fit on a systematic subsample, so the full data takes
  about four Newton steps instead of seven (plus three IRLS start steps, each
  a pseudo-inverse);
* the sandwich reuses the fit's inverse Hessian and sums score × design per
  patient with one sparse product, instead of ``statsmodels``' second pass
  through an N × K score matrix and the Hessian;
* BLAS runs on one thread (:func:`crm_analysis.threads.one_blas_thread`).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import sparse, stats
from statsmodels.tools.sm_exceptions import HessianInversionWarning

from crm_analysis.exceptions import InsufficientDataError
from crm_analysis.threads import one_blas_thread

__all__ = ["BinomialGLMFit", "fit_binomial", "cluster_covariance"]

#: Rows of the subsample that gives Newton's starting values (no subsample below four times this).
_START_ROWS = 40_000
#: Non-zero rows a column needs in the subsample; a rarer column brings all its rows.
_START_PER_COLUMN = 200
#: Fit on the distinct design rows when they are at most this share of the rows.
_PATTERN_SHARE = 0.5


class _GLM(sm.GLM):
    """``statsmodels``' GLM, taking the design's rank from the K × K cross-product.

    ``GLM.initialize`` takes it from an SVD of the N × K design: a quarter of a second per model at 350,000
    appointments, four models a month. The cross-product has the same rank (it only sets ``df_model`` and
    ``df_resid``, which neither the binomial scale nor the clustered covariance uses).
    """

    def initialize(self):
        exog = np.asarray(self.exog)
        rank = np.linalg.matrix_rank(exog.T @ exog, hermitian=True) if exog.shape[0] > exog.shape[1] \
            else np.linalg.matrix_rank(exog)
        self.df_model = rank - 1
        weighted = self.freq_weights is not None and self.freq_weights.shape[0] == self.endog.shape[0]
        self.wnobs = self.freq_weights.sum() if weighted else self.exog.shape[0]
        self.df_resid = self.wnobs - self.df_model - 1


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


def cluster_covariance(score_obs: np.ndarray, hessian: np.ndarray, groups) -> np.ndarray:
    """CRV1 cluster-robust covariance, as ``statsmodels``' ``cov_type="cluster"`` computes it.

    ``H⁻¹ (Σ_g s_g s_gᵀ) H⁻¹ · G/(G−1) · (N−1)/(N−K)``, where ``s_g`` sums the
    score rows of cluster ``g`` (``statsmodels.stats.sandwich_covariance.cov_cluster``
    with ``use_correction=True``).

    Parameters
    ----------
    score_obs : numpy.ndarray
        Score (gradient of the log-likelihood) of each observation, N × K.
    hessian : numpy.ndarray
        Hessian of the log-likelihood, K × K.
    groups : array-like
        Cluster label of each observation.

    Returns
    -------
    numpy.ndarray
        K × K covariance of the parameters.

    Raises
    ------
    numpy.linalg.LinAlgError
        If the Hessian is singular.
    """
    member, n_groups = _membership(groups)
    return _crv1(np.asarray(member @ score_obs), np.linalg.inv(hessian), n_groups, score_obs.shape[0])


def _membership(groups, weights=None, columns=None, n_columns=None) -> tuple[sparse.csr_matrix, int]:
    """Clusters × observations indicator (or `weights`) matrix, and the number of clusters.

    With `columns` (the pattern of each observation), clusters × patterns: the weights of a cluster's
    observations of one pattern are summed.
    """
    codes, uniques = pd.factorize(np.asarray(groups))
    n_obs = len(codes)
    data = np.ones(n_obs) if weights is None else weights
    columns = np.arange(n_obs) if columns is None else columns
    shape = (len(uniques), n_obs if n_columns is None else n_columns)
    return sparse.csr_matrix((data, (codes, columns)), shape=shape), len(uniques)


def _crv1(sums: np.ndarray, hessian_inv: np.ndarray, n_groups: int, n_obs: int) -> np.ndarray:
    """The CRV1 sandwich from per-cluster score sums (G × K), the inverse Hessian and the number of observations."""
    k = sums.shape[1]
    cov = hessian_inv @ (sums.T @ sums) @ hessian_inv.T
    return cov * (n_groups / (n_groups - 1.0) * ((n_obs - 1.0) / float(n_obs - k)))


def _patterns(x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The distinct rows of `x` as (first row of each, pattern of each row); None when more than
    :data:`_PATTERN_SHARE` of the rows are distinct.

    Rows are grouped by a random projection, then the grouping is checked exactly (a collision only means
    no collapsing), so it costs one product on data whose rows are mostly distinct.
    """
    key = x @ np.random.default_rng(0).standard_normal(x.shape[1])
    pattern, distinct = pd.factorize(key, use_na_sentinel=False)
    if len(distinct) > _PATTERN_SHARE * len(x):
        return None
    first = np.unique(pattern, return_index=True)[1]
    return (first, pattern) if np.array_equal(x[first][pattern], x) else None


def _start_params(x: np.ndarray, y: np.ndarray, max_iter: int) -> np.ndarray | None:
    """Newton's starting values on large data (None on small data: ``statsmodels``' default start).

    A fit on every k-th row plus every row where a rare column is non-zero, so that each coefficient is
    estimable (choosing rows by their covariates leaves a logistic model's coefficients unbiased); zeros
    when that fit fails.
    """
    step = len(y) // _START_ROWS
    if step < 4:
        return None
    keep = np.zeros(len(y), dtype=bool)  # `y` may be successes and failures of distinct rows
    keep[::step] = True
    rare = np.count_nonzero(x, axis=0) < _START_PER_COLUMN * step
    if rare.any():
        keep |= (x[:, rare] != 0).any(axis=1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = _GLM(y[keep], x[keep], family=sm.families.Binomial()).fit(
                method="newton", max_start_irls=0, maxiter=min(max_iter, 30), tol=1e-6, disp=0)
        params = np.asarray(res.params)
        if res.mle_retvals.get("converged", False) and np.all(np.isfinite(params)):
            return params
    except (np.linalg.LinAlgError, ValueError):
        pass
    return np.zeros(x.shape[1])


def _fit(model, method: str, start, cov_type: str, groups, tol: float, max_iter: int, rows=None):
    """One attempt: (results, covariance), or None when it fails (no convergence, singular Hessian).

    `rows`: (pattern of each row, outcome of each row) when `model` is fitted on distinct rows.
    """
    own_cluster = cov_type == "cluster"  # CRV1 below; other types from statsmodels
    sm_cov = "nonrobust" if own_cluster else cov_type
    cov_kwds = {"groups": groups} if "cluster" in sm_cov else None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if method == "irls":
                res = model.fit(method="irls", cov_type=sm_cov, cov_kwds=cov_kwds, maxiter=max_iter)
                converged = bool(res.converged)
            else:
                kwds = {} if start is None else {"start_params": start, "max_start_irls": 0}
                res = model.fit(method="newton", cov_type=sm_cov, cov_kwds=cov_kwds, maxiter=max_iter, tol=tol,
                                disp=0, **kwds)
                converged = bool(res.mle_retvals.get("converged", False))
            params = np.asarray(res.params)
            if not (converged and np.all(np.isfinite(params))):
                return None
            if own_cluster:
                cov = _cluster_cov(model, res, method, groups, caught, rows)
            else:
                cov = np.asarray(res.cov_params())
    except (np.linalg.LinAlgError, ValueError):
        return None
    if method == "irls" and not np.all(np.isfinite(cov)):
        return None
    return res, cov


def _cluster_cov(model, res, method: str, groups, caught, rows=None) -> np.ndarray:
    """CRV1 covariance of a fit, without the N × K score matrix (cluster sums of score factor × exog).

    Newton's fit already inverted the Hessian at the estimates (its ``normalized_cov_params``, scale 1 for
    the binomial); IRLS's comes from a pseudo-inverse, so the Hessian is inverted here, as statsmodels does.
    On distinct rows (`rows` given) the scores are still each appointment's, y − p with the logit link.
    """
    params = np.asarray(res.params)
    if method == "irls":
        hessian_inv = np.linalg.inv(model.hessian(params))
    elif any(issubclass(w.category, HessianInversionWarning) for w in caught):
        raise np.linalg.LinAlgError("singular Hessian")  # statsmodels' inversion failed
    else:
        hessian_inv = np.asarray(res.normalized_cov_params)
    if rows is None:
        factor = model.score_factor(params)
        member, n_groups = _membership(groups, factor)
    else:
        pattern, y = rows
        factor = y - model.predict(params)[pattern]
        member, n_groups = _membership(groups, factor, pattern, len(model.exog))
    return _crv1(np.asarray(member @ model.exog), hessian_inv, n_groups, len(factor))


def fit_binomial(x: np.ndarray, y: np.ndarray, groups: np.ndarray, names: list[str], cov_type: str,
                 tol: float = 1e-8, max_iter: int = 100) -> BinomialGLMFit:
    """Fit a logistic GLM with ``statsmodels`` and name its coefficients.

    Newton's method (from a subsample fit's estimates on large data, else
    from ``statsmodels``' default start), then Newton from the default start,
    then IRLS, whose pseudo-inverse copes with a singular Hessian (aliased
    columns); the first that converges is kept. When at most half the rows
    are distinct (and `cov_type` is ``"cluster"`` or ``"nonrobust"``), the
    GLM is fitted on the distinct rows with successes and trials: the same
    likelihood, so the same estimates, Hessian and patient-clustered
    covariance as on the rows.

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
    tol : float
        Newton stops when no coefficient moves more than this.
    max_iter : int

    Returns
    -------
    BinomialGLMFit

    Raises
    ------
    InsufficientDataError
        If the fit does not converge or the design is singular (for example under perfect separation, or
        too few appointments for the covariates): thin data, so the monthly run skips the section.

    See Also
    --------
    cluster_covariance : the patient-clustered covariance.
    """
    with one_blas_thread():
        collapsed = _patterns(x) if cov_type in ("cluster", "nonrobust") else None
        if collapsed is None:
            endog, exog, rows = y, x, None
        else:  # successes and failures of each distinct row
            first, pattern = collapsed
            successes, trials = np.bincount(pattern, weights=y), np.bincount(pattern).astype(float)
            endog, exog, rows = np.column_stack([successes, trials - successes]), x[first], (pattern, y)
        model = _GLM(endog, exog, family=sm.families.Binomial())
        attempts = [("newton", None), ("irls", None)]
        start = _start_params(exog, endog, max_iter)
        if start is not None:
            attempts.insert(0, ("newton", start))
        for method, start in attempts:
            fitted = _fit(model, method, start, cov_type, groups, tol, max_iter, rows)
            if fitted is not None:
                break
    if fitted is None:  # on a real clinic this is thin data: too few appointments to tell the covariates apart
        raise InsufficientDataError(
            "reminders", f"Reminder evaluation: the logistic model could not be fitted on this clinic's appointments "
                         f"(no convergence in {max_iter} iterations or a singular design: too few appointments for "
                         "its covariates, or reminder steps always sent together); more months of data help.",
            "예약 알림 평가: 예약 자료가 적어 (또는 알림 단계가 늘 함께 발송되어) 노쇼 모형을 추정할 수 없었습니다. "
            "더 긴 기간의 자료가 도움이 됩니다.")
    res, cov = fitted
    n_iter = int(res.mle_retvals.get("iterations", 0)) if getattr(res, "mle_retvals", None) else 0
    # the deviance of the appointments (on distinct rows statsmodels' is that of the grouped counts)
    deviance = res.deviance if rows is None else sm.families.Binomial().deviance(y, np.asarray(res.mu)[rows[0]])
    return BinomialGLMFit(pd.Series(np.asarray(res.params), index=names), cov, cov_type, n_iter, float(deviance))
