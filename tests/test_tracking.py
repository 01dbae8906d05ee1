"""MLflow names of the epoch records: grouped for the chart view, constants as tags, and the plain
names of stores written before the groups still read."""

from __future__ import annotations

from tracking import mlflow_log as ml


def test_metric_names_are_grouped_and_read_back():
    assert [ml.metric_name(k) for k in ("fid", "kid_std", "fid_resample_2", "loss_d", "d_fake", "seconds",
                                        "eval_seconds", "something_new")] == [
        "quality/fid", "quality/kid_std", "quality/fid_resample_2", "train/loss_d", "train/d_fake",
        "speed/seconds", "speed/eval_seconds", "something_new"]
    for key in ("fid", "kid_resample_1", "loss_g", "images_per_s", "precision"):
        assert ml.record_key(ml.metric_name(key)) == key
        assert ml.record_key(key) == key  # an earlier version's name
    assert ml.record_key("system/cpu_utilization_percentage") == "system/cpu_utilization_percentage"


def test_records_become_grouped_metrics_without_the_constants():
    record = {"epoch": 3, "evaluated": True, "loss_d": 1.2, "seconds": 0.5, "fid": 30.0, "num_fake": 300,
              "feature_dim": 128, "fid_n_below_dim": 0, "note": "text"}
    assert ml.record_metrics(record) == {"train/loss_d": 1.2, "speed/seconds": 0.5, "quality/fid": 30.0}


def test_run_logger_sets_the_constants_as_tags_once(tmp_path):
    client = ml.connect(f"sqlite:///{tmp_path}/mlflow.db")
    logger = ml.RunLogger(client, ml.ensure_experiment(client, "s"), "r")
    for epoch in (1, 2):
        logger.log_record({"epoch": epoch, "evaluated": True, "fid": 10.0 / epoch, "num_fake": 300, "num_real": 500})
    run = client.get_run(logger.run_id)
    assert run.data.tags["num_fake"] == "300" and run.data.tags["num_real"] == "500"
    assert set(run.data.metrics) == {"quality/fid"}
    assert [m.value for m in client.get_metric_history(logger.run_id, "quality/fid")] == [10.0, 5.0]
