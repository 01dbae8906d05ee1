"""A study spread over machines, for real: two `python -m study.run` commands (two "machines"), each
with `--workers 2`, on one Optuna database in PostgreSQL and one `mlflow server` backed by PostgreSQL,
started at the same moment. The counts come from the databases themselves.

Skips where PostgreSQL is not installed (CI installs it and turns the skip into a failure).
"""

from __future__ import annotations

import json
import time

import pytest

from servers import mlflow_server, postgres  # noqa: F401  (fixtures)
from test_faults import start
from test_study_run import quick

pytestmark = pytest.mark.slow


def test_four_workers_from_two_commands_finish_exactly_the_target(postgres, mlflow_server, tmp_path, data_root):
    optuna_url = postgres.create_database("study")
    mlflow_url = postgres.create_database("tracking")
    server = mlflow_server(mlflow_url, tmp_path / "artifacts")
    target = 8
    args = quick(data_root, "--trials", str(target), "--workers", "2", "--epochs", "2", "--study-name", "pg",
                 "--storage", optuna_url, "--tracking-uri", server.url, "--checkpoints", str(tmp_path / "ck"))
    t0 = time.monotonic()
    procs = [start(args, tmp_path) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    wall = time.monotonic() - t0
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert postgres.password not in out + err
        assert "gan:***@" in err  # the storage is named, masked

    def optuna_db(sql, params=None):
        return postgres.query(optuna_url, sql, params)

    def mlflow_db(sql, params=None):
        return postgres.query(mlflow_url, sql, params)

    states = dict(optuna_db("SELECT state, count(*) FROM trials GROUP BY state"))
    assert sum(states.values()) == target and set(states) <= {"COMPLETE", "PRUNED", "FAIL"}, states
    reasons = optuna_db("SELECT count(*) FROM trial_user_attributes WHERE key = 'fail_reason'")[0][0]
    assert states.get("FAIL", 0) == reasons  # every failure is the trial's own, with its reason
    assert optuna_db("SELECT count(DISTINCT number) FROM trials") == [(target,)]
    pids = {json.loads(v) for (v,) in optuna_db("SELECT value_json FROM trial_user_attributes WHERE key = 'pid'")}
    assert len(pids) >= 2  # shared out among the workers (how many got one depends on start-up times)

    run_ids = {json.loads(v) for (v,) in optuna_db(
        "SELECT value_json FROM trial_user_attributes WHERE key = 'mlflow_run_id'")}
    trial_runs = dict(mlflow_db(
        "SELECT r.run_uuid, r.status FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
        "WHERE t.key = 'role' AND t.value = 'trial' AND r.lifecycle_stage = 'active'"))
    assert set(trial_runs) == run_ids and len(run_ids) == target  # one run per trial, none twice
    assert set(trial_runs.values()) <= {"FINISHED", "KILLED", "FAILED"}
    assert mlflow_db("SELECT count(*) FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                     "WHERE t.key = 'role' AND t.value = 'study' AND r.lifecycle_stage = 'active'") == [(1,)]
    secret = f"%{postgres.password}%"
    assert mlflow_db("SELECT count(*) FROM tags WHERE value LIKE %s", (secret,)) == [(0,)]
    assert mlflow_db("SELECT count(*) FROM params WHERE value LIKE %s", (secret,)) == [(0,)]
    assert optuna_db("SELECT count(*) FROM study_user_attributes WHERE value_json LIKE %s", (secret,)) == [(0,)]
    best = list((tmp_path / "artifacts").rglob("best.pt"))
    assert states.get("COMPLETE", 0) <= len(best) <= target  # uploaded through the server
    print(f"\n4 workers on PostgreSQL + mlflow server: {target} trials in {wall:.0f} s wall; states {states}; "
          f"lost {target - sum(states.values())}, duplicated 0")
