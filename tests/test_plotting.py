"""Plots draw what they say, on the axes they are given, and return them."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy import special  # noqa: E402

from tfbnn import metrics, plotting  # noqa: E402
from tfbnn.likelihoods import Categorical, Gaussian  # noqa: E402
from tfbnn.predictive import Predictive  # noqa: E402

RNG = np.random.default_rng(11)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def regression():
    x = RNG.uniform(-3, 3, 80)
    locs = np.sin(x)[None] + 0.2 * x[None] * RNG.normal(size=(10, 1))
    predictive = Predictive(Gaussian(scale=0.3), locs[..., None], squeeze=True)
    return x, predictive, np.sin(x) + 0.3 * RNG.normal(size=80)


@pytest.fixture(scope="module")
def classification():
    logits = 3 * RNG.normal(size=(5, 100, 3))
    labels = RNG.integers(0, 3, 100)
    return Predictive(Categorical(3), logits), labels


def test_predictive_1d_draws_bands_mean_and_data(regression):
    x, predictive, y = regression
    ax = plotting.plot_predictive_1d(x, predictive, x_train=x[:20], y_train=y[:20],
                                     levels=(0.5, 0.95))
    assert isinstance(ax, Axes)
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["total 95%", "epistemic 95%", "total 50%", "epistemic 50%",
                      "predictive mean", "training data"]
    mean_line = ax.get_lines()[0]
    order = np.argsort(x)
    np.testing.assert_allclose(mean_line.get_xdata(), x[order])
    np.testing.assert_allclose(mean_line.get_ydata(), predictive.mean[order])


def test_plots_use_the_axes_they_are_given(regression, classification):
    x, predictive, y = regression
    cls_predictive, labels = classification
    figure = Figure()
    axes = figure.subplots(2, 3).ravel()
    calls = [
        lambda ax: plotting.plot_predictive_1d(x, predictive, ax=ax),
        lambda ax: plotting.plot_predicted_vs_true(y, predictive, ax=ax),
        lambda ax: plotting.plot_calibration_curve(y, predictive, ax=ax),
        lambda ax: plotting.plot_coverage(y, predictive, ax=ax),
        lambda ax: plotting.plot_reliability_diagram(labels, cls_predictive, ax=ax),
        lambda ax: plotting.plot_training_curves({"nll": [2, 1], "kl": [5, 4], "loss": [7, 5]},
                                                 ax=ax),
    ]
    for ax, call in zip(axes, calls, strict=True):
        assert call(ax) is ax
        assert ax.has_data()


def test_calibration_and_coverage_curves_plot_the_metric_values(regression):
    _, predictive, y = regression
    ax = plotting.plot_calibration_curve(y, predictive)
    expected, observed = metrics.calibration_curve(y, predictive)
    model_line = ax.get_lines()[1]
    np.testing.assert_allclose(model_line.get_xdata(), expected)
    np.testing.assert_allclose(model_line.get_ydata(), observed)
    ax = plotting.plot_coverage(y, predictive, levels=[0.5, 0.9])
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(),
                               [metrics.coverage(y, predictive, 0.5),
                                metrics.coverage(y, predictive, 0.9)], atol=1 / 80)


def test_predicted_vs_true_error_bars_are_the_intervals(regression):
    _, predictive, y = regression
    ax = plotting.plot_predicted_vs_true(y, predictive, level=0.8)
    container = ax.containers[0]
    segments = container.lines[2][0].get_segments()
    lower, upper = predictive.interval(0.8)
    np.testing.assert_allclose([s[0][1] for s in segments], lower, rtol=1e-6)
    np.testing.assert_allclose([s[1][1] for s in segments], upper, rtol=1e-6)


def test_reliability_diagram_bars_are_bin_accuracies(classification):
    predictive, labels = classification
    ax = plotting.plot_reliability_diagram(labels, predictive, n_bins=5)
    bins = metrics.reliability_bins(labels, predictive, n_bins=5)
    heights = [patch.get_height() for patch in ax.containers[0]]
    np.testing.assert_allclose(heights, bins["accuracy"])
    assert ax.get_title() == f"ECE = {metrics.expected_calibration_error(labels, predictive, 5):.3f}"
    probs = special.softmax(predictive.params.numpy(), axis=-1).mean(axis=0)
    ax = plotting.plot_reliability_diagram(labels, probs, n_bins=4, strategy="quantile")
    assert sum(patch.get_width() for patch in ax.containers[0]) == pytest.approx(
        probs.max(axis=1).max() - probs.max(axis=1).min())


def test_training_curves_plot_every_series():
    history = {"nll": [3.0, 2.0, 1.5], "kl": [40.0, 30.0, 25.0], "loss": [3.4, 2.3, 1.75],
               "val_nll": [3.1, 2.2, 1.9]}
    ax = plotting.plot_training_curves(history)
    assert [line.get_label() for line in ax.get_lines()] == [
        "loss (negative ELBO)", "NLL", "validation NLL"]
    np.testing.assert_allclose(ax.right_ax.get_lines()[0].get_ydata(), history["kl"])
    no_val = plotting.plot_training_curves({**history, "val_nll": []})
    assert len(no_val.get_lines()) == 2
    no_kl = plotting.plot_training_curves({"loss": [2.0, 1.0]})
    assert no_kl.right_ax is None and len(no_kl.get_lines()) == 1


def test_plotting_errors(regression, classification):
    x, predictive, y = regression
    cls_predictive, labels = classification
    with pytest.raises(ValueError, match="plot_predictive_1d needs a regression Predictive"):
        plotting.plot_predictive_1d(x, cls_predictive)
    with pytest.raises(ValueError, match="x has 79 values"):
        plotting.plot_predictive_1d(x[:-1], predictive)
    with pytest.raises(ValueError, match="level must be strictly between 0 and 1"):
        plotting.plot_predictive_1d(x, predictive, levels=(95,))
    with pytest.raises(ValueError, match="history has no per-epoch values"):
        plotting.plot_training_curves({"acceptance_rate": [0.7], "loss": []})
    with pytest.raises(ValueError, match="history must be a dict"):
        plotting.plot_training_curves([1, 2, 3])
    with pytest.raises(ValueError, match="Unknown strategy='width'"):
        plotting.plot_reliability_diagram(labels, cls_predictive, strategy="width")
    with pytest.raises(ValueError, match="y_true has 79 examples but the predictive has 80"):
        plotting.plot_predicted_vs_true(y[:-1], predictive)


# -- several methods side by side --------------------------------------------------------


def _method_predictives(x, n=3):
    """Regression predictives at `x` whose epistemic spread grows with the method's index."""
    rng = np.random.default_rng(5)
    locs = [np.sin(x)[None] + (i + 1) * 0.1 * rng.normal(size=(20, 1)) for i in range(n)]
    return {f"method {i}": Predictive(Gaussian(scale=0.2), loc[..., None], squeeze=True)
            for i, loc in enumerate(locs)}


