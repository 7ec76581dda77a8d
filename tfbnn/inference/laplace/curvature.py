"""Generalised Gauss-Newton curvature of dense layers: full, diagonal and Kronecker-factored.

The Laplace approximation needs the curvature of the negative log-likelihood at
the MAP weights. The generalised Gauss-Newton (GGN) matrix

    G = sum_n J_n^T Lambda_n J_n,

with `J_n` the Jacobian of the network outputs `f(x_n)` with respect to the
weights and `Lambda_n = L_n L_n^T` the Hessian of `-log p(y_n | f)` with respect to
`f` (its square root `L_n`, `hsqrt` below, comes from the likelihood's
`output_hessian_sqrt`), is positive semi-definite and, for a model linear in its
weights, equal to the Hessian. Everything here works on float64 numpy arrays
handed over in row blocks:

* `acts[l]`: `(B, n_in + 1)` inputs of dense layer `l` with a column of ones
  appended (the bias), so the layer's weights are `W = [kernel; bias]`, flattened
  row-major exactly as the Keras variables `kernel, bias` are;
* `jz[l]`: `(B, k, n_out)` Jacobian of the `k` outputs with respect to the
  layer's pre-activations, or None for the identity (the last layer, whose
  pre-activations are the outputs).

The per-example output Jacobian for layer `l` is then `acts[l] (x) jz[l]`.

Each structure also stores its posterior in one common form,
`Sigma = R diag(1 / (eigenvalues + prior_precision)) R^T` with `R` orthogonal
(eigenvectors for `full`, the identity for `diag`, a Kronecker product of the
factors' eigenvectors for `kron`), so the marginal likelihood, weight samples and
the linearised predictive are computed the same way for all three.

#### References

Martens, J. & Grosse, R. (2015). Optimizing neural networks with
Kronecker-factored approximate curvature. *ICML*.

Ritter, H., Botev, A. & Barber, D. (2018). A scalable Laplace approximation for
neural networks. *ICLR*.
"""

from __future__ import annotations

import numpy as np

#: Rows * columns of one Jacobian block, bounding the working memory of every pass.
BLOCK_FLOATS = 2**21


# -- curvature structures ---------------------------------------------------------------


def _deltas(jz, hsqrt):
    """`(B, c, n_out)`: the output Jacobian of a layer weighted by `Lambda^(1/2)`."""
    if jz is None:
        return np.swapaxes(hsqrt, 1, 2)
    return np.einsum("bjc,bjo->bco", hsqrt, jz)


def _dense_jz(jz, acts, n_out):
    """`jz` with the identity (None) written out, `(B, n_out, n_out)`."""
    if jz is not None:
        return jz
    return np.broadcast_to(np.eye(n_out), (len(acts), n_out, n_out))


