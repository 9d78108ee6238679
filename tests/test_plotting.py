"""Tests of nfestimators.plotting (Agg backend, no display)."""

import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nfestimators.data import SpikeWindows  # noqa: E402
from nfestimators.plotting import plot_embedding, plot_loss, plot_psth, plot_raster  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def windows():
    counts = np.random.default_rng(0).poisson(0.3, size=(6, 200))
    return SpikeWindows.from_counts(counts, dt=0.01, window=0.05)


def test_plot_raster_single_and_pair(windows):
    ax = plot_raster(windows)
    offsets = np.asarray(ax.collections[0].get_offsets())
    assert len(offsets) == windows.n_spikes().sum()
    assert ax.get_xlim() == pytest.approx((0, 2.0)) and ax.get_xlabel() == "time (s)"
    counts = windows.to_counts()
    axes = plot_raster(windows, generated=counts)
    assert axes.shape == (2,) and [a.get_title() for a in axes] == ["true", "generated"]
    generated = np.asarray(axes[1].collections[0].get_offsets())
    assert len(generated) == np.count_nonzero(counts)  # one mark per occupied bin
    np.testing.assert_allclose(np.unique(generated, axis=0), np.unique(offsets, axis=0))
    assert axes[1].get_xlabel() == "time (s)"


def test_plot_raster_neurons_and_given_axes(windows):
    counts = windows.to_counts()
    fig, (a, b) = plt.subplots(1, 2)
    axes = plot_raster(counts, counts, ax=[a, b], neurons=[4, 1])
    assert axes[0] is a and axes[1] is b
    y = axes[0].collections[0].get_offsets()[:, 1]
    assert set(np.unique(y)) <= {0, 1}
    assert len(y) == counts[:, [4, 1]].astype(bool).sum()  # one mark per occupied bin
    assert [t.get_text() for t in a.get_yticklabels()] == ["4", "1"]


def test_plot_raster_bad_input(windows):
    with pytest.raises(ValueError, match="2 Axes"):
        plot_raster(windows, windows, ax=plt.subplots()[1])
    with pytest.raises(ValueError, match="neuron indices"):
        plot_raster(windows, neurons=[10])
    with pytest.raises(ValueError, match="same number of windows"):
        plot_raster(windows, generated=windows[:3])


def test_plot_psth(windows):
    ax = plot_psth(windows, windows)
    lines = ax.get_lines()
    assert len(lines) == 2 and ax.get_xlabel() == "time (s)"
    x, y = lines[0].get_data()
    np.testing.assert_allclose(x, windows.window_end - 0.025)
    np.testing.assert_array_equal(y, windows.n_spikes())
    ax = plot_psth(windows, neurons=[0, 3], bin_by="bin")
    assert len(ax.get_lines()) == 2 and len(ax.get_lines()[0].get_xdata()) == 200
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata()[:2], [0.005, 0.015])
    ax = plot_psth(windows.to_counts())
    assert ax.get_xlabel() == "time point"
    with pytest.raises(ValueError, match="neuron indices"):
        plot_psth(windows, neurons=[-1])


def test_plot_embedding():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(40, 5))
    ax = plot_embedding(Z, labels=np.repeat(["a", "b"], 20))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    ax = plot_embedding(Z[:, :2], labels=rng.normal(size=40))
    assert ax.get_xlabel() == "latent 1" and len(ax.figure.axes) == 2  # colour bar
    assert plot_embedding(Z).collections
    Z_before = Z.copy()
    plot_embedding(Z)
    np.testing.assert_array_equal(Z, Z_before)
    with pytest.raises(ValueError, match="2-D"):
        plot_embedding(np.ones(5))
    with pytest.raises(ValueError, match="NaN"):
        plot_embedding(np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="one value per sample"):
        plot_embedding(Z, labels=[1, 2])


def test_plot_loss():
    history = [{"epoch": 1, "train_loss": 3.0, "valid_loss": 3.5, "dur": 1.0},
               {"epoch": 2, "train_loss": 2.0, "valid_loss": None},
               {"epoch": 3, "train_loss": 1.0, "valid_loss": 2.5}]
    ax = plot_loss(history, log_scale=True)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines) == ["train_loss", "valid_loss"] and ax.get_yscale() == "log"
    assert lines["valid_loss"].get_xdata().tolist() == [1, 3]

    class Fitted:
        history_ = history

    assert len(plot_loss(Fitted(), keys="train_loss").get_lines()) == 1
    with pytest.raises(ValueError, match="list of dicts"):
        plot_loss([1, 2])
    with pytest.raises(ValueError, match="empty"):
        plot_loss([])
    with pytest.raises(ValueError, match="no key ending in 'loss'"):
        plot_loss([{"epoch": 1}])
    with pytest.raises(ValueError, match="no numeric value"):
        plot_loss(history, keys=["dur_loss"])


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"nfestimators\[plot\]"):
        plot_loss([{"train_loss": 1.0}])


