"""The stores a study spread over many machines uses, on real servers: Optuna on PostgreSQL (with
heartbeats, as `study.run` opens it) and an `mlflow server` backed by PostgreSQL with proxied
artifacts. Each check reads the database itself (psycopg2) and the artifacts folder on disk, not
the client that wrote them.

Skips where PostgreSQL is not installed (CI installs it).
"""

from __future__ import annotations

import pytest

from servers import mlflow_server, postgres  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow


def test_postgres_listens_on_127_0_0_1_and_checks_the_password_over_tcp(postgres):
    import psycopg2

    url = postgres.create_database()
    assert postgres.query(url, "SHOW listen_addresses") == [("127.0.0.1",)]
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(url.replace(postgres.password, "wrong-pw"))


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # heartbeat_interval
def test_optuna_study_on_postgresql_writes_its_trials_there(postgres):
    import optuna

    url = postgres.create_database("optuna")
    storage = optuna.storages.RDBStorage(url, heartbeat_interval=10, grace_period=30)
    try:
        study = optuna.create_study(study_name="smoke", storage=storage)
        study.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.5) ** 2, n_trials=3)
    finally:
        storage.engine.dispose()

    assert postgres.query(url, "SELECT count(*) FROM trials") == [(3,)]
    assert postgres.query(url, "SELECT state FROM trials GROUP BY state") == [("COMPLETE",)]
    assert postgres.query(url, "SELECT study_name FROM studies") == [("smoke",)]


def test_mlflow_server_on_postgresql_stores_runs_there_and_artifacts_on_disk(postgres, mlflow_server, tmp_path):
    from mlflow import MlflowClient

    url = postgres.create_database("mlflow")
    artifacts = tmp_path / "mlartifacts"
    server = mlflow_server(url, artifacts)

    client = MlflowClient(server.url)
    experiment_id = client.create_experiment("smoke")
    run = client.create_run(experiment_id, run_name="trial-000")
    run_id = run.info.run_id
    client.log_metric(run_id, "fid", 12.5, step=3)
    client.log_text(run_id, "hello from a worker", "notes/hello.txt")
    client.set_terminated(run_id)

    assert postgres.query(url, "SELECT count(*) FROM runs") == [(1,)]
    assert postgres.query(url, "SELECT run_uuid, status FROM runs") == [(run_id, "FINISHED")]
    assert postgres.query(url, "SELECT key, value, step FROM metrics") == [("fid", 12.5, 3)]
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # uploaded through the server
    files = [p for p in artifacts.rglob("*") if p.is_file()]
    assert files == [artifacts / experiment_id / run_id / "artifacts" / "notes" / "hello.txt"]
    assert files[0].read_text() == "hello from a worker"
