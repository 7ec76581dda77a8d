"""The Laplace approximation: a Gaussian posterior around a trained MAP network.

`fit` trains a deterministic MLP to the maximum a posteriori (MAP) weights, with
the Normal prior as weight decay, and then approximates the posterior of the
chosen weights by `N(theta_MAP, (GGN + alpha I)^-1)`, where the generalised
Gauss-Newton matrix `GGN` stands in for the Hessian of the negative
log-likelihood and the prior precision `alpha` is tuned by maximising the Laplace
marginal likelihood. Predictions come from the linearised network (the GLM
predictive, Immer et al., 2021) or from weight samples pushed through the network.

Supported likelihoods: those with a closed-form output Hessian
(`Likelihood.has_output_hessian`): Gaussian (fixed or learned noise), Poisson,
Bernoulli and Categorical. A learned Gaussian noise scale is, by default, tuned by
the marginal likelihood too (`sigma_noise`): the scale learned with the MAP network
fits its own training residuals and makes the predictive over-confident.

The pieces, each usable on its own:

* `options`: the option enums (`SubsetOfWeights`, `HessianStructure`, ...);
* `curvature`: the GGN of dense layers as full, diagonal or Kronecker-factored
  matrices, accumulated from row blocks, and their posterior algebra;
* `evidence`: the Laplace marginal likelihood, MacKay's prior-precision and noise
  updates, and the exact last-layer MAP refit;
* `network`: the network's Bayesian layers (the last Dense layer of any Keras
  model, or every layer of an MLP), their inputs and output Jacobians;
* `rows`: training rows block by block, from arrays or a `tf.data.Dataset`;
* `posterior`: `LaplacePosterior`, all of the above around a trained network;
* `method`: `LaplaceInference`, registered as "laplace", which trains the MLP first.

`tfbnn.posthoc.LastLayerLaplace` puts the same `LaplacePosterior` on a network a
user trained (a conv net, anything whose last layer is Dense).

#### Mathematical details

See `evidence` for the marginal likelihood and its stationary points. The noise
is a hyperparameter of the whole network, so `fit` counts the well-determined
weights over all weights (the full GGN, with its own `alpha`) whichever subset is
Bayesian; with only the last layer Bayesian the last layer's `alpha` is then tuned
at that noise. Given its input features the last layer is a generalised linear
model, so after training `fit` solves its MAP exactly by Newton's method
(`refine_map`), alternating with the noise update and, with only the last layer
Bayesian, the precision update until all settle. With all weights Bayesian (as in
laplace-torch) the precision is tuned at the fixed MAP of the trained network.

#### References

MacKay, D. J. C. (1992). A practical Bayesian framework for backpropagation
networks. *Neural Computation*, 4(3).

Ritter, H., Botev, A. & Barber, D. (2018). A scalable Laplace approximation for
neural networks. *ICLR*.

Immer, A., Korzepa, M. & Bauer, M. (2021). Improving predictions of Bayesian
neural nets via local linearization. *AISTATS*.

Daxberger, E., Kristiadi, A., Immer, A., Eschenhagen, R., Bauer, M. & Hennig, P.
(2021). Laplace Redux - effortless Bayesian deep learning. *NeurIPS*.
"""

from tfbnn.inference.laplace.method import LaplaceInference
from tfbnn.inference.laplace.options import (
    HessianStructure,
    PredType,
    PriorPrecisionMethod,
    SigmaNoiseMethod,
    SubsetOfWeights,
)
from tfbnn.inference.laplace.posterior import POSTERIOR_FILE, LaplacePosterior

__all__ = [
    "POSTERIOR_FILE",
    "HessianStructure",
    "LaplaceInference",
    "LaplacePosterior",
    "PredType",
    "PriorPrecisionMethod",
    "SigmaNoiseMethod",
    "SubsetOfWeights",
]