class Curvature:
    """The GGN over a list of dense layers with shapes `[(n_in + 1, n_out), ...]`.

    Use: `accumulate` row blocks, then `finalize(n_data)`; afterwards the
    decomposition (`eigenvalues`, `sample`, `output_cov`, `covariance`) is ready.
    `arrays()` / `from_arrays` save and restore it.
    """

    structure = ""

    def __init__(self, shapes):
        self.shapes = [tuple(int(d) for d in s) for s in shapes]
        self.sizes = [a * b for a, b in self.shapes]
        self.n_params = int(sum(self.sizes))

    # -- building
    def accumulate(self, acts, jz, hsqrt) -> None:
        raise NotImplementedError

    def finalize(self, n_data: int) -> Curvature:
        self._decompose()
        return self

    def _decompose(self) -> None:
        raise NotImplementedError

    def arrays(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_arrays(cls, shapes, arrays: dict) -> Curvature:
        curvature = cls(shapes)
        curvature._set_arrays(arrays)
        curvature._decompose()
        return curvature

    # -- the posterior Sigma = R diag(1 / (eigenvalues + alpha)) R^T
    def eigenvalues(self) -> np.ndarray:
        """`(P,)` eigenvalues of the (approximate) GGN, clipped at zero."""
        raise NotImplementedError

    def sample(self, z, prior_precision) -> np.ndarray:
        """`(S, P)` draws from `N(0, Sigma)` given standard normal `z` `(S, P)`."""
        raise NotImplementedError

    def output_cov(self, acts, jz, prior_precision) -> np.ndarray:
        """`(B, k, k)` covariance `J Sigma J^T` of the linearised outputs."""
        raise NotImplementedError

    def covariance(self, prior_precision) -> np.ndarray:
        """The dense `(P, P)` posterior covariance (for small models and tests)."""
        root = self.sample(np.eye(self.n_params), prior_precision).T  # R diag(...)^(1/2)
        return root @ root.T

    def coordinates(self, theta) -> np.ndarray:
        """`(P,)` weights `theta` in the curvature's eigenbasis, `R^T theta`, in the
        order of `eigenvalues()`."""
        raise NotImplementedError

    def determined_sq_norm(self, theta) -> float:
        """`||theta||^2` without the component of `theta` in the curvature's null space.

        The data do not move weights along a null direction (the likelihood is flat
        there), so a MAP under a zero-mean Normal prior has no component along it: the
        prior's gradient `alpha theta` must balance the likelihood's, which lies in the
        GGN's range. Trained weights may still hold one (left from the initialisation
        where the training had no weight decay, or along the directions that shift all
        softmax logits alike); it changes no training prediction and is dropped here.
        The null spaces of `diag` and `kron` lie inside the exact GGN's. Eigenvalues
        count as zero below `max * P * eps` (NumPy's `matrix_rank` tolerance).
        """
        values = self.eigenvalues()
        tolerance = values.max(initial=0.0) * values.size * np.finfo(np.float64).eps
        coordinates = self.coordinates(np.asarray(theta, np.float64))
        return float(np.sum(coordinates[values > tolerance] ** 2))


class FullCurvature(Curvature):
    """The exact GGN as one dense `(P, P)` matrix."""

    structure = "full"

    def __init__(self, shapes):
        super().__init__(shapes)
        self.ggn = np.zeros((self.n_params, self.n_params))

    @staticmethod
    def jacobian(acts, jz):
        """`(B, k, P)` output Jacobian, layer blocks flattened row-major (at least one
        of `jz` is not the identity: it gives `k`)."""
        k = next(j.shape[1] for j in jz if j is not None)
        b = len(acts[0])
        jz = [_dense_jz(j, a, k) for a, j in zip(acts, jz)]
        return np.concatenate(
            [np.einsum("bi,bjo->bjio", a, j).reshape(b, k, -1) for a, j in zip(acts, jz)], axis=-1
        )

    def _single_identity_layer(self, jz):
        return len(self.shapes) == 1 and jz[0] is None

    def accumulate(self, acts, jz, hsqrt):
        if self._single_identity_layer(jz):
            # J_n = a_n (x) I: G = sum_n a_n a_n^T (x) Lambda_n, without forming J.
            a, k = acts[0], hsqrt.shape[1]
            lam = (hsqrt @ np.swapaxes(hsqrt, 1, 2)).reshape(len(a), 1, k * k)
            block = a.T @ (a[:, :, None] * lam).reshape(len(a), -1)
            n_in = a.shape[1]
            self.ggn += block.reshape(n_in, n_in, k, k).transpose(0, 2, 1, 3).reshape(
                self.n_params, self.n_params)
            return
        deltas = [_deltas(j, hsqrt) for j in jz]
        weighted = self.jacobian(acts, deltas).reshape(-1, self.n_params)
        self.ggn += weighted.T @ weighted

    def _decompose(self):
        values, self.vectors = np.linalg.eigh(0.5 * (self.ggn + self.ggn.T))
        self.values = np.clip(values, 0.0, None)
        self._dense = None

    def eigenvalues(self):
        return self.values

    def sample(self, z, prior_precision):
        return (z / np.sqrt(self.values + prior_precision)) @ self.vectors.T

    def output_cov(self, acts, jz, prior_precision):
        if self._single_identity_layer(jz):
            if self._dense is None or self._dense[0] != prior_precision:
                self._dense = (prior_precision, self.covariance(prior_precision))
            a, (n_in, k) = acts[0], self.shapes[0]
            tmp = (a @ self._dense[1].reshape(n_in, -1)).reshape(len(a), k, n_in, k)
            return np.einsum("bjgJ,bg->bjJ", tmp, a)
        rotated = self.jacobian(acts, jz) @ self.vectors
        weighted = rotated / (self.values + prior_precision)
        return weighted @ np.swapaxes(rotated, 1, 2)

    def covariance(self, prior_precision):
        return (self.vectors / (self.values + prior_precision)) @ self.vectors.T

    def coordinates(self, theta):
        return self.vectors.T @ theta

    def arrays(self):
        return {"ggn": self.ggn}

    def _set_arrays(self, arrays):
        self.ggn = np.asarray(arrays["ggn"], np.float64)


class _LayerwiseCurvature(Curvature):
    """Shared posterior algebra of `diag` and `kron`: per layer, rotations `U_in`, `U_out`
    (identities for `diag`) and eigenvalues `values[l]` of shape `(n_in + 1, n_out)`."""

    def _rotations(self, layer):
        raise NotImplementedError

    def eigenvalues(self):
        return np.concatenate([v.ravel() for v in self.values])

    def sample(self, z, prior_precision):
        out, start = [], 0
        for layer, (n_in, n_out) in enumerate(self.shapes):
            block = z[:, start : start + n_in * n_out].reshape(-1, n_in, n_out)
            block = block / np.sqrt(self.values[layer] + prior_precision)
            u_in, u_out = self._rotations(layer)
            if u_in is not None:
                block = np.einsum("ia,sab,ob->sio", u_in, block, u_out)
            out.append(block.reshape(len(z), -1))
            start += n_in * n_out
        return np.concatenate(out, axis=-1)

    def coordinates(self, theta):
        out, start = [], 0
        for layer, (n_in, n_out) in enumerate(self.shapes):
            block = theta[start : start + n_in * n_out].reshape(n_in, n_out)
            u_in, u_out = self._rotations(layer)
            if u_in is not None:
                block = u_in.T @ block @ u_out
            out.append(block.ravel())
            start += n_in * n_out
        return np.concatenate(out)

    def output_cov(self, acts, jz, prior_precision):
        cov = 0.0
        for layer, (a, j) in enumerate(zip(acts, jz)):
            u_in, u_out = self._rotations(layer)
            if j is None:
                j = np.eye(self.shapes[layer][1])[None]
            if u_in is not None:
                a, j = a @ u_in, j @ u_out
            weights = (a**2) @ (1.0 / (self.values[layer] + prior_precision))  # (B, n_out)
            cov = cov + (j * weights[:, None, :]) @ np.swapaxes(j, 1, 2)
        return cov


class DiagCurvature(_LayerwiseCurvature):
    """The diagonal of the exact GGN."""

    structure = "diag"

    def __init__(self, shapes):
        super().__init__(shapes)
        self.diag = [np.zeros(s) for s in self.shapes]

    def accumulate(self, acts, jz, hsqrt):
        for layer, (a, j) in enumerate(zip(acts, jz)):
            self.diag[layer] += (a**2).T @ np.sum(_deltas(j, hsqrt) ** 2, axis=1)

    def _decompose(self):
        self.values = [np.clip(d, 0.0, None) for d in self.diag]

    def _rotations(self, layer):
        return None, None

    def arrays(self):
        return {f"diag_{i}": d for i, d in enumerate(self.diag)}

    def _set_arrays(self, arrays):
        self.diag = [np.asarray(arrays[f"diag_{i}"], np.float64) for i in range(len(self.shapes))]


class KronCurvature(_LayerwiseCurvature):
    """KFAC: per layer `G_l ~ A_l (x) B_l`, `A_l = sum_n a a^T` over the layer inputs
    and `B_l = (1/N) sum_n sum_c d d^T` over the `Lambda^(1/2)`-weighted
    pre-activation gradients (Ritter et al., 2018). Exact for one linear layer
    under a Gaussian likelihood."""

    structure = "kron"

    def __init__(self, shapes):
        super().__init__(shapes)
        self.factors_in = [np.zeros((a, a)) for a, _ in self.shapes]
        self.factors_out = [np.zeros((b, b)) for _, b in self.shapes]

    def accumulate(self, acts, jz, hsqrt):
        for layer, (a, j) in enumerate(zip(acts, jz)):
            d = _deltas(j, hsqrt)
            d = d.reshape(-1, d.shape[-1])
            self.factors_in[layer] += a.T @ a
            self.factors_out[layer] += d.T @ d

    def finalize(self, n_data):
        self.factors_out = [b / max(int(n_data), 1) for b in self.factors_out]
        return super().finalize(n_data)

    def _decompose(self):
        self.values, self._vectors = [], []
        for a, b in zip(self.factors_in, self.factors_out):
            s_a, u_a = np.linalg.eigh(0.5 * (a + a.T))
            s_b, u_b = np.linalg.eigh(0.5 * (b + b.T))
            s_a, s_b = np.clip(s_a, 0.0, None), np.clip(s_b, 0.0, None)
            self.values.append(np.outer(s_a, s_b))
            self._vectors.append((u_a, u_b))

    def _rotations(self, layer):
        return self._vectors[layer]

    def arrays(self):
        out = {f"kron_in_{i}": a for i, a in enumerate(self.factors_in)}
        out.update({f"kron_out_{i}": b for i, b in enumerate(self.factors_out)})
        return out

    def _set_arrays(self, arrays):
        n = len(self.shapes)
        self.factors_in = [np.asarray(arrays[f"kron_in_{i}"], np.float64) for i in range(n)]
        self.factors_out = [np.asarray(arrays[f"kron_out_{i}"], np.float64) for i in range(n)]


STRUCTURES = {cls.structure: cls for cls in (FullCurvature, DiagCurvature, KronCurvature)}


def memory_bytes(structure: str, shapes, n_outputs: int) -> int:
    """Working memory (bytes, float64) to build and use a curvature of `structure`.

    `full` holds the GGN and its eigenvectors (`2 P^2`) plus an eigensolver
    workspace; `kron` two factors and their eigenvectors per layer; `diag` a few
    vectors of length `P`. Jacobian blocks add `BLOCK_FLOATS` per pass.
    """
    n_params = sum(a * b for a, b in shapes)
    if structure == "full":
        floats = 3 * n_params**2
    elif structure == "kron":
        floats = sum(2 * (a * a + b * b) for a, b in shapes) + 4 * n_params
    else:
        floats = 4 * n_params
    floats += 4 * BLOCK_FLOATS + n_outputs**2
    return 8 * int(floats)
