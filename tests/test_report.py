"""The HTML report is one self-contained file with the metrics table and real PNG images."""

import matplotlib

matplotlib.use("Agg")

import base64  # noqa: E402
import re  # noqa: E402
from html.parser import HTMLParser  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from tfbnn import metrics  # noqa: E402
from tfbnn.likelihoods import Categorical, Gaussian  # noqa: E402
from tfbnn.predictive import Predictive  # noqa: E402
from tfbnn.report import build_report, format_table, write_html_report  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RNG = np.random.default_rng(12)


class _Page(HTMLParser):
    """Collects table cells and image sources; fails on nothing, records everything."""

    def __init__(self):
        super().__init__()
        self.cells, self.images, self.title, self._in = [], [], None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        self._in = tag

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in in ("th", "td"):
            self.cells.append(data)
        elif self._in == "title":
            self.title = data


def parse(path):
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def decode_png(src):
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix)
    return base64.b64decode(src[len(prefix):], validate=True)


def test_report_holds_the_table_and_decodable_pngs(tmp_path):
    figure = Figure()
    figure.subplots().plot([0, 1], [1, 0])
    path = tmp_path / "report.html"
    returned = write_html_report(path, {"rmse": 0.12345678, "n": 10, "note": "<b>x</b>"},
                                 {"A line": figure}, title="Run <1>")
    assert returned == str(path)
    page = parse(path)
    assert page.title == "Run <1>"
    assert page.cells == ["metric", "value", "rmse", "0.1235", "n", "10", "note", "<b>x</b>"]
    assert len(page.images) == 1
    assert decode_png(page.images[0]).startswith(PNG_SIGNATURE)
    text = path.read_text(encoding="utf-8")
    assert "&lt;b&gt;x&lt;/b&gt;" in text and "<b>x</b>" not in text  # escaped
    assert not re.search(r"(src|href)=\"(https?:)?//", text)  # nothing external


def test_report_without_figures(tmp_path):
    path = write_html_report(tmp_path / "plain.html", {"accuracy": 0.9})
    page = parse(tmp_path / "plain.html")
    assert page.images == [] and "accuracy" in page.cells
    assert path.endswith("plain.html")


def test_build_report_for_regression_with_history(tmp_path):
    loc = RNG.normal(size=60)
    predictive = Predictive(Gaussian(scale=0.5), (loc + 0.1 * RNG.normal(size=(8, 60)))[..., None],
                            squeeze=True)
    y = loc + 0.5 * RNG.normal(size=60)
    history = {"nll": [2.0, 1.0], "kl": [3.0, 2.0], "loss": [5.0, 3.0], "val_nll": [2.1, 1.2]}
    results, figures = build_report(y, predictive, history, level=0.9)
    assert results["coverage"] == metrics.coverage(y, predictive, 0.9)
    assert list(figures) == ["Predicted vs true", "Calibration curve", "Interval coverage",
                             "Training curves"]
    write_html_report(tmp_path / "r.html", results, figures)
    page = parse(tmp_path / "r.html")
    assert len(page.images) == 4
    assert all(decode_png(src).startswith(PNG_SIGNATURE) for src in page.images)
    assert "crps" in page.cells


def test_build_report_for_classification():
    predictive = Predictive(Categorical(3), RNG.normal(size=(4, 50, 3)))
    labels = RNG.integers(0, 3, 50)
    results, figures = build_report(labels, predictive, history={"acceptance_rate": [0.8]})
    assert list(figures) == ["Reliability diagram"]  # no per-epoch losses: no curves
    assert results["accuracy"] == metrics.accuracy(labels, predictive)


def test_report_errors(tmp_path):
    with pytest.raises(ValueError, match="metrics must be a dict"):
        write_html_report(tmp_path / "x.html", [("rmse", 1.0)])
    with pytest.raises(ValueError, match=r"figures\['plot'\] must be a matplotlib Figure"):
        write_html_report(tmp_path / "x.html", {}, {"plot": np.zeros(3)})


def test_format_table_aligns_names_and_rounds_floats():
    text = format_table([("rows", 60), ("rmse", 0.123456), ("final nll", np.float32(2.5)),
                         ("task", "regression")])
    assert text.splitlines() == ["rows       60", "rmse       0.1235", "final nll  2.5",
                                 "task       regression"]
