"""Diagnostic plots of predictive uncertainty, drawn with matplotlib.

matplotlib is imported inside each function, so `import tfbnn` never pulls it
in. Every function takes `ax=None` (a new figure from `pyplot` when omitted) and
returns the axes it drew on, so plots compose into the caller's own figures
(`plot_methods_1d`, one panel per method, takes `axes=None` and returns an array).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import stats

from tfbnn import metrics
from tfbnn.metrics.inputs import predictive_targets
from tfbnn.predictive import Predictive
from tfbnn.validation import check_level


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    return ax


def _unit_square(ax, xlabel: str, ylabel: str) -> None:
    """Limits [0, 1] on both axes, the labels, and the ideal diagonal a calibrated curve follows."""
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="ideal")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def _regression_predictive(predictive, name):
    if not isinstance(predictive, Predictive) or predictive.is_classification:
        raise ValueError(f"{name} needs a regression Predictive")
    return predictive


def plot_predictive_1d(x, predictive, *, x_train=None, y_train=None, levels=(0.95,), ax=None,
                       legend=True):
    """Predictive mean with epistemic and total uncertainty bands over a 1-D input.

    The total band is the predictive's exact central interval at each level; the
    epistemic band is `mean -/+ z * sqrt(epistemic_var)` with `z` the standard
    normal quantile of the level (a Gaussian summary of the spread of the
    posterior draws' means).

    Args:
        x: `(B,)` inputs (or `(B, 1)`), in any order.
        predictive: a regression `Predictive` with one target at `x`.
        x_train, y_train: training data to scatter, optional.
        levels: interval levels in (0, 1), one pair of bands each.
        ax: matplotlib axes; a new figure when None.
        legend: draw the legend (the artists keep their labels either way).
    """
    predictive = _regression_predictive(predictive, "plot_predictive_1d")
    x = np.asarray(x, np.float64).reshape(-1)
    mean = np.asarray(predictive.mean)
    if mean.ndim != 1 or mean.shape[0] != x.shape[0]:
        raise ValueError(
            f"plot_predictive_1d needs one target per input: x has {x.shape[0]} values, "
            f"the predictive mean has shape {mean.shape}")
    levels = sorted((check_level(level) for level in levels), reverse=True)
    ax = _axes(ax)
    order = np.argsort(x)
    x_sorted = x[order]
    epistemic_sd = np.sqrt(np.asarray(predictive.epistemic_var))[order]
    for i, level in enumerate(levels):
        lower, upper = (np.asarray(b)[order] for b in predictive.interval(level))
        alpha = 0.15 + 0.1 * i
        ax.fill_between(x_sorted, lower, upper, color="C0", alpha=alpha, linewidth=0,
                        label=f"total {level:.0%}")
        z = stats.norm.ppf(0.5 + level / 2)
        ax.fill_between(x_sorted, mean[order] - z * epistemic_sd, mean[order] + z * epistemic_sd,
                        color="C1", alpha=alpha + 0.1, linewidth=0, label=f"epistemic {level:.0%}")
    ax.plot(x_sorted, mean[order], color="C0", linewidth=2, label="predictive mean")
    if x_train is not None and y_train is not None:
        ax.scatter(np.ravel(x_train), np.ravel(y_train), s=8, color="k", alpha=0.6,
                   label="training data", zorder=3)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    if legend:
        ax.legend(loc="best", fontsize="small")
    return ax


def plot_methods_1d(x, predictives, *, x_train=None, y_train=None, level=0.95, axes=None):
    """The predictives of several methods over a 1-D input, one panel each, side by side.

    Each panel is `plot_predictive_1d` at one level: the predictive mean, the
    total central interval and, in another colour, the epistemic band
    `mean -/+ z * sqrt(epistemic_var)`, with the training data and the
    method's name as the title. All panels share the x and y limits, so the
    widths of the bands compare directly; the first panel holds the legend.

    Args:
        x: `(B,)` inputs (or `(B, 1)`) the predictives are at, in any order.
        predictives: a dict from method name to a regression `Predictive` with
            one target at each of `x`, drawn in the dict's order.
        x_train, y_train: training data to scatter in every panel, optional
            (both or neither).
        level: the intervals' level, in (0, 1).
        axes: one matplotlib axes per method (any array shape, read in row
            order); when None, a new `pyplot` figure with a grid of panels, at
            most four across (axes left over in the grid are hidden).

    Returns:
        A 1-D numpy array of the axes drawn on, one per method in the order of
        `predictives` (the figure is `axes[0].figure`).

    Example:

    >>> axes = plot_methods_1d(x, {"vi": model_vi.predict_distribution(x),
    ...                            "hmc": model_hmc.predict_distribution(x)},
    ...                        x_train=x_train, y_train=y_train)  # doctest: +SKIP
    """
    level = check_level(level)
    x = np.asarray(x, np.float64).reshape(-1)
    _check_methods_1d(x, predictives, x_train, y_train)
    n = len(predictives)
    if axes is None:
        import matplotlib.pyplot as plt

        ncols = min(n, 4)
        nrows = -(-n // ncols)
        _, grid = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.0 * nrows),
                               squeeze=False, layout="constrained")
        grid = grid.ravel()
        for spare in grid[n:]:
            spare.set_visible(False)
        axes = grid[:n]
        created = ncols
    else:
        created = None
        axes = np.asarray(axes, dtype=object).reshape(-1)
        if len(axes) != n:
            raise ValueError(f"axes has {len(axes)} axes for {n} methods: pass one per method")
    for i, (ax, (name, predictive)) in enumerate(zip(axes, predictives.items(), strict=True)):
        plot_predictive_1d(x, predictive, x_train=x_train, y_train=y_train, levels=(level,),
                           ax=ax, legend=i == 0)
        ax.set_title(str(name))
    # Common limits: the union of what each panel needs.
    xlims = np.array([ax.get_xlim() for ax in axes])
    ylims = np.array([ax.get_ylim() for ax in axes])
    for ax in axes:
        ax.set_xlim(xlims[:, 0].min(), xlims[:, 1].max())
        ax.set_ylim(ylims[:, 0].min(), ylims[:, 1].max())
    if created:
        label_grid(axes, created)
    return axes


def _check_methods_1d(x, predictives, x_train, y_train) -> None:
    """Refuses what `plot_methods_1d` cannot draw, naming the method at fault."""
    if not isinstance(predictives, Mapping):
        raise ValueError("plot_methods_1d needs a dict from method name to Predictive, got "
                         f"{type(predictives).__name__}")
    if not predictives:
        raise ValueError("plot_methods_1d needs at least one method: predictives is empty")
    for name, predictive in predictives.items():
        if not isinstance(predictive, Predictive) or predictive.is_classification:
            kind = ("a classification Predictive" if isinstance(predictive, Predictive)
                    else f"a {type(predictive).__name__}")
            raise ValueError(f"plot_methods_1d needs a regression Predictive for every method; "
                             f"predictives[{name!r}] is {kind}")
        shape = np.shape(predictive.mean)
        if shape != x.shape:
            raise ValueError(f"plot_methods_1d needs one target per input: x has {x.shape[0]} "
                             f"values, the mean of predictives[{name!r}] has shape {shape}")
    if (x_train is None) != (y_train is None):
        raise ValueError("plot_methods_1d needs x_train and y_train together, or neither")
    if x_train is not None and np.size(x_train) != np.size(y_train):
        raise ValueError(f"x_train has {np.size(x_train)} values but y_train has "
                         f"{np.size(y_train)}: one target per training input")


def label_grid(axes, ncols: int) -> None:
    """Leaves axis labels only on the outside of a row-major grid of panels with common limits.

    Tick labels and the axis label go from every panel with another panel below it
    (x) or to its left (y): `axes` are the grid's first panels in row order, so the
    last row may be short and the panels above its gap keep their x labels.
    """
    axes = np.asarray(axes, dtype=object).reshape(-1)
    for i, ax in enumerate(axes):
        if i % ncols:
            ax.set_ylabel("")
            ax.tick_params(labelleft=False)
        if i + ncols < len(axes):
            ax.set_xlabel("")
            ax.tick_params(labelbottom=False)


def plot_predicted_vs_true(y_true, predictive, *, level=0.95, ax=None):
    """Predictive mean against the truth, with central intervals as error bars.

    Args:
        y_true: targets; several targets are pooled.
        predictive: a regression `Predictive`.
        level: the error bars' interval level.
        ax: matplotlib axes; a new figure when None.
    """
    predictive = _regression_predictive(predictive, "plot_predicted_vs_true")
    y = predictive_targets(y_true, predictive).reshape(-1)
    mean = np.asarray(predictive.mean).reshape(-1)
    lower, upper = (np.asarray(b).reshape(-1) for b in predictive.interval(level))
    ax = _axes(ax)
    ax.errorbar(y, mean, yerr=np.stack([mean - lower, upper - mean]), fmt="o", markersize=3,
                elinewidth=0.8, alpha=0.6, label=f"mean and {level:.0%} interval")
    limits = [min(y.min(), lower.min()), max(y.max(), upper.max())]
    ax.plot(limits, limits, "k--", linewidth=1, label="y = x")
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted value")
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_calibration_curve(y_true, predictive, *, levels=None, ax=None):
    """Observed against expected proportion of targets below each predictive quantile.

    Args:
        y_true: targets.
        predictive: a regression `Predictive` or a Gaussian `(mean, std)` tuple.
        levels: probabilities in [0, 1] (see `tfbnn.metrics.calibration_curve`).
        ax: matplotlib axes; a new figure when None.
    """
    expected, observed = metrics.calibration_curve(y_true, predictive, levels)
    area = metrics.miscalibration_area(y_true, predictive, levels)
    ax = _axes(ax)
    _unit_square(ax, "expected proportion below quantile", "observed proportion")
    ax.plot(expected, observed, color="C0", linewidth=2, label="model")
    ax.fill_between(expected, expected, observed, color="C0", alpha=0.2,
                    label=f"miscalibration area {area:.3f}")
    ax.legend(loc="upper left", fontsize="small")
    return ax


def plot_coverage(y_true, predictive, *, levels=None, ax=None):
    """Empirical coverage of the central intervals against their nominal level.

    Args:
        y_true: targets.
        predictive: a regression `Predictive` or a Gaussian `(mean, std)` tuple.
        levels: nominal levels in (0, 1) (see `tfbnn.metrics.coverage_curve`).
        ax: matplotlib axes; a new figure when None.
    """
    levels, observed = metrics.coverage_curve(y_true, predictive, levels)
    ax = _axes(ax)
    _unit_square(ax, "nominal interval level", "fraction of targets inside")
    ax.plot(levels, observed, "o-", color="C0", markersize=4, label="empirical coverage")
    ax.legend(loc="upper left", fontsize="small")
    return ax


def plot_reliability_diagram(y_true, predictive, n_bins=10, *, strategy="uniform", ax=None):
    """Accuracy against confidence per bin, with the gap to the diagonal shaded.

    Args:
        y_true: class labels.
        predictive: a classification `Predictive` or probabilities `(B, K)`.
        n_bins: number of confidence bins.
        strategy: `"uniform"` or `"quantile"` bins (see `tfbnn.metrics.reliability_bins`).
        ax: matplotlib axes; a new figure when None.
    """
    bins = metrics.reliability_bins(y_true, predictive, n_bins, strategy)
    ece = metrics.expected_calibration_error(y_true, predictive, n_bins, strategy)
    left = bins["edges"][bins["bin"]]
    width = bins["edges"][bins["bin"] + 1] - left
    ax = _axes(ax)
    ax.bar(left, bins["accuracy"], width=width, align="edge", color="C0", edgecolor="k",
           linewidth=0.5, label="accuracy")
    gap = bins["confidence"] - bins["accuracy"]
    ax.bar(left, np.abs(gap), bottom=np.minimum(bins["accuracy"], bins["confidence"]),
           width=width, align="edge", color="C3", alpha=0.35, hatch="//", linewidth=0,
           label="gap to confidence")
    _unit_square(ax, "confidence (top class probability)", "accuracy")
    ax.set_title(f"ECE = {ece:.3f}")
    ax.legend(loc="upper left", fontsize="small")
    return ax


_LEFT_SERIES = {"loss": ("loss (negative ELBO)", "C0"), "nll": ("NLL", "C1"),
                "val_nll": ("validation NLL", "C2")}


def _history_dict(history) -> dict:
    if hasattr(history, "as_dict"):  # tfbnn.training.History
        history = history.as_dict()
    elif hasattr(history, "history") and isinstance(history.history, dict):  # keras History
        history = history.history
    if not isinstance(history, dict):
        raise ValueError(f"history must be a dict of per-epoch lists, got {type(history).__name__}")
    return history


def has_training_curves(history) -> bool:
    """Whether `history` holds any per-epoch `loss`, `nll`, `kl` or `val_nll` values."""
    history = _history_dict(history)
    return any(len(history.get(key) or []) for key in (*_LEFT_SERIES, "kl"))


def plot_training_curves(history, ax=None):
    """Loss, NLL and validation NLL per epoch; the KL term on a second y-axis.

    Args:
        history: a dict of per-epoch lists, `nll`, `kl`, `loss` and optionally
            `val_nll` (a `tfbnn.training.History` or a Keras `History` also
            work). Series that are missing or empty are left out, but at least
            one must be there.
        ax: matplotlib axes; a new figure when None.

    Returns:
        The axes of the loss and NLL curves; the KL axes is `ax.right_ax` (None
        without a KL series).
    """
    history = _history_dict(history)
    if not has_training_curves(history):
        raise ValueError(
            f"history has no per-epoch values for any of {[*_LEFT_SERIES, 'kl']}; "
            f"got keys {sorted(history)}")
    ax = _axes(ax)
    for key, (label, color) in _LEFT_SERIES.items():
        values = history.get(key) or []
        if len(values):
            ax.plot(np.arange(1, len(values) + 1), values, color=color, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("per-example loss")
    ax.right_ax = None
    lines = ax.get_lines()
    kl = history.get("kl") or []
    if len(kl):
        # The KL term is often orders of magnitude apart from the NLL: its own axis.
        ax.right_ax = ax.twinx()
        ax.right_ax.plot(np.arange(1, len(kl) + 1), kl, color="C3", linestyle="--",
                         label="KL term")
        ax.right_ax.set_ylabel("KL term")
        lines = lines + ax.right_ax.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="best", fontsize="small")
    return ax