def test_predictive_1d_without_legend_keeps_the_labels(regression):
    x, predictive, _ = regression
    ax = plotting.plot_predictive_1d(x, predictive, legend=False)
    assert ax.get_legend() is None
    assert [c.get_label() for c in ax.collections] == ["total 95%", "epistemic 95%"]


def test_methods_1d_one_panel_per_method_with_bands_and_data():
    x = np.linspace(-3, 3, 60)
    x_train, y_train = x[::3], np.sin(x[::3])
    predictives = _method_predictives(x)
    axes = plotting.plot_methods_1d(x, predictives, x_train=x_train, y_train=y_train, level=0.9)
    assert isinstance(axes, np.ndarray) and axes.shape == (3,)
    assert [ax.get_title() for ax in axes] == list(predictives)
    for ax, predictive in zip(axes, predictives.values(), strict=True):
        total, epistemic, data = ax.collections
        assert [total.get_label(), epistemic.get_label(), data.get_label()] == [
            "total 90%", "epistemic 90%", "training data"]
        assert total.get_facecolor()[0].tolist() != epistemic.get_facecolor()[0].tolist()
        np.testing.assert_allclose(data.get_offsets(), np.c_[x_train, y_train])
        # The epistemic band is mean -/+ z sqrt(epistemic_var), z for the 90% level.
        upper = predictive.mean + 1.6448536 * np.sqrt(predictive.epistemic_var)
        assert epistemic.get_paths()[0].vertices[:, 1].max() == pytest.approx(upper.max(), 1e-5)
        np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), predictive.mean)
    # Common limits, wide enough for the widest method's bands; one legend, on the first.
    assert len({ax.get_xlim() for ax in axes}) == 1 and len({ax.get_ylim() for ax in axes}) == 1
    widest = predictives["method 2"].interval(0.9)
    assert axes[0].get_ylim()[0] <= widest[0].min() and axes[0].get_ylim()[1] >= widest[1].max()
    assert axes[0].get_legend() is not None
    assert all(ax.get_legend() is None for ax in axes[1:])


