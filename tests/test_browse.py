"""Browsing a study's stores the way the README says: `mlflow server` and `optuna-dashboard` on
127.0.0.1, opened in headless Chromium (Debian's `chromium`, driven by Playwright; no browser
download). Checks that the study's experiment, its trial runs and a metric chart are on screen and
saves screenshots (the folder is printed; set GAN_STUDY_SCREENSHOTS to copy them there as well).

Skips where Chromium, Playwright or optuna-dashboard is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

from servers import SERVER_START_S, Server, free_port
from test_reports import STUDY, build_small_study

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGE_S = 60


def dashboard_command() -> str | None:
    return shutil.which("optuna-dashboard") or next(
        (str(p) for p in [Path(sys.executable).parent / "optuna-dashboard"] if p.exists()), None)


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"),
    pytest.mark.skipif(dashboard_command() is None, reason="optuna-dashboard is not installed"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None,
                       reason="Playwright is not installed (pip install playwright)"),
]


@pytest.fixture(scope="module")
def stores(tmp_path_factory, data_root) -> dict:
    return build_small_study(tmp_path_factory.getbasetemp() / "small-study", data_root)


@pytest.fixture(scope="module")
def servers(stores, tmp_path_factory):
    logs = tmp_path_factory.mktemp("server-logs")
    mp, op = free_port(), free_port()
    mlflow = Server([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", stores["tracking"],
                     "--host", "127.0.0.1", "--port", str(mp), "--workers", "1"],
                    f"http://127.0.0.1:{mp}", logs / "mlflow.log")
    dashboard = Server([dashboard_command(), stores["storage"], "--host", "127.0.0.1", "--port", str(op)],
                       f"http://127.0.0.1:{op}", logs / "optuna-dashboard.log")
    try:
        dashboard.wait_ready("/dashboard", SERVER_START_S)
        mlflow.wait_ready("/health", SERVER_START_S)
        yield {"mlflow": mlflow.url, "dashboard": dashboard.url}
    finally:
        mlflow.stop()
        dashboard.stop()


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 900})
        finally:
            browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("screenshots")
    yield folder
    print(f"\nscreenshots: {folder}")
    copy_to = os.environ.get("GAN_STUDY_SCREENSHOTS")
    if copy_to:
        Path(copy_to).mkdir(parents=True, exist_ok=True)
        for f in folder.glob("*.png"):
            shutil.copy2(f, copy_to)


def test_mlflow_ui_shows_the_experiment_its_trial_runs_and_a_metric_chart(stores, servers, page, shots):
    from mlflow import MlflowClient

    client = MlflowClient(stores["tracking"])
    exp = client.get_experiment_by_name(STUDY)
    trials = client.search_runs([exp.experiment_id], "tags.role = 'trial'")
    base = servers["mlflow"]

    page.goto(f"{base}/#/experiments/{exp.experiment_id}/runs", timeout=PAGE_S * 1000)
    # Trial runs are nested under the study's parent run (named after the study): expand it.
    parent = page.locator("[role=row]").filter(has_text=STUDY).first
    parent.wait_for(timeout=PAGE_S * 1000)
    parent.locator("button").first.click()
    for run in trials:
        page.get_by_text(run.info.run_name, exact=True).first.wait_for(timeout=PAGE_S * 1000)
    close = page.get_by_role("button", name="Close")
    if close.count():  # the assistant side panel hides half the table
        close.first.click()
    page.screenshot(path=str(shots / "mlflow-runs.png"))

    run = next(r for r in trials if r.info.status == "FINISHED")  # a whole curve, not a pruned stub
    page.goto(f"{base}/#/experiments/{exp.experiment_id}/runs/{run.info.run_id}/model-metrics",
              timeout=PAGE_S * 1000)
    page.get_by_text(run.info.run_name).first.wait_for(timeout=PAGE_S * 1000)
    search = page.get_by_placeholder("Search metric charts")
    search.fill("fid")
    # The chart card titled exactly "fid" (not best_fid) with a drawn plot inside.
    card = page.locator("div").filter(has=page.get_by_text("fid", exact=True)).filter(
        has=page.locator(".js-plotly-plot"))
    card.last.wait_for(timeout=PAGE_S * 1000)
    page.screenshot(path=str(shots / "mlflow-fid-chart.png"))


def test_optuna_dashboard_shows_the_study_and_its_history(stores, servers, page, shots):
    import optuna

    study_id = optuna.storages.RDBStorage(stores["storage"]).get_study_id_from_name(STUDY)
    page.goto(f"{servers['dashboard']}/dashboard", timeout=PAGE_S * 1000)
    page.get_by_text(STUDY).first.wait_for(timeout=PAGE_S * 1000)
    page.goto(f"{servers['dashboard']}/dashboard/studies/{study_id}", timeout=PAGE_S * 1000)
    page.get_by_text("History", exact=True).filter(visible=True).first.wait_for(timeout=PAGE_S * 1000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=PAGE_S * 1000)
    # The study's title renders after its charts on a slow machine: wait for it, never count once.
    page.get_by_text(STUDY).filter(visible=True).first.wait_for(timeout=PAGE_S * 1000)
    page.screenshot(path=str(shots / "optuna-dashboard.png"))
