"""Published UCI regression results that tfbnn's benchmark tables compare against.

Every number is the mean over the standard splits (20; 5 for protein) of
Hernández-Lobato & Adams (2015), in original units: test log-likelihood per
point (higher is better) and test RMSE of the predictive mean (lower is better).
They are copied from the data folder's README (`/work/shared/data/uci/README.md`),
which cites, per method:

* PBP: Hernández-Lobato & Adams, "Probabilistic backpropagation for scalable
  learning of Bayesian neural networks", ICML 2015 (as reprinted in Gal &
  Ghahramani 2016, Table 1).
* MC dropout: Gal & Ghahramani, "Dropout as a Bayesian approximation", ICML 2016,
  with the 2018 grid-search update of its experiments (the DropoutUncertaintyExps
  repository).
* Deep ensembles: Lakshminarayanan, Pritzel & Blundell, "Simple and scalable
  predictive uncertainty estimation using deep ensembles", NeurIPS 2017, Table 1
  (printed there as NLL, the negative of the numbers here).
* DVI: Wu et al., "Deterministic variational inference for robust Bayesian
  neural networks", ICLR 2019 (heteroscedastic model; log-likelihood only).

The numbers are data, not code: add a method by adding a column here.
"""

from __future__ import annotations

import math

#: Column key -> display name, in the order the summary tables show them.
METHODS = {
    "pbp": "PBP",
    "mc_dropout": "MC dropout",
    "deep_ensembles": "Deep ensembles",
    "dvi": "DVI",
}

#: Test log-likelihood per point, by method and data set.
TEST_LL = {
    "pbp": {"boston": -2.57, "concrete": -3.16, "energy": -2.04, "kin8nm": 0.90,
            "naval": 3.73, "power": -2.84, "protein": -2.97, "wine": -0.97, "yacht": -1.63},
    "mc_dropout": {"boston": -2.40, "concrete": -2.93, "energy": -1.21, "kin8nm": 1.14,
                   "naval": 4.45, "power": -2.80, "protein": -2.87, "wine": -0.93,
                   "yacht": -1.25},
    "deep_ensembles": {"boston": -2.41, "concrete": -3.06, "energy": -1.38, "kin8nm": 1.20,
                       "naval": 5.63, "power": -2.79, "protein": -2.83, "wine": -0.94,
                       "yacht": -1.18},
    "dvi": {"boston": -2.41, "concrete": -3.06, "energy": -1.01, "kin8nm": 1.13,
            "naval": 6.29, "power": -2.80, "protein": -2.85, "wine": -0.90, "yacht": -0.47},
}

#: Test RMSE, by method and data set (DVI published no RMSE in this protocol).
TEST_RMSE = {
    "pbp": {"boston": 3.01, "concrete": 5.67, "energy": 1.80, "kin8nm": 0.10,
            "naval": 0.01, "power": 4.12, "protein": 4.73, "wine": 0.64, "yacht": 1.02},
    "mc_dropout": {"boston": 2.90, "concrete": 4.82, "energy": 0.54, "kin8nm": 0.08,
                   "naval": 0.00, "power": 4.01, "protein": 4.27, "wine": 0.62, "yacht": 0.67},
    "deep_ensembles": {"boston": 3.28, "concrete": 6.03, "energy": 2.09, "kin8nm": 0.09,
                       "naval": 0.00, "power": 4.11, "protein": 4.71, "wine": 0.64,
                       "yacht": 1.58},
}


def published_ll(dataset: str) -> dict[str, float]:
    """Published test log-likelihoods of `dataset`, by method key (NaN where unknown)."""
    return {key: TEST_LL.get(key, {}).get(dataset, math.nan) for key in METHODS}


def published_rmse(dataset: str) -> dict[str, float]:
    """Published test RMSEs of `dataset`, by method key (only methods that report one)."""
    return {key: TEST_RMSE[key].get(dataset, math.nan) for key in METHODS if key in TEST_RMSE}


def best_published_ll(dataset: str) -> float:
    """The highest published test log-likelihood of `dataset` (NaN if none)."""
    values = [v for v in published_ll(dataset).values() if not math.isnan(v)]
    return max(values) if values else math.nan
