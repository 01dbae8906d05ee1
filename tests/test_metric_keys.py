"""The record keys declared once in `gans.metric_keys`: the names the MLflow sections, the stores and
the reports derive from them, with known answers."""

from __future__ import annotations

import json

from gans import metric_keys as K
from gans.extractors import FIDELITY_METRICS
from tracking import mlflow_log as ml


def test_keys_of_the_training_reference_resamples_and_floor():
    assert [K.train_key(k) for k in ("fid", "kid", "kid_std", "num_real", "fid_n_below_dim")] == [
        "fid_train", "kid_train", "kid_train_std", "num_real_train", "fid_train_n_below_dim"]
    assert K.resample_key("fid", 3) == "fid_resample_3"
    assert [K.base_key(k) for k in ("fid_resample_2", "fid_train", "kid_train_std", "fid_floor", "is")] == [
        "fid", "fid", "kid_std", "fid", "is"]


def test_derived_sections_hold_every_key_an_evaluation_writes():
    assert K.QUALITY_KEYS == ("fid", "kid", "kid_std", "is", "is_std", "precision", "recall", "fid_train",
                              "kid_train", "kid_train_std", "fid_floor")
    assert K.EVAL_CONSTANTS == ("num_fake", "num_real", "feature_dim", "fid_n_below_dim", "kid_subset_size",
                                "kid_subsets", "is_splits", "num_real_train", "fid_train_n_below_dim",
                                "kid_train_subset_size", "kid_train_subsets", "diag_num_real")
    assert ml.METRIC_GROUPS["quality"] == K.QUALITY_KEYS
    assert [ml.metric_name(k) for k in ("fid_resample_1", "kid_train", "loss_d")] == [
        "quality/fid_resample_1", "quality/kid_train", "train/loss_d"]


def test_metrics_are_well_formed_and_directions_known():
    for name, m in K.METRICS.items():
        assert name.replace("_", "").isalnum() and m.outputs and m.fidelity_flag in FIDELITY_METRICS
        assert name in m.outputs  # the metric's own value is recorded under its name
    assert K.STUDY_METRICS == ("fid", "kid")
    assert [K.METRICS[m].minimize for m in ("fid", "kid", "is")] == [True, True, False]
    assert K.display_name("is") == "Inception Score" and K.display_name("loss_d") == "loss_d"
    # The saved MLflow view sorts a study metric the way it is optimised.
    assert all(json.loads(json.loads(tag)["state"])["orderByAsc"] for tag in ml.view_tags().values())
