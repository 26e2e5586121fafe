r"""Gauss--Newton / Fisher-information uncertainty at a least-squares solution.

At a (local) minimiser :math:`\hat a` of :math:`\tfrac12\|F(a) - y^\delta\|^2` with data noise
:math:`y^\delta = F(a^\dagger) + \sigma\varepsilon`, :math:`\varepsilon \sim N(0, I)`, the
linearised model :math:`F(a) \approx F(\hat a) + J (a - \hat a)` gives the covariance

.. math::  C = \sigma^2 (J^T J)^{-1},

computed stably from the SVD of the column-scaled Jacobian :math:`J_s = J S`,
:math:`S = \mathrm{diag}(s_j)`, :math:`s_j = |\hat a_j|` (or the caller's ``scale``; 1 where it
is zero): :math:`J_s = U \Sigma V^T`, :math:`C = \sigma^2 S V \Sigma^{-2} V^T S`.

* ``sigma`` is the known noise standard deviation per datum when given; otherwise it is
  estimated as :math:`\hat\sigma^2 = \|r\|^2 / (n - p)` from the residual :math:`r`.
* 95 % intervals: :math:`\hat a_j \pm q\,\mathrm{se}_j` with :math:`q` the 0.975 quantile of the
  Student-t distribution with :math:`n - p` degrees of freedom when ``sigma`` is estimated, and
  of the normal distribution (t with infinitely many degrees of freedom) when it is known.
* Complex data (receive-channel spectra) are stacked as real and imaginary parts, so
  :math:`n` counts real numbers.

Identifiability rule (parameter :math:`j` is reported **not identified** when either holds):

1. *singular*: a scaled singular value is tiny, :math:`\sigma_k / \sigma_1 < \mathrm{rcond}`
   (or :math:`n < p`), and its right singular vector has a component
   :math:`|V_{jk}| > \mathrm{involve}` (default 0.1) on parameter :math:`j`; its standard error
   is then infinite (the data do not constrain that direction at all).  The standard errors of
   the other parameters are those of the retained directions, i.e. conditional on the
   undetermined combination (which moves them by less than ``involve`` times its own step,
   in scaled units);
2. *wide*: the 95 % interval is wider than the parameter,
   :math:`2 q\,\mathrm{se}_j > \mathrm{rel\_width} \cdot s_j`.

Notation: ``n`` data (real numbers), ``p`` parameters, ``J`` (n, p) Jacobian
:math:`\partial F/\partial a` at :math:`\hat a`, ``r = F(a) - y`` residual, ``se`` standard errors.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

__all__ = ["NotIdentifiedWarning", "Uncertainty", "fisher_uncertainty", "propagate"]


class NotIdentifiedWarning(UserWarning):
    """A parameter the data do not determine (see the module's identifiability rule)."""


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@dataclass
class Uncertainty:
    """Estimates with standard errors, correlations, 95 % intervals and identifiability.

    Attributes:
        names: Parameter names.
        estimate: The estimates :math:`\\hat a`.
        stderr: Standard errors (``inf`` where not constrained).
        ci95_low: Lower ends of the 95 % intervals.
        ci95_high: Upper ends of the 95 % intervals.
        correlation: Correlation matrix (NaN where a standard error is infinite).
        singular_values: Singular values of the column-scaled Jacobian, descending.
        identified: Per-parameter identifiability (see the module docstring's rule).
        sigma: Noise standard deviation used (known or estimated).
        dof: Degrees of freedom ``n - p``.
        reasons: One sentence per not-identified parameter, naming the rule that fired.
        sigma_known: Whether ``sigma`` was given (normal quantile) or estimated (Student-t).
        quantile: The 0.975 quantile used for the intervals.
    """

    names: tuple[str, ...]
    estimate: np.ndarray
    stderr: np.ndarray
    ci95_low: np.ndarray
    ci95_high: np.ndarray
    correlation: np.ndarray
    singular_values: np.ndarray
    identified: np.ndarray
    sigma: float
    dof: int
    reasons: list[str] = field(default_factory=list)
    sigma_known: bool = False
    quantile: float = float("nan")

    @property
    def all_identified(self) -> bool:
        """Whether every parameter is identified."""
        return bool(np.all(self.identified))

    def to_json(self) -> dict:
        """Plain-Python record (lists, floats, ``None`` for non-finite values)."""
        records = []
        for j, name in enumerate(self.names):
            records.append({
                "name": name,
                "estimate": float(self.estimate[j]),
                "stderr": _finite_or_none(self.stderr[j]),
                "ci95_low": _finite_or_none(self.ci95_low[j]),
                "ci95_high": _finite_or_none(self.ci95_high[j]),
                "identified": bool(self.identified[j]),
            })
        corr = [[_finite_or_none(c) for c in row] for row in self.correlation]
        return {
            "parameters": records,
            "correlation": corr,
            "singular_values": [float(s) for s in self.singular_values],
            "sigma": _finite_or_none(self.sigma),
            "sigma_known": self.sigma_known,
            "dof": int(self.dof),
            "quantile": _finite_or_none(self.quantile),
            "all_identified": self.all_identified,
            "reasons": list(self.reasons),
        }

    def warning_lines(self) -> list[str]:
        """One line per not-identified parameter."""
        return [f"parameter not identified by the data: {reason}" for reason in self.reasons]

    def warn(self, comm=None, logger: logging.Logger | None = None) -> None:
        """Warn about every not-identified parameter, identically on every rank.

        Issues a :class:`NotIdentifiedWarning` through :mod:`warnings` on every rank (the data
        and hence the message are the same on all ranks) and, if ``logger`` is given, logs the
        same line at WARNING level.

        Args:
            comm: Communicator (only its rank is used, to tag nothing; kept for the API).
            logger: Optional logger for the same lines.
        """
        del comm  # the message is rank-independent by construction
        for line in self.warning_lines():
            warnings.warn(line, NotIdentifiedWarning, stacklevel=2)
            if logger is not None:
                logger.warning(line)

    def table(self) -> str:
        """Printable table of estimates, standard errors and 95 % intervals."""
        width = max([len(n) for n in self.names] + [9])
        head = (f"{'parameter':<{width}}  {'estimate':>12}  {'std err':>10}  "
                f"{'95 % interval':>27}  identified")
        lines = [head, "-" * len(head)]
        for j, name in enumerate(self.names):
            se = self.stderr[j]
            interval = (f"[{self.ci95_low[j]:.5g}, {self.ci95_high[j]:.5g}]"
                        if math.isfinite(se) else "[-inf, inf]")
            lines.append(f"{name:<{width}}  {self.estimate[j]:>12.6g}  {se:>10.3g}  "
                         f"{interval:>27}  {'yes' if self.identified[j] else 'NO'}")
        src = "known" if self.sigma_known else f"estimated, dof {self.dof}"
        lines.append(f"noise sigma {self.sigma:.3g} ({src})")
        return "\n".join(lines)


def _as_real(jacobian: np.ndarray, residual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stack real and imaginary parts of complex data (rows)."""
    jac = np.asarray(jacobian)
    res = np.asarray(residual).ravel()
    if jac.ndim != 2 or jac.shape[0] != res.size:
        raise ValueError(f"jacobian {jac.shape} and residual ({res.size},) do not match")
    if np.iscomplexobj(jac) or np.iscomplexobj(res):
        jac = np.vstack([jac.real, jac.imag])
        res = np.concatenate([res.real, res.imag])
    return np.asarray(jac, dtype=float), np.asarray(res, dtype=float)


def _noise(res: np.ndarray, n: int, p: int, sigma: float | None) -> tuple[float, bool]:
    if sigma is not None:
        return float(sigma), True
    if n <= p:
        return float("inf"), False
    return float(np.sqrt(res @ res / (n - p))), False


def _scaled_svd(jac: np.ndarray, scale: np.ndarray):
    """SVD of J S (full V even when n < p)."""
    u, s, vt = np.linalg.svd(jac * scale, full_matrices=True)
    sv = np.zeros(jac.shape[1])
    sv[: s.size] = s
    return sv, vt.T


def _covariance(sv: np.ndarray, v: np.ndarray, scale: np.ndarray, sigma: float,
                rcond: float, involve: float) -> tuple[np.ndarray, np.ndarray]:
    """Covariance of the estimates and the per-parameter 'singular' flags."""
    top = sv[0] if sv.size and sv[0] > 0 else 0.0
    small = sv <= rcond * top if top > 0 else np.ones_like(sv, dtype=bool)
    kept = ~small
    vk = v[:, kept] / sv[kept]
    cov_s = sigma**2 * (vk @ vk.T)
    cov = cov_s * np.outer(scale, scale)
    singular = np.any(np.abs(v[:, small]) > involve, axis=1)
    return cov, singular


def _correlation(cov: np.ndarray, stderr: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(stderr, stderr)
    corr[~np.isfinite(corr)] = np.nan
    finite = np.isfinite(stderr) & (stderr > 0)
    corr[finite, finite] = 1.0
    return corr


def fisher_uncertainty(jacobian: np.ndarray, residual: np.ndarray, estimate: Sequence[float],
                       names: Sequence[str], sigma: float | None = None, *,
                       rcond: float = 1e-6, rel_width: float = 1.0,
                       scale: Sequence[float] | None = None,
                       involve: float = 0.1) -> Uncertainty:
    """Standard errors, correlations, 95 % intervals and identifiability at a solution.

    The rule (see the module docstring): a parameter is *not identified* when a scaled singular
    value ratio below ``rcond`` involves it (infinite standard error) or when its 95 % interval
    is wider than ``rel_width`` times its scale (``|estimate|``, or ``scale`` if given; 1 where
    zero).

    Args:
        jacobian: ``(n, p)`` derivative of the model data with respect to the parameters (real
            or complex; complex rows are split into real and imaginary parts).
        residual: ``(n,)`` model minus data at ``estimate``.
        estimate: The ``p`` estimates.
        names: The ``p`` parameter names.
        sigma: Known noise standard deviation per real datum; estimated from the residual if
            ``None``.
        rcond: Singular-value ratio below which a direction counts as undetermined.
        rel_width: Interval width (relative to the scale) above which a parameter counts as
            undetermined.
        scale: Parameter scales for the column scaling and the width rule (default
            ``|estimate|``).
        involve: Component of an undetermined singular direction above which a parameter
            counts as involved in it.

    Returns:
        The :class:`Uncertainty` record.
    """
    jac, res = _as_real(jacobian, residual)
    est = np.asarray(estimate, dtype=float).ravel()
    n, p = jac.shape
    if est.size != p or len(names) != p:
        raise ValueError(f"{p} Jacobian columns but {est.size} estimates / {len(names)} names")
    sc = np.abs(est) if scale is None else np.abs(np.asarray(scale, dtype=float))
    sc = np.where(sc > 0, sc, 1.0)
    sig, known = _noise(res, n, p, sigma)
    dof = n - p
    q = float(stats.norm.ppf(0.975)) if known else (
        float(stats.t.ppf(0.975, dof)) if dof > 0 else float("inf"))
    sv, v = _scaled_svd(jac, sc)
    cov, singular = _covariance(sv, v, sc, sig if math.isfinite(sig) else 0.0, rcond,
                                involve)
    stderr = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    if not math.isfinite(sig):
        stderr[:] = np.inf
    stderr[singular] = np.inf
    half = q * stderr
    wide = 2.0 * half > rel_width * sc
    ratio = sv / sv[0] if sv[0] > 0 else np.zeros_like(sv)
    reasons = _reasons(names, est, stderr, half, sc, singular, wide, ratio, rcond, rel_width)
    return Uncertainty(
        names=tuple(names), estimate=est, stderr=stderr, ci95_low=est - half,
        ci95_high=est + half, correlation=_correlation(cov, stderr), singular_values=sv,
        identified=~(singular | wide), sigma=sig, dof=dof, reasons=reasons,
        sigma_known=known, quantile=q)


def _reasons(names, est, stderr, half, sc, singular, wide, ratio, rcond, rel_width) -> list[str]:
    out = []
    for j, name in enumerate(names):
        if singular[j]:
            out.append(f"{name} = {est[j]:.6g}: scaled singular value ratio "
                       f"{ratio.min():.2e} < rcond {rcond:.0e} in a direction involving it "
                       "(standard error infinite)")
        elif wide[j]:
            out.append(f"{name} = {est[j]:.6g}: 95 % interval width {2 * half[j]:.3g} > "
                       f"{rel_width:g} x |scale| {sc[j]:.3g} (std err {stderr[j]:.3g})")
    return out


def propagate(unc: Uncertainty, func: Callable[[np.ndarray], np.ndarray],
              jac: Callable[[np.ndarray], np.ndarray], names: Sequence[str], *,
              covariance: np.ndarray | None = None, rel_width: float = 1.0) -> Uncertainty:
    r"""Delta-method propagation to derived parameters :math:`b = g(a)`.

    :math:`C_b = G C_a G^T` with :math:`G = \partial g/\partial a` at the estimate; intervals use
    the same quantile as ``unc``; a derived parameter is not identified when it depends on a
    not-identified input (:math:`G_{ij} \ne 0`) or its interval is wider than ``rel_width |b|``.

    Args:
        unc: Uncertainty of the inputs.
        func: ``g``, maps the estimate to the derived values.
        jac: ``G(a)``, the ``(q, p)`` derivative of ``g``.
        names: The ``q`` derived names.
        covariance: Input covariance (default rebuilt from ``stderr`` and ``correlation``).
        rel_width: Width rule as in :func:`fisher_uncertainty`.

    Returns:
        An :class:`Uncertainty` of the derived parameters (``singular_values`` copied).
    """
    a = unc.estimate
    b = np.asarray(func(a), dtype=float).ravel()
    g = np.atleast_2d(np.asarray(jac(a), dtype=float))
    bad_in = ~unc.identified | ~np.isfinite(unc.stderr)
    if covariance is None:
        se = np.where(np.isfinite(unc.stderr), unc.stderr, 0.0)
        corr = np.nan_to_num(unc.correlation, nan=0.0)
        covariance = corr * np.outer(se, se)
    cov_b = g @ covariance @ g.T
    se_b = np.sqrt(np.clip(np.diag(cov_b), 0.0, None))
    depends_bad = np.any((np.abs(g) > 0) & bad_in[None, :], axis=1)
    depends_inf = np.any((np.abs(g) > 0) & ~np.isfinite(unc.stderr)[None, :], axis=1)
    se_b[depends_inf] = np.inf
    half = unc.quantile * se_b
    sc = np.where(np.abs(b) > 0, np.abs(b), 1.0)
    wide = 2.0 * half > rel_width * sc
    ident = ~(depends_bad | wide)
    reasons = [f"{n} = {b[i]:.6g}: depends on a not-identified parameter" if depends_bad[i]
               else f"{n} = {b[i]:.6g}: 95 % interval width {2 * half[i]:.3g} > "
                    f"{rel_width:g} x |{n}|"
               for i, n in enumerate(names) if not ident[i]]
    return Uncertainty(
        names=tuple(names), estimate=b, stderr=se_b, ci95_low=b - half, ci95_high=b + half,
        correlation=_correlation(cov_b, se_b), singular_values=unc.singular_values.copy(),
        identified=ident, sigma=unc.sigma, dof=unc.dof, reasons=reasons,
        sigma_known=unc.sigma_known, quantile=unc.quantile)
