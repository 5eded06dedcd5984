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

from nctool.curate.filtering import read_scores
from nctool.curate.review.audit import audit_order, audit_share
from nctool.curate.review.queue import audit_labels_text, audit_text, learned_text
from nctool.data.decisions import DecisionStore, default_decisions_path, read_decisions
from nctool.metrics import cohen_kappa
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

    def __init__(self, data_path: Path, scores_path: Path, *options: str, reviewer: str = "ana"):
        self.args = ["review", str(data_path), "--scores", str(scores_path), "--reviewer", reviewer, *options]
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

    def batches(self):
        """The bulk actions the store holds (DecisionStore.batches)."""
        with DecisionStore(self.store, reviewer="test") as store:
            return store.batches()

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
    opened.errors = []  # the page's uncaught script errors
    opened.on("pageerror", lambda error: opened.errors.append(str(error)))
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
    """Wait until the card (or the grid's tile) of `pair_id` shows a decision starting with `text`."""
    page.wait_for_function("([id, text]) => { const c = document.querySelector(`#cards > [data-pair-id='${id}']`);"
                           " return c && c.querySelector('.decision').textContent.startsWith(text); }",
                           arg=[pair_id, text])


def open_grid(page, url: str) -> None:
    page.goto(url + "#view=grid")
    page.wait_for_selector("#cards .tile.focused")


def tile_ids(page, selector: str = "#cards .tile") -> list[str]:
    return page.eval_on_selector_all(selector, "tiles => tiles.map(t => t.dataset.pairId)")


def has_text(page, selector: str, text: str) -> None:
    """Wait until `selector` shows exactly `text` (the assertion says what it shows instead)."""
    sync_api.expect(page.locator(selector)).to_have_text(text, timeout=30_000)


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


# ---- the grid: many pairs at once ----

def test_grid_click_and_shift_click_drop_one_bulk_action_that_undo_takes_back_whole(server, page):
    open_grid(page, server.url)
    ids = tile_ids(page)
    assert len(ids) == 21 and ids[0] == "p04"  # lowest reliability first, as the cards
    first = page.locator("#cards .tile").first
    assert first.locator(".caption").text_content() == XSS and first.locator(".caption").get_attribute("title") == XSS
    assert page.locator("img[src='x']").count() == 0
    tiles = page.locator("#cards .tile")
    tiles.nth(1).click()
    tiles.nth(4).click(modifiers=["Shift"])  # 1 to 4
    tiles.nth(7).click()
    tiles.nth(3).click()  # unselects 3
    chosen = [ids[1], ids[2], ids[4], ids[7]]
    assert tile_ids(page, "#cards .tile.selected") == chosen
    has_text(page, "#selection-count", "4 selected")
    page.keyboard.press("d")
    for pair_id in chosen:
        wait_for_decision(page, pair_id, "dropped by ana")
    decisions = read_decisions(server.store)
    assert sorted(decisions["pair_id"]) == sorted(chosen) and set(decisions["action"]) == {"drop"}
    (batch,) = set(decisions["batch"])
    assert server.batches()[["batch", "reviewer", "action", "pairs", "rule", "standing"]].values.tolist() == [
        [batch, "ana", "drop", 4, "4 selected pairs", 4]]
    has_text(page, "#status", f"dropped 4 pairs as one bulk action ({batch}); u takes all of them back")
    has_text(page, "#selection-count", "0 selected")
    assert "reviewed 4 / left 17" in page.text_content("#progress-text")
    page.keyboard.press("a")  # no selection: the focused tile (the last clicked, 3) alone
    wait_for_decision(page, ids[3], "kept by ana")
    page.keyboard.press("u")  # takes back the keep
    has_text(page, "#status", f"undone: {ids[3]} is undecided")
    page.keyboard.press("u")  # takes back the bulk action, all of it
    has_text(page, "#status", "undone: bulk action of 4 pairs")
    for pair_id in chosen:
        wait_for_decision(page, pair_id, "undecided")
    assert server.decisions() == {}
    assert server.batches()["standing"].tolist() == [0]
    assert "reviewed 0 / left 21" in page.text_content("#progress-text")
    assert page.dialogs == [] and page.refused == [] and page.errors == []


