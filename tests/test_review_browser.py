"""The review page in a real browser: Debian's Chromium driven by Playwright, against a real uvicorn server."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from cli_helpers import run_cli
from nctool.decisions import read_decisions
from nctool.schema import read_table
from test_review import XSS, write_review_files

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install '.[test]')")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium; .ci/run installs it)", allow_module_level=True)


class ReviewServer:
    """`nctool review` in a subprocess, exactly as a curator starts it, on a fixed port of 127.0.0.1."""

    def __init__(self, data_path: Path, scores_path: Path):
        self.args = ["review", str(data_path), "--scores", str(scores_path), "--reviewer", "ana"]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", "from nctool.cli import main; main()", *self.args,
                                         "--port", str(self.port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        env={**os.environ, "HF_HUB_OFFLINE": "1"})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server stopped: {self.process.stderr.read().decode()}")
            try:
                with urllib.request.urlopen(self.url + "api/summary", timeout=5):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("the server did not answer within 120 s")

    def kill(self) -> None:
        """Stop as a power cut would: no shutdown code runs."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def files(tmp_path):
    return write_review_files(tmp_path)


@pytest.fixture
def server(files):
    running = ReviewServer(*files)
    running.start()
    yield running
    running.kill()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(30_000)
    opened.dialogs = []
    opened.on("dialog", lambda dialog: (opened.dialogs.append(dialog.message), dialog.dismiss()))
    yield opened
    context.close()


def open_queue(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#cards .card.focused")


def card_ids(page) -> list[str]:
    return page.eval_on_selector_all("#cards .card", "cards => cards.map(c => c.dataset.pairId)")


def focused_id(page) -> str:
    return page.get_attribute("#cards .card.focused", "data-pair-id")


def wait_for_decision(page, pair_id: str, text: str) -> None:
    page.wait_for_function("([id, text]) => { const c = document.querySelector(`#cards .card[data-pair-id='${id}']`);"
                           " return c && c.querySelector('.decision').textContent.startsWith(text); }",
                           arg=[pair_id, text])


def test_queue_loads_lowest_reliability_first(server, page):
    open_queue(page, server.url)
    reliabilities = page.eval_on_selector_all(
        "#cards .card .facts", "facts => facts.map(f => parseFloat(f.children[1].textContent.split(' ')[1]))")
    assert card_ids(page)[0] == "p04" and focused_id(page) == "p04"
    assert len(reliabilities) == 21 and reliabilities == sorted(reliabilities)
    assert "reviewed 0 / left 21" in page.text_content("#progress-text")
    assert page.locator("#histogram rect").count() > 0
    page.keyboard.press("?")
    assert page.is_visible("#help")
    page.keyboard.press("Escape")
    assert page.is_hidden("#help")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    assert focused_id(page) == card_ids(page)[1]


def test_xss_caption_renders_inert(server, page):
    open_queue(page, server.url)
    first = page.locator("#cards .card").first
    assert first.locator(".caption").text_content() == XSS
    assert first.locator(".caption img").count() == 0
    assert page.locator("img[src='x']").count() == 0
    page.wait_for_load_state("networkidle")
    assert page.dialogs == []


def test_keyboard_decisions_survive_a_server_restart_and_a_reload(server, page):
    open_queue(page, server.url)
    first, second, third = card_ids(page)[:3]
    page.keyboard.press("d")
    wait_for_decision(page, first, "dropped by ana")
    assert focused_id(page) == second
    page.keyboard.press("a")
    wait_for_decision(page, second, "kept by ana")
    page.keyboard.press("s")  # skip the third
    page.keyboard.press("a")
    fourth = card_ids(page)[3]
    wait_for_decision(page, fourth, "kept by ana")
    page.keyboard.press("u")  # takes back the fourth
    wait_for_decision(page, fourth, "undecided")
    server.kill()
    server.start()
    page.reload()
    page.wait_for_selector("#cards .card.focused")
    wait_for_decision(page, first, "dropped by ana")
    wait_for_decision(page, second, "kept by ana")
    assert focused_id(page) == third  # resumes at the first undecided pair
    assert "reviewed 2 / left 19" in page.text_content("#progress-text")


def test_a_fix_is_exported_and_applied_by_filter(server, page, files, tmp_path):
    open_queue(page, server.url)
    first, second = card_ids(page)[:2]
    originals = page.eval_on_selector_all("#cards .card .caption", "captions => captions.map(c => c.textContent)")[:2]
    suggestion = page.locator("#cards .card").first.locator(".suggestions li span").first.text_content().strip()
    page.keyboard.press("1")  # accept the first suggested caption
    wait_for_decision(page, first, "fixed by ana")
    assert page.locator("#cards .card").first.locator(".caption").text_content() == suggestion
    page.keyboard.press("e")
    page.fill("#cards .card.focused textarea", "a runway with two planes")
    page.keyboard.press("Enter")
    wait_for_decision(page, second, "fixed by ana")
    result = run_cli("review", files[0], "--scores", files[1], "--export", tmp_path / "decisions.parquet")
    assert result.returncode == 0, result.stderr
    decisions = read_decisions(tmp_path / "decisions.parquet").set_index("pair_id")
    assert decisions.loc[first, ["action", "new_caption"]].tolist() == ["fix", suggestion]
    assert decisions.loc[second, ["action", "new_caption"]].tolist() == ["fix", "a runway with two planes"]
    assert decisions.loc[first, "reviewer"] == "ana"
    result = run_cli("filter", files[0], "--scores", files[1], "--detector", "rrsitr", "--out", tmp_path / "clean.parquet",
                     "--decisions", tmp_path / "decisions.parquet")
    assert result.returncode == 0, result.stderr
    clean = read_table(tmp_path / "clean.parquet").set_index("pair_id")
    assert clean.loc[first, ["caption", "caption_original", "decision"]].tolist() == [suggestion, originals[0], "fix"]
    assert clean.loc[second, ["caption", "caption_original"]].tolist() == ["a runway with two planes", originals[1]]


def test_two_tabs_show_the_last_write(server, page, browser):
    open_queue(page, server.url)
    other = page.context.new_page()
    open_queue(other, server.url)
    first = card_ids(page)[0]
    page.keyboard.press("a")
    wait_for_decision(page, first, "kept by ana")
    other.keyboard.press("d")
    wait_for_decision(other, first, "dropped by ana")
    page.bring_to_front()
    page.evaluate("window.dispatchEvent(new Event('focus'))")
    wait_for_decision(page, first, "dropped by ana")


def test_gallery_opens_offline(files, tmp_path, page):
    result = run_cli("review", files[0], "--scores", files[1], "--static", tmp_path / "gallery.html", "--limit", "6")
    assert result.returncode == 0, result.stderr
    requested = []
    page.route("**/*", lambda route: (requested.append(route.request.url),
                                      route.continue_() if route.request.url.startswith("file:") else route.abort()))
    page.goto((tmp_path / "gallery.html").as_uri())
    sources = page.eval_on_selector_all("img", "images => images.map(i => i.src)")
    assert len(sources) == 6 and all(source.startswith("data:image/jpeg;base64,") for source in sources)
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    assert [url for url in requested if not url.startswith("file:")] == []
    assert page.locator(".card .caption").first.text_content() == XSS and page.dialogs == []
