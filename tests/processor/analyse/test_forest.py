"""The anomaly analyser's forest scores exactly as scikit-learn's IsolationForest does."""

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from gensight.processor.analyse.forest import Forest, fit_forest


def training_rows(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.abs(rng.standard_exponential((n, 18)) * rng.choice([0.0, 1.0, 3.0], size=(n, 18)))


@pytest.mark.parametrize("n_rows, max_samples", [(2000, 256), (300, 256), (40, 256), (2, 256)])
def test_scores_equal_scikit_learns_bit_for_bit(n_rows, max_samples):
    data = training_rows(n_rows, 1)
    forest = fit_forest(data, 100, max_samples, 0)
    reference = IsolationForest(n_estimators=100, max_samples=min(max_samples, n_rows), random_state=0).fit(data)
    probe = np.vstack([training_rows(50, 2), np.full((1, 18), 700.0), np.zeros((1, 18))])
    np.testing.assert_array_equal(forest.score_samples(probe), reference.score_samples(probe))


def test_feature_subsampling_is_followed():
    data = training_rows(500, 3)
    model = IsolationForest(n_estimators=20, max_features=0.5, random_state=1).fit(data)
    probe = training_rows(30, 4)
    np.testing.assert_array_equal(Forest(model).score_samples(probe), model.score_samples(probe))


def test_a_model_without_the_private_tables_falls_back_to_its_own_score_samples():
    """A scikit-learn that renamed the tables: any model without them is scored by its own method."""
    from sklearn.neighbors import LocalOutlierFactor

    model = LocalOutlierFactor(novelty=True).fit(training_rows(100, 5))
    probe = training_rows(10, 6)
    np.testing.assert_array_equal(Forest(model).score_samples(probe), model.score_samples(probe))
