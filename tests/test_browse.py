"""Browsing a study's stores the way the README says: `mlflow server` and `optuna-dashboard` on
127.0.0.1, opened in headless Chromium (Debian's `chromium`, driven by Playwright; no browser
download). Checks what a user sees: the experiment opening on its runs, every trial a row of the
runs table, sorted by FID with the FID and KID columns, the quality section first in the chart view,
the report among the study run's artifacts; saves screenshots (the folder is printed; set
GAN_STUDY_SCREENSHOTS to copy them there as well: docs/results/mlflow-ui-trials.png is
`mlflow-ui-trials.png`, the page at the URL `study.run` prints).

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


def row_names(page) -> list[str]:
    """The runs table's cell texts, row by row from the top (ag-grid's DOM order is not its display
    order, and a row's pinned and scrolled cells are two elements at the same height)."""
    rows = page.evaluate("""() => [...document.querySelectorAll('[role=row]')]
        .map(r => [Math.round(r.getBoundingClientRect().top), r.innerText])""")
    return [line for _, text in sorted(rows, key=lambda r: r[0]) for line in text.splitlines()]


def test_mlflow_ui_opens_on_the_runs_with_quality_charts_first_and_the_report(stores, servers, page, shots):
    from mlflow import MlflowClient

    from reports.build import main as build_main
    from tracking.mlflow_log import EXPERIMENT_KIND, ui_url

    client = MlflowClient(stores["tracking"])
    exp = client.get_experiment_by_name(STUDY)
    # What our logging controls: a model-training experiment, quality metrics grouped, the report attached.
    assert {k: exp.tags.get(k) for k in EXPERIMENT_KIND} == EXPERIMENT_KIND
    assert build_main(["--study-name", STUDY, "--storage", stores["storage"], "--out",
                       str(shots.parent / "browse-report")]) == 0
    parent = client.search_runs([exp.experiment_id], "tags.role = 'study'")[0]
    trials = client.search_runs([exp.experiment_id], "tags.role = 'trial'")

    # The URL `study.run` prints opens the runs table on the trials: every training a row of its own
    # (not children of the collapsed study run), best FID first, FID and KID columns shown, in the
    # model-training layout (not MLflow 3's GenAI overview).
    page.goto(ui_url(servers["mlflow"], exp.experiment_id, "fid"), timeout=PAGE_S * 1000)
    for run in trials:
        page.get_by_text(run.info.run_name, exact=True).first.wait_for(timeout=PAGE_S * 1000)
    assert page.get_by_text("matching runs").count() and not page.get_by_text("Token Usage").count()
    assert not page.get_by_text("Evaluation runs").count()  # the GenAI layout's side navigation
    headers = page.locator("[role=columnheader]").all_inner_texts()
    assert {"quality/fid", "quality/kid"} <= set(headers), headers
    by_fid = [r.info.run_name for r in client.search_runs([exp.experiment_id], order_by=["metrics.`quality/fid` ASC"])
              if "quality/fid" in r.data.metrics]
    assert [n for n in row_names(page) if n in by_fid] == by_fid
    close = page.get_by_role("button", name="Close")
    if close.count():  # the assistant side panel (open on a browser's first visit) hides half the table
        close.first.click()
        page.get_by_text("Ask questions about your").first.wait_for(state="hidden", timeout=PAGE_S * 1000)
    page.screenshot(path=str(shots / "mlflow-ui-trials.png"))

    # The chart view: sections by metric prefix, the quality section (with the study metric) first.
    page.locator("label").filter(has=page.locator("input[value=CHART]")).first.click()
    page.get_by_text("quality/fid", exact=True).first.wait_for(timeout=PAGE_S * 1000)
    sections = [t for t in page.locator("body").inner_text().splitlines()
                if t in ("quality", "speed", "system", "train", "Model metrics", "System metrics")]
    assert sections[0] == "quality", sections
    page.screenshot(path=str(shots / "mlflow-charts.png"))

    # The answer on the study's run: its artifacts hold the report.
    page.goto(f"{servers['mlflow']}/#/experiments/{exp.experiment_id}/runs/{parent.info.run_id}/artifacts"
              "?workflowType=machine_learning",
              timeout=PAGE_S * 1000)
    page.get_by_text("report", exact=True).first.click(timeout=PAGE_S * 1000)
    page.get_by_text("report.md", exact=True).first.click(timeout=PAGE_S * 1000)
    page.get_by_text("Is 500", exact=False).first.wait_for(timeout=PAGE_S * 1000)
    page.screenshot(path=str(shots / "mlflow-report.png"))


def test_optuna_dashboard_shows_the_study_and_its_history(stores, servers, page, shots):
    """What our code can get wrong here: user attributes (the trials' whole configs, the extractor
    record) or a storage layout the dashboard cannot render."""
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
