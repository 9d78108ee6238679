"""sklearn's output API: feature names and pandas output of the transformers."""

import numpy as np
import pytest
from sklearn import config_context
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from nfestimators import NeuroformerPretrainer, SpikeTokenizer
from nfestimators.data import SpikeTokens
from nfestimators.datasets import make_spiking_data

pd = pytest.importorskip("pandas")
FAST = dict(preset="tiny", random_state=0, device="cpu", max_epochs=1, n_iter_no_change=None)


@pytest.fixture(scope="module")
def data():
    return make_spiking_data(n_neurons=10, duration=6.0, random_state=0)


def test_pretrainer_feature_names_and_pandas_output(data):
    X = data.windows
    pre = NeuroformerPretrainer(**FAST).fit(X)
    Z = pre.transform(X)
    names = pre.get_feature_names_out()
    assert names.tolist() == [f"neuroformerpretrainer{i}" for i in range(Z.shape[1])]
    frame = pre.set_output(transform="pandas").transform(X)
    assert isinstance(frame, pd.DataFrame) and frame.columns.tolist() == names.tolist()
    np.testing.assert_allclose(frame.to_numpy(), Z)
    with config_context(transform_output="pandas"):  # the global setting is honoured too
        probe = make_pipeline(NeuroformerPretrainer(**FAST), LogisticRegression(max_iter=200))
        probe.fit(X, data.labels)
    assert probe[-1].feature_names_in_.tolist() == names.tolist()


def test_tokenizer_refuses_table_output_and_ignores_the_global_setting(data):
    tok = SpikeTokenizer().fit(data.windows)
    assert tok.set_output(transform="default") is tok
    with pytest.raises(ValueError, match="returns SpikeTokens, not a table"):
        tok.set_output(transform="pandas")
    with config_context(transform_output="pandas"):
        assert isinstance(tok.transform(data.windows), SpikeTokens)