def test_a_bulk_action_chosen_by_keys_is_on_disk_before_the_page_shows_it(server, page):
    open_grid(page, server.url)
    ids = tile_ids(page)
    per_row = page.evaluate("() => { const tiles = [...document.querySelectorAll('#cards .tile')];"
                            " return tiles.filter(t => t.offsetTop === tiles[0].offsetTop).length; }")
    assert 2 < per_row < 21
    page.keyboard.press("x")  # the focused tile, the first
    page.keyboard.press("l")
    page.keyboard.press("ArrowRight")
    page.keyboard.press(" ")  # the third
    page.keyboard.press("j")  # the tile below the third
    page.keyboard.press("x")
    assert tile_ids(page, "#cards .tile.selected") == [ids[0], ids[2], ids[2 + per_row]]
    page.keyboard.press("Escape")
    has_text(page, "#selection-count", "0 selected")
    page.keyboard.press("v")  # every undecided tile
    has_text(page, "#selection-count", "21 selected")
    page.keyboard.press("i")  # inverted: none
    has_text(page, "#selection-count", "0 selected")
    for key in "xhhx":  # the focused tile (below the third), then the one two to its left
        page.keyboard.press(key)
    chosen = [ids[per_row], ids[2 + per_row]]
    assert tile_ids(page, "#cards .tile.selected") == chosen
    page.keyboard.press("a")
    for pair_id in chosen:
        wait_for_decision(page, pair_id, "kept by ana")
    server.kill()  # no shutdown code runs: what the page was told is on disk
    decisions = read_decisions(server.store)
    assert sorted(decisions["pair_id"]) == sorted(chosen) and set(decisions["action"]) == {"keep"}
    assert decisions["batch"].nunique() == 1 and server.batches()["pairs"].tolist() == [2]
    assert page.errors == []


def test_the_rule_drops_what_its_preview_counted_and_shows_a_changed_count(server, page, files):
    open_queue(page, server.url)
    ids = card_ids(page)
    page.keyboard.press("d")  # the noisiest pair by hand: the rule covers undecided pairs only
    wait_for_decision(page, ids[0], "dropped by ana")
    scores = read_scores(files[1])
    scores = scores[scores["detector"] == "rrsitr"].set_index("pair_id")
    chance = 1 - scores["reliability"]  # no noisy probability in the scores: the chance of noise is 1 - reliability
    covered = chance[chance >= 0.8].sort_values(ascending=False)
    assert covered.index.tolist() == ids[:4]
    page.keyboard.press("r")
    page.keyboard.type("0.8")
    page.keyboard.press("Enter")
    has_text(page, "#rule-preview", f"3 pairs, expected {100 * covered[ids[1:4]].mean():.0f} % noise")
    has_text(page, "#rule-confirm", "drop these 3 pairs")
    server.decide(ids[1], "keep")  # meanwhile, in another tab
    page.click("#rule-confirm")
    has_text(page, "#rule-preview",
             f"changed meanwhile: 2 pairs, expected {100 * covered[ids[2:4]].mean():.0f} % noise")
    assert "the rule now covers 2 pairs, not 3" in page.text_content("#status")
    assert server.decisions() == {ids[0]: ("drop", None), ids[1]: ("keep", None)}
    rule = page.get_attribute("#rule-preview", "title")
    page.click("#rule-confirm")
    for pair_id in ids[2:4]:
        wait_for_decision(page, pair_id, "dropped by ana")
    assert page.is_hidden("#rule-confirm")
    assert server.decisions() == {ids[0]: ("drop", None), ids[1]: ("keep", None), ids[2]: ("drop", None),
                                  ids[3]: ("drop", None)}
    batches = server.batches()
    assert batches[["action", "pairs", "rule"]].values.tolist() == [["drop", 2, rule]]
    batch = read_decisions(server.store).set_index("pair_id").loc[ids[:4], "batch"]
    assert batch.tolist() == [None, None, batches["batch"][0], batches["batch"][0]]  # the two by hand, the rule's two
    assert rule == "undecided pairs whose the detector's noisy probability is at least 0.8"
    assert page.errors == []


