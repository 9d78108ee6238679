"""CUDA-graph training steps: same training as eager steps, fallback, parameter checks."""

import warnings

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from nfestimators import NeuroformerClassifier, NeuroformerPretrainer
from nfestimators.datasets import make_spiking_data
from nfestimators.training.graphs import GraphedTrainStep

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class GraphCounts(Callback):
    """Records the graphs captured and replayed by the fit so far (the graphs themselves go
    when fit ends)."""

    def on_epoch_end(self, net, **kwargs):
        self.n_graphs = net.graphed_.n_graphs if net.graphed_ is not None else 0
        self.n_replays = net.graphed_.n_replays if net.graphed_ is not None else 0


def test_cuda_graphs_parameter_off_cuda():
    data = make_spiking_data(n_neurons=8, duration=8.0, random_state=0)
    pre = NeuroformerPretrainer(preset="tiny", max_epochs=1, device="cpu", random_state=0)
    assert pre.fit(data.windows).cuda_graphs_ is False
    with pytest.raises(ValueError, match="one CUDA device"):
        pre.set_params(cuda_graphs=True).fit(data.windows)
    with pytest.raises(ValueError, match="'cuda_graphs' parameter of .* must be"):
        pre.set_params(cuda_graphs="always").fit(data.windows)


@cuda
def test_graphed_pretraining_matches_eager():
    """Without dropout, graph replays train exactly what eager steps train (fp32)."""
    data = make_spiking_data(n_neurons=24, duration=40.0, stimulus=True, random_state=0)
    histories, models = {}, {}
    for graphs in (False, True):
        counts = GraphCounts()
        pre = NeuroformerPretrainer(
            preset="tiny", dropout=0.0, max_epochs=4, batch_size=32, precision="fp32",
            device="cuda", cuda_graphs=graphs, validation_fraction=0.2, random_state=0,
            callbacks=[("graphs", counts)])
        pre.fit(data.windows)
        assert pre.cuda_graphs_ is graphs
        histories[graphs] = [row["train_loss"] for row in pre.history_]
        models[graphs] = pre
        if graphs:
            assert counts.n_graphs >= 1
            assert counts.n_replays > counts.n_graphs
    np.testing.assert_allclose(histories[True], histories[False], rtol=2e-3)
    latents = [models[g].transform(data.windows) for g in (False, True)]
    np.testing.assert_allclose(latents[1], latents[0], atol=2e-2)
    assert "train_contrastive" in models[True].history_[-1]


@cuda
def test_graphed_regularised_classifier_matches_eager():
    """Jitter, neuron dropout, the weight average and label smoothing: graph replays train
    what eager steps train (fp32, no model dropout), and the graphs are not abandoned. No
    count decoder blended in after training: its weight is an argmin over validation losses,
    which two fits equal to 2e-3 may place on neighbouring weights."""
    data = make_spiking_data(n_neurons=24, duration=40.0, random_state=0)
    X, y = data.windows, data.labels
    histories, probas = {}, {}
    for graphs in (False, True):
        counts = GraphCounts()
        clf = NeuroformerClassifier(
            preset="tiny", dropout=0.0, max_epochs=4, precision="fp32", device="cuda",
            cuda_graphs=graphs, validation_fraction=0.2, random_state=0, augment_jitter=1,
            augment_neuron_dropout=0.2, ema_decay=0.9, label_smoothing=0.1,
            count_decoder="none", callbacks=[("graphs", counts)])
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # a failed capture warns
            clf.fit(X, y)
        histories[graphs] = [row["valid_loss"] for row in clf.history_]
        probas[graphs] = clf.predict_proba(X)
        if graphs:
            assert counts.n_replays > counts.n_graphs >= 1
    np.testing.assert_allclose(histories[True], histories[False], rtol=2e-3)
    # the histories agree to 2e-3; the GPU's unordered reductions (atomics) move a few
    # probabilities more (H200: 9 of 3,200 by 0.05 to 0.07)
    difference = np.abs(probas[True] - probas[False])
    assert difference.mean() < 1e-2 and difference.max() < 0.1


@cuda
def test_graphed_classifier_learns_with_dropout_and_bf16():
    data = make_spiking_data(n_neurons=24, duration=60.0, random_state=1)
    X, y = data.windows, data.labels
    clf = NeuroformerClassifier(preset="tiny", max_epochs=15, lr=3e-3, device="cuda",
                                precision="bf16", random_state=0, validation_fraction=None)
    clf.fit(X, y)
    assert clf.cuda_graphs_ is True
    assert clf.history_[-1]["train_loss"] < clf.history_[0]["train_loss"]
    assert clf.score(X, y) > 1.5 / len(np.unique(y))


@cuda
def test_capture_failure_falls_back_to_eager_steps():
    model = torch.nn.Linear(4, 1).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True, capturable=True)

    def step(batch):
        loss = ((model(batch["x"]) - batch["y"]) ** 2).mean()
        if loss.item() < 0:  # a host sync: cannot be captured
            raise AssertionError
        loss.backward()
        opt.step()
        return loss, {"mse": loss}

    graphed = GraphedTrainStep(step, opt, "cuda", warmup=1)
    batch = {"x": torch.randn(16, 4, device="cuda"), "y": torch.randn(16, 1, device="cuda")}
    losses = [graphed(batch)[0].item()]  # eager warm-up
    with pytest.warns(RuntimeWarning, match="CUDA graph capture failed"):
        losses.append(graphed(batch)[0].item())  # capture fails, the step runs eagerly
    losses += [graphed(batch)[0].item() for _ in range(5)]
    assert not graphed.enabled and graphed.n_graphs == 0
    assert losses[-1] < losses[0]


@cuda
def test_graph_replay_follows_the_learning_rate():
    """The captured optimizer reads the LR from the param group before every replay."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1, bias=False).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0, fused=True,
                            capturable=True)

    def step(batch):
        loss = model(batch["x"]).sum()
        loss.backward()
        opt.step()
        return loss, {}

    graphed = GraphedTrainStep(step, opt, "cuda", warmup=1)
    batch = {"x": torch.ones(2, 4, device="cuda")}
    graphed(batch)  # eager warm-up
    graphed(batch)  # captured and replayed
    assert graphed.n_graphs == 1
    before = model.weight.detach().clone()
    opt.param_groups[0]["lr"] = 0.0
    graphed(batch)
    torch.testing.assert_close(model.weight, before)
    opt.param_groups[0]["lr"] = 1e-2
    graphed(batch)
    assert not torch.equal(model.weight, before)
