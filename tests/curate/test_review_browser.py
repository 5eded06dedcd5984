"""The review page in a real browser: Debian's Chromium driven by Playwright, against a real uvicorn server."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cli_helpers import run_cli
from review_helpers import XSS, write_review_files

from nctool.data.decisions import default_decisions_path, read_decisions
from nctool.schema import read_table

pytestmark = pytest.mark.slow  # a real Chromium per test

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install '.[test]')")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium; .ci/run installs it)", allow_module_level=True)


class ReviewServer:
    """`nctool review` in a subprocess, exactly as a curator starts it, on a fixed port of 127.0.0.1.

    `url` is the URL it printed (with this launch's `token`), `root` the same without the token.
    """

    def __init__(self, data_path: Path, scores_path: Path):
        self.args = ["review", str(data_path), "--scores", str(scores_path), "--reviewer", "ana"]
        self.store = default_decisions_path(scores_path)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.root = f"http://127.0.0.1:{self.port}/"
        self.url, self.token, self.process = None, None, None

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", "from nctool.cli import main; main()", *self.args,
                                         "--port", str(self.port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "80"}, text=True)
        for line in self.process.stdout:  # the URL is printed whole on a line of its own
            if re.fullmatch(r"http://\S+", line.strip()):
                self.url = line.strip()
                self.token = self.url.partition("?token=")[2]
                break
        else:
            raise AssertionError(f"the server printed no URL: {self.process.stderr.read()}")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server stopped: {self.process.stderr.read()}")
            try:
                with urllib.request.urlopen(urllib.request.Request(self.root + "api/summary",
                                                                   headers={"X-Nctool-Token": self.token}), timeout=5):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("the server did not answer within 120 s")

    def decide(self, pair_id: str, action: str) -> None:
        """A decision as the page makes it (JSON, the token in its header)."""
        request = urllib.request.Request(self.root + "api/decision", method="POST",
                                         data=json.dumps({"pair_id": pair_id, "action": action}).encode(),
                                         headers={"Content-Type": "application/json", "X-Nctool-Token": self.token})
        with urllib.request.urlopen(request, timeout=30):
            pass

    def decisions(self) -> dict[str, tuple]:
        """What the store holds now: pair_id -> (action, new_caption)."""
        current = read_decisions(self.store)
        return {row.pair_id: (row.action, row.new_caption) for row in current.itertuples()}

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
    opened.refused = []  # what the console says the content security policy refused (a script, a style)
    opened.on("console",
              lambda message: "Content Security Policy" in message.text and opened.refused.append(message.text))
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
    assert page.refused == []


def test_help_filters_and_keys_come_from_the_server(server, page):
    open_queue(page, server.url)
    with urllib.request.urlopen(urllib.request.Request(server.root + "api/config",
                                                       headers={"X-Nctool-Token": server.token}), timeout=30) as answer:
        config = json.load(answer)
    rows = page.eval_on_selector_all("#help tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")
    assert rows == [[entry["shown"], entry["help"]] for entry in config["keys"]]
    for name, choices in (("label", config["labels"]), ("state", config["states"])):
        options = page.eval_on_selector_all(f"#filters select[name={name}] option",
                                            "options => options.map(o => o.value)")
        assert options == ["", *choices]
    assert page.locator(".card.focused .actions button").all_text_contents()[:2] == ["keep (a)", "drop (d)"]
    page.select_option("#filters select[name=label]", "clean")
    page.wait_for_function("() => [...document.querySelectorAll('#cards .label')]"
                           ".every(l => l.textContent === 'clean')")
    page.keyboard.press("ArrowDown")  # a key of the table: the second card takes the focus
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
    server.start()  # a new launch has a new token: the old tab says so, the URL it printed opens
    page.reload()
    page.wait_for_function("() => document.getElementById('status').textContent.includes('token')")
    page.goto(server.url)
    page.wait_for_selector("#cards .card.focused")
    wait_for_decision(page, first, "dropped by ana")
    wait_for_decision(page, second, "kept by ana")
    assert focused_id(page) == third  # resumes at the first undecided pair
    assert "reviewed 2 / left 19" in page.text_content("#progress-text")


def test_a_double_key_press_posts_one_decision(server, page):
    open_queue(page, server.url)
    first, second = card_ids(page)[:2]
    held = []  # the decision requests, answered only once both presses are in
    page.route("**/api/decision", lambda route: held.append(route))
    page.keyboard.press("d")
    page.keyboard.press("d")
    page.wait_for_function("() => true")  # let the page's handlers run
    page.wait_for_timeout(300)  # a second request, were there one, is sent at the second key press
    assert len(held) == 1
    held[0].continue_()
    wait_for_decision(page, first, "dropped by ana")
    page.wait_for_timeout(300)
    assert len(held) == 1 and focused_id(page) == second
    assert server.decisions() == {first: ("drop", None)}
    assert "reviewed 1 / left 20" in page.text_content("#progress-text")


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
    result = run_cli("filter", files[0], "--scores", files[1], "--detector", "rrsitr",
                     "--out", tmp_path / "clean.parquet", "--decisions", tmp_path / "decisions.parquet")
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
    page.wait_for_selector("#cards .card")
    sources = page.eval_on_selector_all("img", "images => images.map(i => i.src)")
    thumbs = page.eval_on_selector_all(".card .thumb", "images => images.map(i => i.src)")
    assert len(thumbs) == 6 and all(source.startswith("data:image/jpeg;base64,") for source in sources)
    assert page.locator(".card .suggested-images img").count() > 0  # drawn as on the review page
    assert page.locator(".card .actions, .card button").count() == 0  # read-only
    assert page.locator(".card .decision").count() == 6 and page.refused == []
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    assert [url for url in requested if not url.startswith("file:")] == []
    assert page.locator(".card .caption").first.text_content() == XSS and page.dialogs == []


def test_images_enlarging_and_the_export_link_work_with_the_token(server, page, tmp_path):
    open_queue(page, server.url)
    page.wait_for_function("() => { const images = document.querySelectorAll('#cards .card:first-child img');"
                           " return images.length > 1 && [...images].every(i => i.complete && i.naturalWidth > 0); }")
    page.keyboard.press("o")
    page.wait_for_function("() => { const i = document.getElementById('overlay-image');"
                           " return i.complete && i.naturalWidth > 0; }")
    page.keyboard.press("Escape")
    first = card_ids(page)[0]
    page.keyboard.press("d")
    wait_for_decision(page, first, "dropped by ana")
    with page.expect_download() as download:
        page.click("#export")
    download.value.save_as(tmp_path / "download.parquet")
    assert read_decisions(tmp_path / "download.parquet")[["pair_id", "action"]].values.tolist() == [[first, "drop"]]
    assert page.refused == []  # the content security policy refused nothing of the page's own


# ---- what a hostile web page gets ----

class HostilePages:
    """Pages of another origin: an http.server on another loopback port, serving `pages` by path."""

    def __init__(self):
        pages = self.pages = {}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = pages.get(self.path, "no such page").encode()
                self.send_response(200 if self.path in pages else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.root = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def add(self, name: str, html: str) -> str:
        self.pages["/" + name] = html
        return f"{self.root}/{name}"


@pytest.fixture
def evil():
    pages = HostilePages()
    yield pages
    pages.http.shutdown()
    pages.http.server_close()


CSRF_CAPTION = "CSRF: caption rewritten by evil page"
FORGED = [("api/decision", {"pair_id": "p04", "action": "drop"}),
          ("api/decision", {"pair_id": "p05", "action": "fix", "new_caption": CSRF_CAPTION}),
          ("api/decision", {"pair_id": "p06", "action": "keep"}), ("api/undo", {}), ("api/undo", {"pair_id": "p07"})]


def test_another_origin_cannot_write_with_fetch(server, page, evil):
    server.decide("p07", "keep")  # something for a forged undo to take back
    script = """
    async function attack() {
      const results = [];
      for (const [path, body] of FORGED) {
        for (const [url, options] of [
            [TARGET + path, {mode: "no-cors", headers: {"Content-Type": "text/plain"}}],
            [TARGET + path + "?token=" + TOKEN, {mode: "no-cors", headers: {"Content-Type": "text/plain"}}],
            [TARGET + path, {headers: {"Content-Type": "application/json", "X-Nctool-Token": TOKEN}}]]) {
          try {
            const response = await fetch(url, {method: "POST", body: JSON.stringify(body), ...options});
            results.push(response.type + " " + response.status);
          } catch (error) {
            results.push("blocked");
          }
        }
      }
      try {
        const read = await fetch(TARGET + "api/queue?token=" + TOKEN);
        results.push("read " + (await read.text()).slice(0, 40));
      } catch (error) {
        results.push("read blocked");
      }
      return results;
    }"""
    url = evil.add("fetch.html", "<!doctype html><title>cute cats</title><p>cats")
    page.goto(url)
    # the attacker knows even the token here: the origin and the content type must stop it all the same
    results = page.evaluate(f"(() => {{ const FORGED = {json.dumps(FORGED)}, TARGET = {json.dumps(server.root)}, "
                            f"TOKEN = {json.dumps(server.token)}; {script}; return attack(); }})()")
    assert len(results) == 3 * len(FORGED) + 1
    assert all(result in ("opaque 0", "blocked") for result in results[:-1]), results  # no CORS answer either
    assert results[-1] == "read blocked"
    assert server.decisions() == {"p07": ("keep", None)}


@pytest.mark.parametrize("path, fields", [
    ("api/decision", '{"pair_id": "p04", "action": "drop", "pad": "'),
    ("api/decision", '{"pair_id": "p05", "action": "fix", "new_caption": "' + CSRF_CAPTION + '", "pad": "'),
    ("api/undo", '{"pair_id": "p07", "pad": "')])
def test_another_origin_cannot_write_with_a_form(server, page, evil, path, fields):
    server.decide("p07", "keep")
    html = (f'<!doctype html><form method="post" enctype="text/plain" '
            f'action="{server.root}{path}?token={server.token}">'
            f'<input name=\'{fields}\' value=\'"}}\'></form><script>document.forms[0].submit()</script>')
    with page.expect_navigation(url=f"{server.root}{path}?token={server.token}") as navigation:
        page.goto(evil.add("form.html", html))
    assert navigation.value.status == 403
    assert server.decisions() == {"p07": ("keep", None)}


def test_the_page_refuses_to_be_framed(server, page, evil):
    """Clickjacking: an invisible frame of the page (the attacker knows the URL, token and all) takes no click
    and no key."""
    html = (f'<!doctype html><title>win a prize</title><button id=prize>click me</button>'
            f'<iframe name=victim src="{server.url}" width=1280 height=900 '
            f'style="opacity:0.01;position:absolute;top:0;left:0;border:0"></iframe>')
    page.goto(evil.add("frame.html", html))
    frame = page.frame(name="victim")
    try:  # on today's code the framed page loads its queue; give it the time a curator's tab would take
        frame.wait_for_selector("#cards .card.focused", timeout=5000)
    except sync_api.TimeoutError:
        pass
    for x, y in [(640, 450), (200, 200), (900, 300), (1100, 150), (640, 120)]:
        page.mouse.click(x, y)
        for key in "dda":
            page.keyboard.press(key)
    page.wait_for_load_state("networkidle")
    assert server.decisions() == {}
    assert frame.url != server.url and frame.locator("#cards").count() == 0  # Chromium shows its error page instead


def test_a_rebound_name_reads_nothing_and_writes_nothing(server, browser):
    """DNS rebinding: evil.example resolves to 127.0.0.1, so its pages are same-origin with whatever listens there."""
    attack = """async ([token]) => {
      const results = {};
      for (const path of ["/", "/api/summary", "/api/queue", "/api/export", "/api/image/p04", "/static/review.js"]) {
        for (const [name, url, headers] of [[path, path, {}], [path + " ?token", path + "?token=" + token, {}],
                                             [path + " header", path, {"X-Nctool-Token": token}]]) {
          const response = await fetch(url, {headers});
          results[name] = [response.status, (await response.text()).slice(0, 200)];
        }
      }
      const write = await fetch("/api/decision", {method: "POST",
                                body: JSON.stringify({pair_id: "p04", action: "drop"}),
                                headers: {"Content-Type": "application/json", "X-Nctool-Token": token}});
      results.write = [write.status, await write.text()];
      return results;
    }"""
    rebinding = browser.browser_type.launch(executable_path=str(CHROMIUM),
                                            args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP evil.example 127.0.0.1"])
    try:
        page = rebinding.new_page()
        evil_root = f"http://evil.example:{server.port}/"
        results = {}
        for opened in (evil_root, evil_root + f"?token={server.token}"):
            response = page.goto(opened)
            assert response.status == 403 and "p04" not in page.content()
            # a script of the origin evil.example:PORT (the attacker's, once the name points here) reads and writes
            evaluated = page.evaluate(attack, [server.token])
            results.update({f"{opened} {name}": result for name, result in evaluated.items()})
    finally:
        rebinding.close()
    for name, (status, text) in results.items():
        assert status == 403 and "host" in text and "p04" not in text and "pair_id" not in text, (name, status, text)
    assert server.decisions() == {}
