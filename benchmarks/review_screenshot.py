"""Retake docs/review.png: the review page's grid on the demo's data, scored by its base (out of sample, as the
demo states its labels), 200 pairs of the audit order and the 40 noisiest decided from the ground truth (a
throwaway decision store), four tiles selected, a rule previewed.

    .venv/bin/python benchmarks/review_screenshot.py DEMO_FOLDER      # what `nctool demo --out DEMO_FOLDER` left
"""

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from nctool.curate.review.queue import ReviewQueue
from nctool.data.decisions import DecisionStore

D = Path(sys.argv[1])
data, scores = D / "data/caption-shuffle-0.40.parquet", D / "runs/caption-shuffle-0.40/base-scores.parquet"
store_path = Path(tempfile.mkdtemp()) / "decisions.sqlite"
queue = ReviewQueue.load(data, scores, detector="rrsitr")
ids, truth = queue.pairs["pair_id"].to_numpy(), queue.pairs["noisy"].to_numpy(bool)
with DecisionStore(store_path, reviewer="ana") as store:
    for row in queue.select(order="audit")[:200]:
        store.record(ids[row], "drop" if truth[row] else "keep")
    for row in queue.select(order="noisiest")[:40]:
        if ids[row] not in store.get([ids[row]]):
            store.record(ids[row], "drop" if truth[row] else "keep")
server = subprocess.Popen([sys.executable, "-c", "from nctool.cli import main; main()", "review", str(data), "--scores",
                           str(scores), "--detector", "rrsitr", "--decisions", str(store_path), "--reviewer", "ana",
                           "--port", "8799"], stdout=subprocess.PIPE, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
try:
    url = next(line.strip() for line in server.stdout if re.fullmatch(r"http://\S+", line.strip()))
    time.sleep(2)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--headless"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url)
        page.wait_for_selector("#cards .card")
        page.keyboard.press("g")
        page.wait_for_selector("#cards .tile")
        tiles = page.locator("#cards .tile")
        for i in (10, 12, 13, 15):
            tiles.nth(i).click()
        page.fill("#rule input[type=number]", "0.95")
        page.click("#rule button[type=submit]")  # the preview
        page.wait_for_timeout(800)
        page.screenshot(path=str(Path(__file__).parent.parent / "docs" / "review.png"))
        print(page.text_content("#audit"), "|", page.text_content("#learned"))
        browser.close()
finally:
    server.kill()
