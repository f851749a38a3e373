"""The anomaly analyser's isolation forest: scikit-learn's ``IsolationForest``, scored without its
per-call overhead.

Why: every window the analyser scores one small batch (one row per series) with the forest.
``IsolationForest.score_samples`` validates its input and dispatches each of its 100 trees through
joblib: about 13 ms a call, whatever the batch size, which was half of the per-window work of a
sparse replay (``bench/processor_throughput.py``, row c). :class:`Forest` fits the same
scikit-learn model and keeps, per tree, what a sample landing in each node adds to its path length
(the node's depth, and the average path length of the training samples left in it, minus 1: the
sum ``IsolationForest._compute_score_samples`` forms). Scoring is then one Cython ``Tree.apply``
and two table lookups per tree (about 1 ms), in scikit-learn's arithmetic order, so
``score_samples`` equals scikit-learn's bit for bit (tested). When a scikit-learn release changes
the private attributes this reads, the class falls back to scikit-learn's own method.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Forest:
    """A fitted ``IsolationForest`` and its per-tree path-length tables."""

    def __init__(self, model: Any):
        self.model = model
        self._trees: list[tuple[Any, np.ndarray | None, np.ndarray, np.ndarray]] | None = None
        self._denominator = 0.0
        try:
            from sklearn.ensemble._iforest import _average_path_length

            n_features = int(model.n_features_in_)
            trees = []
            for tree, features, depth, avg in zip(model.estimators_, model.estimators_features_,
                                                  model._decision_path_lengths, model._average_path_length_per_tree,
                                                  strict=True):
                cols = None if len(features) == n_features and np.array_equal(features, np.arange(n_features)) \
                    else np.asarray(features)
                trees.append((tree.tree_, cols, np.asarray(depth), np.asarray(avg)))
            self._denominator = float(len(trees) * _average_path_length([model._max_samples])[0])
            self._trees = trees
        except (AttributeError, ImportError, TypeError, ValueError):  # another scikit-learn: use its method
            self._trees = None

    def score_samples(self, x: np.ndarray) -> np.ndarray:
        """scikit-learn's ``IsolationForest.score_samples(x)``: the negated paper score (-1 = most
        abnormal)."""
        if self._trees is None:
            return np.asarray(self.model.score_samples(x))
        x32 = np.ascontiguousarray(x, dtype=np.float32)  # the trees' split thresholds are float32
        depths = np.zeros(len(x32))
        for tree, cols, depth, avg in self._trees:  # the same arithmetic, in the same order, as scikit-learn
            leaves = tree.apply(x32 if cols is None else np.ascontiguousarray(x32[:, cols]))
            depths += depth[leaves] + avg[leaves] - 1.0
        if self._denominator == 0:  # one training sample: scikit-learn scores 1
            return -np.ones(len(x32))
        return -(2 ** (-np.divide(depths, self._denominator)))


def fit_forest(data: np.ndarray, n_estimators: int, max_samples: int, seed: int) -> Forest:
    """Fit a seeded ``IsolationForest`` (the same data and seed give the same model)."""
    from sklearn.ensemble import IsolationForest

    model = IsolationForest(n_estimators=n_estimators, max_samples=min(max_samples, len(data)), random_state=seed)
    model.fit(data)
    return Forest(model)
