"""Out-of-distribution detection by predictive uncertainty."""

from __future__ import annotations

import enum

import numpy as np
from sklearn.metrics import roc_auc_score

from tfbnn.predictive import Predictive
from tfbnn.validation import check_option, finite_array


class UncertaintyMeasure(enum.StrEnum):
    """Which uncertainty of a predictive `ood_auroc` ranks inputs by."""

    ENTROPY = "entropy"
    """Total predictive entropy (classification)."""
    MUTUAL_INFORMATION = "mutual_information"
    """Mutual information between label and weights: epistemic (classification)."""
    STD = "std"
    """Total predictive standard deviation (regression)."""
    EPISTEMIC_STD = "epistemic_std"
    """Standard deviation of the posterior draws' means (regression)."""


def _uncertainty(values, measure, name):
    if not isinstance(values, Predictive):
        return finite_array(name, values).reshape(-1)
    if measure is None:
        measure = "entropy" if values.is_classification else "std"
    measure = check_option("measure", measure, [m.value for m in UncertaintyMeasure])
    if values.is_classification != (measure in ("entropy", "mutual_information")):
        kind = "classification" if values.is_classification else "regression"
        raise ValueError(f"measure={measure!r} does not apply to a {kind} predictive")
    if measure == UncertaintyMeasure.EPISTEMIC_STD:
        return np.sqrt(np.asarray(values.epistemic_var)).reshape(len(values.mean), -1).mean(1)
    result = np.asarray(getattr(values, measure))
    return result.reshape(len(result), -1).mean(axis=1)


def ood_auroc(uncertainty_in, uncertainty_out, measure: str | None = None) -> float:
    """AUROC of separating out-of-distribution inputs from in-distribution ones by uncertainty.

    Out-of-distribution inputs are the positive class and higher uncertainty
    should mean "more likely OOD": 0.5 is chance, 1.0 perfect separation.

    Args:
        uncertainty_in: uncertainties on in-distribution inputs, `(n_in,)`, or a
            `Predictive` on those inputs.
        uncertainty_out: the same on out-of-distribution inputs.
        measure: for predictives, `"entropy"` (default for classification),
            `"mutual_information"`, `"std"` (default for regression) or
            `"epistemic_std"`; averaged over targets when there are several.
    """
    scores_in = _uncertainty(uncertainty_in, measure, "uncertainty_in")
    scores_out = _uncertainty(uncertainty_out, measure, "uncertainty_out")
    if scores_in.size == 0 or scores_out.size == 0:
        raise ValueError("ood_auroc needs at least one in- and one out-of-distribution input")
    labels = np.concatenate([np.zeros(scores_in.size), np.ones(scores_out.size)])
    return float(roc_auc_score(labels, np.concatenate([scores_in, scores_out])))
