"""The Dagster UI in a real headless Chromium: every asset, check, sensor and schedule is shown,
and a partitioned asset lists its partitions. Saves a screenshot of the asset graph under docs/."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="Chromium/chromedriver not installed (Debian: apt-get install chromium chromium-driver)")]
ROOT = Path(__file__).resolve().parents[1]
ASSETS = ["repo_snapshot", "doc_pages", "chunks", "embeddings", "qdrant_collection", "collection_alias"]
CHECKS = ["points_match_chunks", "golden_recall", "approximate_search_recall"]
STARTUP_S = 240
AUTOMATION = ["git_heads_sensor", "sources_sensor", "first_index_sensor", "nightly_docs_refresh", "weekly_reembed"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dagster_dev(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "rag_assets" / "dagster_instance.yaml", home / "dagster.yaml")
    (tmp_path / "sources.yaml").write_text("sources:\n  - {name: demo, kind: git, url: " + str(ROOT) + "}\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "RAG_SOURCES": str(tmp_path / "sources.yaml"),
           "RAG_DATA_DIR": str(tmp_path / "data")}
    subprocess.run([sys.executable, "-c", "from dagster import DagsterInstance; "
                    "DagsterInstance.get().add_dynamic_partitions('source', ['demo'])"], env=env, check=True)
    port = _free_port()
    log = open(tmp_path / "dagster_dev.log", "wb")
    # Restore default signal handlers so SIGINT stops dagster dev and all its children.
    proc = subprocess.Popen(
        [sys.executable, "-c", "import os,signal,sys; [signal.signal(s, signal.SIG_DFL) for s in (1,2,15)]; "
         "os.execvp(sys.argv[1], sys.argv[1:])", str(Path(sys.executable).with_name("dagster")), "dev",
         "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        # A fresh virtualenv compiles every module on first import: the first start can take minutes.
        deadline = time.time() + STARTUP_S
        while time.time() < deadline:
            try:
                urllib.request.urlopen(url + "/server_info", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            tail = (tmp_path / "dagster_dev.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"dagster dev did not answer /server_info within {STARTUP_S} s; its log ends:\n{tail}")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 "--window-size=1600,1000", f"--user-data-dir={tmp_path / 'chrome'}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield driver
    driver.quit()


def _wait_for_text(driver, texts: list[str], timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = driver.find_element("tag name", "body").text
        missing = [t for t in texts if t not in body]
        if not missing:
            return
        time.sleep(0.5)
    raise AssertionError(f"{driver.current_url}: not shown after {timeout}s: {missing}")


def test_ui_shows_assets_checks_automation_and_partitions(dagster_dev, browser):
    browser.get(dagster_dev + "/assets")  # the catalog lists every asset
    _wait_for_text(browser, ASSETS)
    browser.get(dagster_dev + "/asset-groups")  # the global lineage graph: one group per stage
    _wait_for_text(browser, ["sources", "chunking", "embedding", "store"])
    time.sleep(2)  # let the graph layout settle before the screenshot
    for button in browser.find_elements("xpath", "//button[normalize-space()='Skip']"):
        button.click()  # first-visit "join the community" dialog would cover the graph
        time.sleep(1)
    browser.save_screenshot(str(ROOT / "docs" / "ui-asset-graph.png"))

    browser.get(dagster_dev + "/assets/qdrant_collection?view=checks")
    _wait_for_text(browser, CHECKS)
    browser.get(dagster_dev + "/assets/chunks?view=checks")
    _wait_for_text(browser, ["chunks_are_sane"])
    browser.get(dagster_dev + "/assets/embeddings?view=checks")
    _wait_for_text(browser, ["vectors_are_sane"])

    browser.get(dagster_dev + "/automation")
    _wait_for_text(browser, AUTOMATION)

    browser.get(dagster_dev + "/assets/chunks?view=partitions")
    _wait_for_text(browser, ["demo"])
    browser.get(dagster_dev + "/assets/embeddings?view=partitions")
    _wait_for_text(browser, ["minilm-l6", "mpnet-base"])