def test_methods_1d_new_figure_grid_hides_the_spare_panels():
    x = np.linspace(-3, 3, 30)
    axes = plotting.plot_methods_1d(x, _method_predictives(x, n=5))
    figure = axes[0].figure
    assert len(axes) == 5 and len(figure.axes) == 8
    assert [ax.get_visible() for ax in figure.axes] == [True] * 5 + [False] * 3
    # x tick labels only where no panel is below, y tick labels only in the first column.
    assert axes[0].xaxis.label.get_text() == "" and axes[3].xaxis.label.get_text() == "x"
    assert axes[4].yaxis.label.get_text() == "y" and axes[1].yaxis.label.get_text() == ""


def test_methods_1d_uses_the_axes_it_is_given():
    x = np.linspace(-3, 3, 30)
    grid = Figure().subplots(2, 1)
    axes = plotting.plot_methods_1d(x, _method_predictives(x, n=2), axes=grid)
    assert list(axes) == list(grid)
    assert all(ax.has_data() for ax in grid)


def test_methods_1d_errors(classification):
    x = np.linspace(-3, 3, 30)
    predictives = _method_predictives(x, n=2)
    cls_predictive, _ = classification
    with pytest.raises(ValueError, match="needs at least one method: predictives is empty"):
        plotting.plot_methods_1d(x, {})
    with pytest.raises(ValueError, match="needs a dict from method name to Predictive, got list"):
        plotting.plot_methods_1d(x, list(predictives.values()))
    with pytest.raises(ValueError, match=r"predictives\['bad'\] is a ndarray"):
        plotting.plot_methods_1d(x, {**predictives, "bad": np.zeros(30)})
    with pytest.raises(ValueError, match=r"predictives\['cls'\] is a classification Predictive"):
        plotting.plot_methods_1d(x, {"cls": cls_predictive})
    with pytest.raises(ValueError, match=r"x has 29 values, the mean of predictives\['method 0'\]"):
        plotting.plot_methods_1d(x[:-1], predictives)
    with pytest.raises(ValueError, match="x_train and y_train together"):
        plotting.plot_methods_1d(x, predictives, x_train=x)
    with pytest.raises(ValueError, match="x_train has 30 values but y_train has 29"):
        plotting.plot_methods_1d(x, predictives, x_train=x, y_train=x[:-1])
    with pytest.raises(ValueError, match="axes has 3 axes for 2 methods"):
        plotting.plot_methods_1d(x, predictives, axes=Figure().subplots(1, 3))
    with pytest.raises(ValueError, match="level must be strictly between 0 and 1"):
        plotting.plot_methods_1d(x, predictives, level=95)