def test_the_header_states_the_audited_share_of_the_audit_sample(tmp_path, page):
    data_path, scores_path = write_review_files(tmp_path, images=12)  # 33 scored pairs: MIN_AUDIT is 30
    server = ReviewServer(data_path, scores_path)
    server.start()
    try:
        open_grid(page, server.url)
        has_text(page, "#audit", audit_text(audit_share([None] * 33)) + " open the audit order")
        assert page.locator("#audit-labels").is_hidden()  # no label is checked before the audit states a share
        has_text(page, "#learned", learned_text({"decisions": 0, "estimate": None}))
        page.click("#audit button")  # to the audit order
        scores = read_scores(scores_path)
        scores = scores[scores["detector"] == "rrsitr"].sort_values("reliability", kind="stable")
        audit = scores["pair_id"].to_numpy()[audit_order(scores["pair_id"].to_numpy())].tolist()
        page.wait_for_function("n => document.querySelectorAll('#cards .tile').length === n", arg=len(audit))
        page.reload()  # the order and the view are in the URL
        page.wait_for_selector("#cards .tile.focused")
        assert tile_ids(page) == audit and page.input_value("#filters select[name=order]") == "audit"
        tiles = page.locator("#cards .tile")
        tiles.nth(0).click()
        tiles.nth(11).click(modifiers=["Shift"])
        page.keyboard.press("d")  # the first 12 of the sample are noise
        wait_for_decision(page, audit[11], "dropped by ana")
        page.keyboard.press("v")
        tiles.nth(20).click()  # the 21st is left undecided (skipped)
        has_text(page, "#selection-count", "20 selected")
        page.keyboard.press("a")
        wait_for_decision(page, audit[32], "kept by ana")
        decided = dict(read_decisions(server.store)[["pair_id", "action"]].values)
        labels = scores.set_index("pair_id").loc[audit, "label"].to_numpy()
        share = audit_share([decided.get(pair_id) for pair_id in audit], labels=labels)
        assert (share["decided"], share["skipped"], share["noisy"]) == (32, 1, 12)
        has_text(page, "#audit", audit_text(share))
        # each label's sampled pairs checked: the line the server wrote, shown as it is
        assert share["labels"] and audit_labels_text(share, None).startswith("audited labels: ")
        has_text(page, "#audit-labels", audit_labels_text(share, None))
        assert audit_text(share) == (f"audit: {100 * share['estimate']:.1f} % noisy ({100 * share['low']:.1f}-"
                                     f"{100 * share['high']:.1f}, 90 %) from 32 decided in a uniform sample; "
                                     f"1 skipped, left out")
        shown = {name: float(page.get_attribute("#audit", f"data-{name}")) for name in ("estimate", "low", "high")}
        assert shown == {name: share[name] for name in ("estimate", "low", "high")}
        assert page.text_content("#learned").startswith("learned from 32 decisions: model estimate ")
        assert page.errors == []
    finally:
        server.kill()


def test_a_blind_second_review_and_the_agreement_of_the_two(files, page):
    ana = ReviewServer(*files)
    bo = ReviewServer(*files, "--blind", reviewer="bo")  # the same store
    ana.start()
    bo.start()
    try:
        open_queue(page, ana.url)
        ids = card_ids(page)[:6]
        for pair_id, key in zip(ids, "dadada"):
            page.keyboard.press(key)
            wait_for_decision(page, pair_id, "dropped by ana" if key == "d" else "kept by ana")
        assert page.is_hidden("#agreement")
        blind = page.context.new_page()
        blind.errors = []
        blind.on("pageerror", lambda error: blind.errors.append(str(error)))
        open_grid(blind, bo.url)
        has_text(blind, "#blind", "blind review: bo")
        assert tile_ids(blind)[:6] == ids
        assert set(blind.eval_on_selector_all("#cards .tile .decision", "d => d.map(x => x.textContent)")) == {
            "undecided"}  # ana's decisions are not shown
        assert "reviewed 0 / left 21" in blind.text_content("#progress-text")
        assert "disagreed" not in blind.eval_on_selector_all("#filters select[name=state] option",
                                                            "options => options.map(o => o.value)")
        tiles = blind.locator("#cards .tile")
        tiles.nth(0).click()
        tiles.nth(2).click(modifiers=["Shift"])
        blind.keyboard.press("d")
        wait_for_decision(blind, ids[2], "dropped by bo")
        tiles.nth(3).click()
        tiles.nth(5).click(modifiers=["Shift"])
        blind.keyboard.press("a")
        wait_for_decision(blind, ids[5], "kept by bo")
        assert blind.is_hidden("#agreement")
        with DecisionStore(ana.store, reviewer="test") as store:
            theirs = store.current(by_reviewer=True).pivot(index="pair_id", columns="reviewer", values="action")
        noise = theirs.loc[ids].isin(["drop", "fix"])
        kappa, agree = cohen_kappa(noise["ana"], noise["bo"]), (noise["ana"] == noise["bo"]).mean()
        page.bring_to_front()
        page.evaluate("window.dispatchEvent(new Event('focus'))")  # what a curator's returning to the tab does
        has_text(page, "#agreement", f"ana vs bo: Cohen's kappa {kappa:.2f}, agree on {100 * agree:.0f} % of 6 pairs, "
                                     f"2 disagree show them")
        assert float(page.get_attribute("#agreement", "data-kappa")) == kappa
        page.click("#agreement button")
        page.wait_for_function("() => document.getElementById('position').textContent === '1\u20132 of 2'")
        assert sorted(card_ids(page)) == sorted(noise.index[noise["ana"] != noise["bo"]]) == sorted([ids[1], ids[4]])
        assert page.input_value("#filters select[name=state]") == "disagreed"
        assert page.errors == [] and blind.errors == []
    finally:
        ana.kill()
        bo.kill()


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
