"""The Laplace marginal likelihood (the evidence) and MacKay's updates of its hyperparameters.

With `lambda_i` the eigenvalues of the GGN over the `P` Bayesian weights `theta`,
the Laplace log marginal likelihood at the MAP is

    log p(y) ~ log p(y | theta) - alpha/2 ||theta||^2 + P/2 log(alpha)
               - 1/2 sum_i log(lambda_i + alpha),

exact for a linear model with Gaussian noise (MacKay, 1992). For a learned
Gaussian noise `sigma^2` the GGN is `J^T J / sigma^2`, and the evidence is
stationary where

    alpha = gamma / ||theta||^2,   sigma^2 = ||r||^2 / (N - gamma),
    gamma = sum_i lambda_i / (lambda_i + alpha),

`gamma` counting the well-determined weights and `r` the training residuals.
`||theta||^2` counts only the weights' component in the GGN's range
(`Curvature.determined_sq_norm`): a MAP has none in its null space, which trained
weights may still hold.

Given its input features the last layer is a generalised linear model, so its MAP
is a convex problem: `refit_last_layer` solves it by damped Newton steps,
alternating with these updates until weights and hyperparameters settle together.
At that fixed point `alpha` (and `sigma`) maximise the evidence of the refitted
model; for Bayesian linear regression, the exact evidence.

#### References

MacKay, D. J. C. (1992). A practical Bayesian framework for backpropagation
networks. *Neural Computation*, 4(3).
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
from scipy.optimize import brentq

from tfbnn.inference.laplace.curvature import FullCurvature

#: Rounds of (MAP refit, precision update) before giving up on a fixed point.
MAX_EVIDENCE_ROUNDS = 100
#: Newton steps of a last-layer refit that tunes no hyperparameter.
MAX_NEWTON_STEPS = 50


def log_marginal_likelihood(log_likelihood: float, theta_sq_norm: float, eigenvalues,
                            prior_precision: float) -> float:
    """The Laplace log marginal likelihood at a MAP with squared norm `theta_sq_norm`
    (see the module docstring)."""
    alpha, lam = float(prior_precision), np.asarray(eigenvalues)
    return float(log_likelihood - 0.5 * alpha * theta_sq_norm
                 + 0.5 * lam.size * math.log(alpha) - 0.5 * np.sum(np.log(lam + alpha)))


def tune_prior_precision(eigenvalues, theta_sq_norm: float, initial: float = 1.0) -> float:
    """The prior precision `alpha` maximising the Laplace log marginal likelihood.

    As a function of `alpha` (MacKay, 1992) it is, up to constants,

        -alpha/2 ||theta||^2 + P/2 log(alpha) - 1/2 sum_i log(lambda_i + alpha),

    concave in `t = log(alpha)`; the root of its derivative
    `P/2 - alpha ||theta||^2 / 2 - 1/2 sum_i alpha / (lambda_i + alpha)` is found by
    bracketing and Brent's method.
    """
    lam = np.clip(np.asarray(eigenvalues, np.float64), 0.0, None)
    p = lam.size

    def slope(t):
        a = math.exp(t)
        return 0.5 * p - 0.5 * a * theta_sq_norm - 0.5 * np.sum(a / (lam + a))

    return _root_in_log(slope, initial)


def _root_in_log(slope, start: float) -> float:
    """`exp(t)` at the root of a decreasing `slope(t)`, bracketed outwards from `log(start)`
    (clamped to `exp(+-60)` when there is no root in between)."""
    lo = hi = math.log(start)
    while slope(lo) < 0 and lo > -60:
        lo -= 2.0
    while slope(hi) > 0 and hi < 60:
        hi += 2.0
    if slope(lo) < 0:
        return math.exp(lo)
    if slope(hi) > 0:
        return math.exp(hi)
    return math.exp(brentq(slope, lo, hi, xtol=1e-13, rtol=1e-14))


def tune_noise_variance(eigenvalues, theta_sq_norm: float, residual_sq_norm: float, n_data: int,
                        prior_precision: float, noise_variance: float = 1.0,
                        tune_prior: bool = True, max_rounds: int = 10_000):
    """The Gaussian noise variance `sigma^2` (and, with `tune_prior`, the prior precision
    `alpha`) maximising the Laplace log marginal likelihood of a one-output model.

    With `mu_i` the eigenvalues of the GGN at unit noise, `J^T J` (the GGN at noise
    `sigma^2` is `J^T J / sigma^2`), the log marginal likelihood is, up to constants,

        -||r||^2 / (2 sigma^2) - N/2 log(sigma^2) - alpha/2 ||theta||^2 + P/2 log(alpha)
        - 1/2 sum_i log(mu_i / sigma^2 + alpha),

    stationary where (MacKay, 1992) `alpha = gamma / ||theta||^2` and
    `sigma^2 = ||r||^2 / (N - gamma)`, with `gamma = sum_i mu_i / (mu_i + alpha sigma^2)`
    the number of well-determined parameters. Found by coordinate ascent, each
    coordinate maximised exactly (in `beta = 1 / sigma^2` the slope
    `N / beta - sum_i mu_i / (beta mu_i + alpha) - ||r||^2` decreases when
    `J^T J` has rank at most `N`, as the full GGN has).

    Returns `(alpha, sigma^2)`.
    """
    mu = np.clip(np.asarray(eigenvalues, np.float64), 0.0, None)
    alpha, beta = float(prior_precision), 1.0 / float(noise_variance)

    def noise_slope(t):
        b = math.exp(t)
        return n_data / b - np.sum(mu / (b * mu + alpha)) - residual_sq_norm

    for _ in range(max_rounds if tune_prior else 1):
        beta_new = _root_in_log(noise_slope, beta)
        settled = abs(math.log(beta_new / beta)) < 1e-12
        beta = beta_new
        if tune_prior:
            alpha_new = tune_prior_precision(beta * mu, theta_sq_norm, alpha)
            settled = settled and abs(math.log(alpha_new / alpha)) < 1e-12
            alpha = alpha_new
        if settled:
            break
    return alpha, 1.0 / beta


def _settled(new: float, old: float) -> bool:
    return abs(math.log(new / old)) < 1e-9


@dataclasses.dataclass
class NoiseEvidence:
    """The Gaussian noise's share of the evidence, over the whole network.

    The noise is a hyperparameter of the whole network: every trained weight has
    helped to shrink the residuals, so the well-determined weights `gamma` are counted
    over all of them, with the full GGN at unit noise (eigenvalues `eigenvalues`) and
    its own precision `alpha`, whichever weights are Bayesian. For a network that is
    not an MLP (a conv net in front of the last layer) they are counted over the last
    layer's weights, the only ones whose Jacobian is at hand.

    Attributes:
        eigenvalues: of `J^T J` over every dense weight (the last layer's, if not an MLP).
        hidden_sq_norm: `||theta||^2` of the weights outside the last layer.
        alpha: the network's prior precision (tuned when `tune`).
        tune: whether `alpha` moves with the noise.
        scale: `(k,)` the current noise standard deviation.
        floor: the likelihood's `min_scale`, which the noise stays above.
    """

    eigenvalues: np.ndarray
    hidden_sq_norm: float
    alpha: float
    tune: bool
    scale: np.ndarray
    floor: float

    def update(self, w, residual_sq_norm: float, n_data: int) -> bool:
        """Moves the noise (and `alpha`) to the evidence maximiser at the last layer's
        weights `w`, whose `n_data` residuals have the squared norm `residual_sq_norm`;
        returns whether the noise settled."""
        old = float(self.scale[0]) ** 2
        self.alpha, variance = tune_noise_variance(
            self.eigenvalues, self.hidden_sq_norm + float(np.sum(w**2)),
            float(residual_sq_norm), int(n_data), self.alpha, old, tune_prior=self.tune)
        least = self.floor + 1e-6 * (self.floor or 1.0)
        self.scale = np.full(self.scale.size, max(math.sqrt(variance), least))
        return _settled(float(self.scale[0]) ** 2, old)


@dataclasses.dataclass
class LastLayerGLM:
    """The last layer given its input features: `f = phi W` under `likelihood`.

    Attributes:
        phi: `(N, H + 1)` float64 features (the last hidden layer and a column of ones).
        y: `(N, d)` float64 targets.
        likelihood: a `tfbnn.likelihoods.Likelihood` with `has_output_hessian`.
        shape: `(H + 1, k)`, the shape of `W = [kernel; bias]`.
        rows: rows per block when accumulating the GGN (bounds working memory).
    """

    phi: np.ndarray
    y: np.ndarray
    likelihood: object
    shape: tuple
    rows: int

    def objective(self, w, alpha, scale) -> float:
        """The negative log posterior `-log p(y | W) + alpha/2 ||W||^2` (up to constants)."""
        nll = float(np.sum(self.likelihood.output_nll(self.phi @ w, self.y, scale)))
        return nll + 0.5 * alpha * np.sum(w**2)

    def ggn(self, f, scale) -> np.ndarray:
        """`(P, P)` GGN of the last layer's weights at outputs `f`, exact for a GLM."""
        ggn = FullCurvature([self.shape])
        for i in range(0, len(self.phi), self.rows):
            hsqrt = self.likelihood.output_hessian_sqrt(f[i : i + self.rows], scale)
            ggn.accumulate([self.phi[i : i + self.rows]], [None], hsqrt)
        return ggn.ggn

    def newton_step(self, w, f, alpha, scale, ggn, settled: bool):
        """One damped Newton step on `objective` (backtracking line search); returns the
        new weights, or None when the Newton decrement says `w` is the MAP and
        `settled` says the hyperparameters are too."""
        residual = self.likelihood.output_residual(f, self.y, scale)
        grad = (self.phi.T @ residual + alpha * w).ravel()
        step = np.linalg.solve(ggn + alpha * np.eye(w.size), grad).reshape(self.shape)
        decrement = float(grad @ step.ravel())
        value = self.objective(w, alpha, scale)
        if decrement <= 1e-13 * (1.0 + abs(value)) and settled:
            return None
        t = 1.0
        while self.objective(w - t * step, alpha, scale) > value - 1e-4 * t * decrement \
                and t > 1e-10:
            t *= 0.5
        return w - t * step


def refit_last_layer(glm: LastLayerGLM, w, alpha: float, scale=None, *, tune: bool = False,
                     noise: NoiseEvidence | None = None, network_alpha: bool = False):
    """The exact MAP of the last layer (a convex problem), by damped Newton steps.

    With `tune`, each step also moves the prior precision to the evidence maximiser
    at the current weights, so the two settle together at the MAP under the
    evidence-maximising precision (MacKay, 1992). With `noise` the Gaussian noise is
    moved the same way (`noise.scale` holds the result), and with `network_alpha` the
    step uses the network's precision `noise.alpha`.

    Args:
        glm: the last layer's problem.
        w: `(P,)` starting weights.
        alpha: the prior precision (the starting value when tuned).
        scale: the fixed noise scale per output (ignored with `noise`).

    Returns:
        `(w, alpha)`: the weights `(P,)` and the prior precision.
    """
    w = w.reshape(glm.shape).copy()
    steps = MAX_EVIDENCE_ROUNDS if tune or noise is not None else MAX_NEWTON_STEPS
    for _ in range(steps):
        f = glm.phi @ w
        settled = True
        if noise is not None:
            settled = noise.update(w, float(np.sum((glm.y - f) ** 2)), len(f))
            scale = noise.scale
            if network_alpha:
                settled, alpha = settled and _settled(noise.alpha, alpha), noise.alpha
        ggn = glm.ggn(f, scale)
        if tune:
            new = tune_prior_precision(np.linalg.eigvalsh(ggn), float(np.sum(w**2)), alpha)
            settled, alpha = settled and _settled(new, alpha), new
        step = glm.newton_step(w, f, alpha, scale, ggn, settled)
        if step is None:
            return w.ravel(), alpha
        w = step
    what = "".join([" and prior precision" if tune else "", " and noise" if noise else ""])
    warnings.warn(
        f"The last layer's MAP{what} did not settle in {steps} Newton steps (prior "
        f"precision {alpha:.6g})", stacklevel=4)
    return w.ravel(), alpha