# ------------------------------------------------ decoding plots, readable PSTH defaults
from nfestimators.plotting import plot_confusion_matrix, plot_true_vs_predicted  # noqa: E402


def test_plot_true_vs_predicted_scatter_and_traces():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(40, 2))
    pred = y + 0.1 * rng.normal(size=(40, 2))
    axes = plot_true_vs_predicted(y, pred, target_names=["x", "y"])
    assert axes.shape == (2,) and axes[0].get_xlabel() == "true x"
    assert np.allclose(axes[1].collections[0].get_offsets(), np.stack([y[:, 1], pred[:, 1]], 1))
    from sklearn.metrics import r2_score
    assert axes[0].get_title() == f"x: R² = {r2_score(y[:, 0], pred[:, 0]):.3f}"
    ax = plot_true_vs_predicted(y[:, 0], pred[:, 0], time=np.arange(40) * 0.05)
    assert [line.get_label() for line in ax.get_lines()] == ["true", "predicted"]
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), pred[:, 0])
    with pytest.raises(ValueError, match="same shape"):
        plot_true_vs_predicted(y, pred[:, 0])
    with pytest.raises(ValueError, match="name all 2 targets"):
        plot_true_vs_predicted(y, pred, target_names=["x"])
    with pytest.raises(ValueError, match="time must have one value"):
        plot_true_vs_predicted(y, pred, time=[1, 2])


def test_plot_confusion_matrix_counts_and_fractions():
    true = np.array(["a", "a", "b", "b", "b", "c"])
    pred = np.array(["a", "b", "b", "b", "c", "c"])
    ax = plot_confusion_matrix(true, pred)
    np.testing.assert_allclose(ax.images[0].get_array(),
                               [[0.5, 0.5, 0], [0, 2 / 3, 1 / 3], [0, 0, 1]])
    assert ax.images[0].colorbar.ax.get_ylabel() == "fraction of the true class"
    ax = plot_confusion_matrix(true, pred, normalize=None, labels=["c", "b", "a"])
    np.testing.assert_array_equal(ax.images[0].get_array(), [[1, 0, 0], [1, 2, 0], [0, 1, 1]])
    assert ax.images[0].colorbar.ax.get_ylabel() == "number of samples"
    with pytest.raises(ValueError, match="normalize"):
        plot_confusion_matrix(true, pred, normalize="rows")


def test_plot_embedding_colour_bar_is_labelled():
    Z = np.random.default_rng(0).normal(size=(40, 3))
    ax = plot_embedding(Z, labels=np.linspace(0, 1, 40), label_name="speed (cm/s)")
    assert ax.collections[0].colorbar.ax.get_ylabel() == "speed (cm/s)"
    ax = plot_embedding(Z, labels=np.arange(40) % 2, label_name="condition")
    assert ax.get_legend().get_title().get_text() == "condition"


def test_plot_psth_sums_trials_cut_from_one_recording():
    counts = np.random.default_rng(1).poisson(0.3, size=(3, 400))
    trial = np.repeat([0, 1, 2, 3], 100)  # four 1-s trials of one recording
    X = SpikeWindows.from_counts(counts, dt=0.01, window=0.1, trial=trial)
    line = plot_psth(X).get_lines()[0]
    np.testing.assert_allclose(line.get_xdata(), np.arange(10) * 0.1 + 0.05)
    per_trial = X.n_spikes().reshape(4, 10)
    np.testing.assert_array_equal(line.get_ydata(), per_trial.sum(axis=0))


def test_plot_psth_pools_a_long_recording():
    counts = np.random.default_rng(2).poisson(0.2, size=(2, 10000))
    X = SpikeWindows.from_counts(counts, dt=0.01, window=0.05)  # 2000 windows
    ax = plot_psth(X)
    x, y = ax.get_lines()[0].get_data()
    assert len(x) == 200 and ax.get_ylabel() == "spike count per 10 time points"
    np.testing.assert_array_equal(y, X.n_spikes().reshape(200, 10).sum(axis=1))
    np.testing.assert_allclose(x, (X.window_end - 0.025).reshape(200, 10).mean(axis=1))
    assert len(plot_psth(X, max_points=None).get_lines()[0].get_xdata()) == 2000
    with pytest.raises(ValueError, match="max_points"):
        plot_psth(X, max_points=1)
