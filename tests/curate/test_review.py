import io
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from cli_helpers import invoke, run_cli
from PIL import Image
from review_helpers import (
    BASE_URL,
    TOKEN,
    XSS,
    review_client,
    review_data,
    review_scores,
    write_review_files,
)
from starlette.testclient import TestClient

from nctool.cli import review as review_cli
from nctool.curate.review.gallery import RENDERER, write_gallery
from nctool.curate.review.queue import ReviewQueue, stated_noise
from nctool.curate.review.server import bind, export, is_loopback, review_app
from nctool.data.decisions import DecisionStore, default_decisions_path, read_decisions
from nctool.errors import NctoolError
from nctool.schema import NOISE_SHARE_KEY, write_table


@pytest.fixture
def files(tmp_path):
    return write_review_files(tmp_path)


@pytest.fixture
def client(files):
    data_path, scores_path = files
    app = review_app(data_path, scores_path, detector="rrsitr", reviewer="ana", token=TOKEN)
    with review_client(app) as test_client:
        yield test_client


# ---- the queue ----

def test_queue_is_lowest_reliability_first_with_paging(files):
    queue = ReviewQueue.load(*files, detector="rrsitr")
    reliability = queue.pairs["reliability"].to_numpy()
    assert len(queue.order) == 21  # 7 train images x 3 captions; the val image is not scored
    assert np.all(np.diff(reliability[queue.order]) > 0)
    first = queue.page(offset=0, limit=5)
    assert first["total"] == 21 and [c["pair_id"] for c in first["cards"]][0] == "p04"
    second = queue.page(offset=5, limit=5)
    assert [c["reliability"] for c in first["cards"] + second["cards"]] == sorted(reliability[queue.order])[:10]
    assert queue.page(offset=20, limit=5)["cards"][0]["pair_id"] == queue.pairs["pair_id"].iat[queue.order[-1]]
    assert queue.page(offset=40, limit=5)["cards"] == []


def decide(queue: ReviewQueue, folder: Path, pair_id: str, action: str, new_caption: str | None = None,
           reviewer: str = "ana") -> None:
    """Record a decision in the store in `folder` and let the queue read it, as the server does."""
    with DecisionStore(folder / "decisions.sqlite", reviewer=reviewer) as store:
        store.record(pair_id, action, new_caption=new_caption)
        queue.sync(store, [pair_id])


def test_filters_by_label_category_state_and_text(files, tmp_path):
    queue = ReviewQueue.load(*files, detector="rrsitr")
    labels = queue.pairs.set_index("pair_id")["label"]
    noisy = [c["pair_id"] for c in queue.page(label="noisy", limit=50)["cards"]]
    assert noisy and set(labels[noisy]) == {"noisy"} and len(noisy) == (labels == "noisy").sum()
    beach = queue.page(category="beach", limit=50)["cards"]
    assert beach and {c["category"] for c in beach} == {"beach"}
    assert [c["pair_id"] for c in queue.page(text="CAPTION 13", limit=50)["cards"]] == ["p13"]
    assert [c["pair_id"] for c in queue.page(text="onerror", limit=50)["cards"]] == ["p04"]
    decide(queue, tmp_path, "p13", "drop")
    assert [c["pair_id"] for c in queue.page(state="dropped", limit=50)["cards"]] == ["p13"]
    assert queue.page(state="kept", limit=50)["total"] == 0
    assert "p13" not in [c["pair_id"] for c in queue.page(state="undecided", limit=50)["cards"]]
    assert queue.page(category="harbour", limit=50)["total"] == 0


def test_resume_opens_the_page_of_the_first_undecided_pair(files, tmp_path):
    queue = ReviewQueue.load(*files, detector="rrsitr")
    for row in queue.order[:7]:
        pair_id = queue.pairs["pair_id"].iat[row]
        decide(queue, tmp_path, pair_id, "keep")
    page = queue.page(limit=5, resume=True)
    assert (page["offset"], page["focus"]) == (5, 7)
    assert page["cards"][2]["pair_id"] == queue.pairs["pair_id"].iat[queue.order[7]]
    assert page["cards"][2]["decision"] is None and page["cards"][1]["decision"]["action"] == "keep"


def test_card_shows_siblings_truth_evidence_and_suggestions(files):
    queue = ReviewQueue.load(*files, detector="rrsitr")
    card = queue.card(queue.row_of["p04"])
    assert card["caption"] == XSS and card["label"] == "noisy" and card["noisy"] is False
    assert [s["pair_id"] for s in card["siblings"]] == ["p03", "p05"]
    assert set(card["evidence"]) == {"loss", "loss_std"}
    assert [s["pair_id"] for s in card["suggested_captions"]] == ["p00", "p01"]
    assert card["suggested_captions"][0] == {"pair_id": "p00", "caption": "caption 0 of a airport scene", "score": 0.9}
    assert [(s["image_id"], s["pair_id"]) for s in card["suggested_images"]] == [("img0", "p00"), ("img2", "p06")]
    clean = queue.card(int(queue.order[-1]))
    assert clean["suggested_captions"] == [] and clean["suggested_images"] == []


STATED = {"method": "decoys", "estimate": 0.375, "low": 0.322, "high": 0.429, "clean": 1075,
          "clean_contamination": 0.0499}


def test_the_header_shows_the_share_the_scores_file_states(files):
    data_path, scores_path = files
    write_table(pd.read_parquet(scores_path), scores_path, metadata={NOISE_SHARE_KEY: json.dumps({"rrsitr": STATED})})
    summary = ReviewQueue.load(data_path, scores_path, detector="rrsitr").summary()
    assert summary["noise_share"] == STATED
    assert summary["noise_text"] == "estimated noise 37.5 % (32.2-42.9), clean 1075 pairs with est. 5.0 % noisy"
    assert stated_noise({**STATED, "method": "mixture"}) == "estimated noise 37.5 % (32.2-42.9) (mixture)"
    assert stated_noise({**STATED, "estimate": None}) == "noise share: not enough evidence to state it"
    assert stated_noise({**STATED, "clean": 0}) == "estimated noise 37.5 % (32.2-42.9)"
    assert stated_noise({**STATED, "clean": 0, "scene_estimate": 0.87}) == \
        "estimated noise 37.5 % (32.2-42.9); like same-scene captions 87.0 %"
    flagged = {**STATED, "clean": 0, "noisy": 120, "noisy_precision": 0.953, "noisy_low": 0.818, "noisy_high": 1.0}
    assert stated_noise(flagged) == \
        "estimated noise 37.5 % (32.2-42.9), noisy 120 pairs with est. precision 95 % (82-100)"
    assert stated_noise({**flagged, "noisy_low": None}) == "estimated noise 37.5 % (32.2-42.9)"  # scored before it


def test_summary_counts_progress_noise_share_and_histogram(files, tmp_path):
    queue = ReviewQueue.load(*files, detector="rrsitr")
    decide(queue, tmp_path, "p13", "fix", "a beach")
    summary = queue.summary()
    labels = queue.pairs["label"].dropna()
    assert (summary["pairs"], summary["reviewed"], summary["left"]) == (21, 1, 20)
    assert summary["actions"] == {"keep": 0, "drop": 0, "fix": 1}
    assert summary["noise_share"] is None and summary["noise_text"] == ""  # review_scores states nothing
    assert summary["true_noise_share"] == pytest.approx(queue.pairs["noisy"][labels.index].mean())
    assert sum(sum(counts) for counts in summary["histogram"]["counts"].values()) == 21
    assert summary["thresholds"]["noisy_up_to"] < 0.3 <= summary["thresholds"]["clean_from"] - 0.3
    assert summary["categories"] == ["airport", "beach"]


def test_refuses_unknown_filters_and_detectors(files):
    queue = ReviewQueue.load(*files, detector="rrsitr")
    with pytest.raises(NctoolError, match="label 'bad': unknown"):
        queue.page(label="bad")
    with pytest.raises(NctoolError, match="state 'maybe': unknown"):
        queue.page(state="maybe")
    with pytest.raises(NctoolError, match="limit 0"):
        queue.page(limit=0)
    with pytest.raises(NctoolError, match="several detectors"):
        ReviewQueue.load(*files)
    with pytest.raises(NctoolError, match="detector 'neighbors': not in the scores file"):
        ReviewQueue.load(*files, detector="neighbors")


def test_refuses_scores_of_another_version_of_the_data(tmp_path, files):
    data_path, scores_path = files
    other = review_data().assign(caption=lambda d: d["caption"] + " (edited)")
    write_table(other, tmp_path / "other.parquet")
    with pytest.raises(NctoolError, match="another version of the data"):
        ReviewQueue.load(tmp_path / "other.parquet", scores_path, detector="rrsitr")


# ---- the API ----

def test_api_pages_and_summary(client):
    page = client.get("/api/queue", params={"limit": 4}).json()
    assert page["total"] == 21 and len(page["cards"]) == 4 and page["cards"][0]["pair_id"] == "p04"
    assert page["cards"][0]["caption"] == XSS  # verbatim, as JSON text
    assert client.get("/api/queue", params={"label": "noisy", "q": "caption 1"}).status_code == 200
    summary = client.get("/api/summary").json()
    assert summary["detector"] == "rrsitr" and summary["left"] == 21
    assert client.get("/").status_code == 200 and "review.js" in client.get("/").text
    assert client.get("/static/review.js").status_code == 200


def test_api_config_is_the_one_home_of_keys_and_filter_choices(client):
    from nctool.curate.review.queue import DISAGREED, ORDERS, STATES
    from nctool.data.decisions import ACTIONS
    from nctool.schema import LABELS

    config = client.get("/api/config").json()
    assert sorted(config["labels"]) == sorted(LABELS) and config["states"] == [*STATES, DISAGREED]
    assert config["orders"] == list(ORDERS)
    assert config["actions"] == list(ACTIONS) and config["action_names"] == {"keep": "kept", "drop": "dropped",
                                                                              "fix": "fixed"}
    keys = [key for entry in config["keys"] for key in entry["keys"]]
    assert len(keys) == len(set(keys)) and {"a", "d", "e", "1", "9", "?", "Escape"} <= set(keys)
    assert all(entry["help"] and entry["shown"] and entry["command"] for entry in config["keys"])
    # the page holds none of them itself: its help, its selects and its key handler are built from the config
    page = client.get("/").text
    script = client.get("/static/review.js").text + client.get("/static/cards.js").text
    assert "<tr>" not in page and "<option>" not in page and "keep (the caption" not in page
    assert "ArrowDown" not in script and "keep (the caption" not in script
    assert not re.search(r"""["'](kept|dropped|noisy|ambiguous)["']""", script)


@pytest.mark.parametrize("query", [{"offset": "x"}, {"limit": "1e3"}, {"limit": 0}, {"offset": -1},
                                   {"label": "weird"}, {"state": "gone"}])
def test_api_refuses_bad_queries_with_4xx(client, query):
    response = client.get("/api/queue", params=query)
    assert 400 <= response.status_code < 500 and response.json()["error"]
    assert client.get("/api/summary").status_code == 200  # still serving


def test_api_images_by_pair_id_only(client):
    response = client.get("/api/image/p04")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(response.content)).size == (40, 30)  # never enlarged
    assert client.get("/api/image/p04", params={"size": "large"}).status_code == 200
    assert client.get("/api/image/p04", params={"size": "huge"}).status_code == 400
    assert client.get("/api/image/p23").status_code == 200  # an unscored (val) pair still has its image
    for attempt in ("/api/image/..%2F..%2Fetc%2Fpasswd", "/api/image/../../etc/passwd", "/api/image/%2Fetc%2Fpasswd",
                    "/api/image/nope", "/api/image/", "/static/..%2F..%2Fqueue.py", "/static/../server.py"):
        assert client.get(attempt).status_code == 404, attempt


def test_api_thumbnails_are_resized_and_cached(tmp_path):
    data = review_data(images=3)
    big = io.BytesIO()
    Image.new("RGB", (900, 600), (10, 200, 30)).save(big, format="PNG")
    data["image"] = [{"bytes": big.getvalue(), "path": None}] * len(data)
    write_table(data, tmp_path / "data.parquet")
    write_table(review_scores(data), tmp_path / "scores.parquet")
    app = review_app(tmp_path / "data.parquet", tmp_path / "scores.parquet", detector="rrsitr", token=TOKEN)
    with review_client(app) as client:
        thumb = client.get("/api/image/p00").content
        assert Image.open(io.BytesIO(thumb)).size == (256, 171)
        assert Image.open(io.BytesIO(client.get("/api/image/p00?size=large").content)).size == (900, 600)
        assert client.get("/api/image/p01").content == thumb  # a sibling: the same image, from the cache


def test_thumbnails_of_different_images_are_made_in_parallel(files, monkeypatch):
    """Two requests for different images decode at the same time (the lock covers the cache only), and
    two for the same image decode it once. No timing: each decode waits for the other to start."""
    import threading

    from nctool.curate.review import thumbnails as thumbnails_module

    real_load = thumbnails_module.load_image
    both_decoding = threading.Barrier(2, timeout=20)  # broken (BrokenBarrierError) when decodes run one at a time
    calls = []

    def slow_load(struct, root):
        calls.append(struct)
        both_decoding.wait()
        return real_load(struct, root)

    monkeypatch.setattr(thumbnails_module, "load_image", slow_load)
    made = thumbnails_module.Thumbnails(files[0], files[0].parent)
    results, errors = {}, []

    def make(row):
        try:
            results[row] = made.jpeg(row)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=make, args=(row,)) for row in (0, 3)]  # img0 and img1
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and len(calls) == 2 and results[0] != results[3]
    monkeypatch.setattr(thumbnails_module, "load_image",
                        lambda struct, root: calls.append(struct) or real_load(struct, root))
    assert made.jpeg(0) == results[0] and len(calls) == 2  # from the cache


def test_api_decisions_are_stored_at_once_and_last_write_wins(files, client):
    data_path, scores_path = files
    response = client.post("/api/decision", json={"pair_id": "p04", "action": "drop"})
    assert response.status_code == 200
    body = response.json()
    assert body["decision"]["action"] == "drop" and body["decision"]["reviewer"] == "ana"
    assert body["summary"]["reviewed"] == 1
    with DecisionStore(default_decisions_path(scores_path)) as store:  # another tab / process
        assert store.get(["p04"])["p04"]["action"] == "drop"
    second_tab = client.post("/api/decision", json={"pair_id": "p04", "action": "fix", "new_caption": XSS + "!"})
    assert (second_tab.json()["decision"]["action"], second_tab.json()["decision"]["new_caption"]) == ("fix", XSS + "!")
    card = client.get("/api/queue", params={"limit": 1}).json()["cards"][0]
    assert card["decision"]["action"] == "fix" and card["decision"]["new_caption"] == XSS + "!"
    assert client.get("/api/queue", params={"state": "fixed"}).json()["total"] == 1


def test_api_undo_takes_back_the_newest_decision(client):
    client.post("/api/decision", json={"pair_id": "p04", "action": "keep"})
    client.post("/api/decision", json={"pair_id": "p04", "action": "drop"})
    client.post("/api/decision", json={"pair_id": "p07", "action": "keep"})
    undone = client.post("/api/undo", json={"pair_id": "p04"}).json()
    assert undone["pair_ids"] == ["p04"] and undone["decisions"]["p04"]["action"] == "keep"
    bare = client.post("/api/undo", json={}).json()
    assert bare["pair_ids"] == ["p07"] and bare["decisions"] == {"p07": None}
    assert client.post("/api/undo", json={}).json()["pair_ids"] == ["p04"]
    assert client.post("/api/undo", json={}).json()["pair_ids"] == []  # nothing left to undo
    assert client.get("/api/summary").json()["reviewed"] == 0


@pytest.mark.parametrize("body, status", [
    (b"{not json", 400), (b"\xff\xfe", 400), (b"[1, 2]", 400), (b'"keep"', 400),
    (b'{"pair_id": "p04", "action": "maybe"}', 422), (b'{"pair_id": "p04"}', 422),
    (b'{"pair_id": 4, "action": "keep"}', 422), (b'{"pair_id": "nope", "action": "keep"}', 404),
    (b'{"pair_id": "p04", "action": "fix"}', 422), (b'{"pair_id": "p04", "action": "keep", "new_caption": 3}', 422),
    (b'{"pair_id": "p04", "action": "keep", "new_caption": "x"}', 422)])
def test_api_refuses_malformed_decisions(client, body, status):
    response = client.post("/api/decision", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status and response.json()["error"]
    assert client.get("/api/summary").json()["reviewed"] == 0  # nothing stored, still serving
    assert client.post("/api/undo", content=b"nope", headers={"Content-Type": "application/json"}).status_code == 400


def test_api_exports_the_decisions_as_parquet(tmp_path, client):
    client.post("/api/decision", json={"pair_id": "p04", "action": "fix", "new_caption": "a runway"})
    response = client.get("/api/export")
    assert response.status_code == 200 and "decisions.parquet" in response.headers["content-disposition"]
    (tmp_path / "download.parquet").write_bytes(response.content)
    decisions = read_decisions(tmp_path / "download.parquet")
    assert decisions[["pair_id", "action", "new_caption"]].values.tolist() == [["p04", "fix", "a runway"]]


def test_decisions_survive_a_restart(files):
    data_path, scores_path = files
    with review_client(review_app(data_path, scores_path, detector="rrsitr", token=TOKEN)) as first:
        first.post("/api/decision", json={"pair_id": "p04", "action": "drop"})
    with review_client(review_app(data_path, scores_path, detector="rrsitr", token=TOKEN)) as second:
        page = second.get("/api/queue", params={"limit": 5, "resume": 1}).json()
        assert page["focus"] == 1 and page["cards"][0]["decision"]["action"] == "drop"


def test_export_writes_the_store_and_refuses_a_missing_one(tmp_path, files):
    data_path, scores_path = files
    with pytest.raises(NctoolError, match="no decisions file there"):
        export(scores_path, tmp_path / "d.parquet")
    with DecisionStore(tmp_path / "mine.sqlite") as store:
        store.record("p01", "keep")
    out = export(scores_path, tmp_path / "d.parquet", decisions=tmp_path / "mine.sqlite")
    assert read_decisions(out)["pair_id"].tolist() == ["p01"]


def test_binds_loopback_and_refuses_a_taken_port():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    sock = bind("127.0.0.1", 0)
    try:
        with pytest.raises(NctoolError, match=f"127.0.0.1:{sock.getsockname()[1]}: cannot listen there"):
            bind("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()


# ---- what a hostile page or request gets ----

JSON = {"Content-Type": "application/json"}
DROP = b'{"pair_id": "p04", "action": "drop"}'


def stored(client) -> int:
    return client.get("/api/summary").json()["reviewed"]


def test_every_response_forbids_framing_sniffing_and_foreign_code(client):
    responses = [client.get("/"), client.get("/static/review.js"), client.get("/static/review.css"),
                 client.get("/api/summary"), client.get("/api/image/p04"), client.get("/api/export"),
                 client.get("/nope"), client.post("/api/decision", content=b"{", headers=JSON),
                 client.get("/api/queue", headers={"Host": "evil.example"}), client.post("/api/undo", content=b"{}")]
    for response in responses:
        headers = response.headers
        assert headers["x-frame-options"] == "DENY", response.url
        policy = dict(part.strip().split(" ", 1) for part in headers["content-security-policy"].split(";"))
        assert policy["frame-ancestors"] == "'none'" and policy["default-src"] == "'self'"
        assert "unsafe" not in headers["content-security-policy"] and "*" not in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
        assert headers["cross-origin-resource-policy"] == "same-origin"
    html = client.get("/").text  # the policy allows no inline script or style: the page needs none
    assert ("<script>" not in html and " style=" not in html and "<style" not in html
            and not re.search(r"\son\w+=", html))


@pytest.mark.parametrize("host", ["evil.example:8765", "evil.example", "127.0.0.1.evil.example:8765",
                                  "localhost.evil.example", "", "127.0.0.1@evil.example:8765"])
def test_refuses_other_host_names_on_every_route(client, host):
    """DNS rebinding: a name the attacker points at 127.0.0.1 reaches the port, but not the app."""
    for method, path in [("GET", "/"), ("GET", "/static/review.js"), ("GET", "/api/summary"), ("GET", "/api/queue"),
                         ("GET", "/api/export"), ("GET", "/api/image/p04"), ("POST", "/api/decision"),
                         ("POST", "/api/undo")]:
        response = client.request(method, path + f"?token={TOKEN}", headers={**JSON, "Host": host},
                                  content=DROP if method == "POST" else None)
        assert response.status_code == 403 and "host" in response.json()["error"], (path, host)
        assert "p04" not in response.text
    assert stored(client) == 0


def test_allows_loopback_names_and_the_host_it_was_started_for(files):
    app = review_app(*files, detector="rrsitr", token=TOKEN, host="192.168.1.5")
    with review_client(app) as client:
        for host in ["127.0.0.1:8765", "127.0.0.1", "localhost:8765", "LOCALHOST:8765", "[::1]:8765",
                     "192.168.1.5:8765"]:
            assert client.get("/api/summary", headers={"Host": host}).status_code == 200, host
        assert client.get("/api/summary", headers={"Host": "192.168.1.6:8765"}).status_code == 403
    with review_client(review_app(*files, detector="rrsitr", token=TOKEN, host="0.0.0.0")) as client:
        # every address of the machine reaches a server on all interfaces; an address is no rebound name
        assert client.get("/api/summary", headers={"Host": "10.1.2.3:8765"}).status_code == 200
        assert client.get("/api/summary", headers={"Host": "[fe80::1]:8765"}).status_code == 200
        assert client.get("/api/summary", headers={"Host": "evil.example:8765"}).status_code == 403


@pytest.mark.parametrize("headers, status", [
    ({"Content-Type": "text/plain"}, 415),  # fetch(no-cors) and <form enctype="text/plain">
    ({"Content-Type": "application/x-www-form-urlencoded"}, 415), ({"Content-Type": "multipart/form-data"}, 415),
    ({}, 415), ({"Content-Type": "application/jsonp"}, 415),
    ({**JSON, "Origin": "http://127.0.0.1:9999"}, 403), ({**JSON, "Origin": "http://evil.example"}, 403),
    ({**JSON, "Origin": "null"}, 403), ({**JSON, "Origin": "https://127.0.0.1:8765"}, 403),
    ({**JSON, "Sec-Fetch-Site": "cross-site"}, 403), ({**JSON, "Sec-Fetch-Site": "same-site"}, 403),
    ({**JSON, "X-Nctool-Token": ""}, 403), ({**JSON, "X-Nctool-Token": TOKEN + "x"}, 403),
    ({**JSON, "X-Nctool-Token": TOKEN[:-1]}, 403)])
def test_writes_need_json_from_the_page_itself_with_the_token(client, headers, status):
    """Cross-site request forgery: no form, no no-cors fetch, no other origin and no tokenless request writes."""
    assert client.post("/api/decision", content=DROP, headers=JSON).status_code == 200
    for path, body in [("/api/decision", b'{"pair_id": "p07", "action": "keep"}'), ("/api/undo", b"{}"),
                       ("/api/undo", b'{"pair_id": "p04"}')]:
        response = client.post(path, content=body, headers=headers)
        assert response.status_code == status and response.json()["error"], (path, response.text)
    assert client.get("/api/queue", params={"state": "dropped"}).json()["total"] == 1 and stored(client) == 1


def test_the_page_itself_writes_as_a_browser_sends_it(client):
    same_origin = {**JSON, "Origin": BASE_URL, "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}
    assert client.post("/api/decision", content=DROP, headers=same_origin).status_code == 200
    assert client.post("/api/decision", content=DROP, headers={"Content-Type": "application/json; charset=utf-8",
                                                              "Sec-Fetch-Site": "none"}).status_code == 200
    assert client.post("/api/undo", content=b"{}", headers=same_origin).json()["pair_ids"] == ["p04"]
    assert client.post("/api/undo", content=b"{}", headers=same_origin).json()["decisions"] == {"p04": None}
    # the token goes in the header: a query token is enough to read (images, export link), never to write
    bare = TestClient(client.app, base_url=BASE_URL)  # no `with`: the app's lifespan (the open store) is client's
    assert bare.post(f"/api/decision?token={TOKEN}", content=DROP, headers=JSON).status_code == 403
    assert stored(client) == 0


def test_reads_need_the_token_and_the_page_needs_none(client):
    with TestClient(client.app, base_url=BASE_URL) as bare:
        for path in ["/api/summary", "/api/queue", "/api/export", "/api/image/p04", "/api/image/p04?size=large"]:
            refused = bare.get(path)
            assert refused.status_code == 403 and "token" in refused.json()["error"], path
            assert "p04" not in refused.text and refused.headers["content-type"] == "application/json"
            assert bare.get(path + ("&" if "?" in path else "?") + f"token={TOKEN}").status_code == 200, path
            assert bare.get(path, headers={"X-Nctool-Token": TOKEN}).status_code == 200, path
            assert bare.get(path, params={"token": "wrong"}).status_code == 403
        assert bare.get("/").status_code == 200 and bare.get("/static/review.js").status_code == 200  # no data in them
    # another site may not embed the data, token or not (an <img> of another loopback port is same-site)
    assert client.get("/api/image/p04", headers={"Sec-Fetch-Site": "same-site"}).status_code == 403
    assert client.get("/api/queue", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert client.get("/api/image/p04", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
    assert client.get("/", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}).status_code == 200


def test_without_a_token_only_the_origin_checks_remain(files):
    with TestClient(review_app(*files, detector="rrsitr", token=None), base_url=BASE_URL) as client:
        assert client.get("/api/queue").status_code == 200
        assert client.post("/api/decision", content=DROP, headers=JSON).status_code == 200
        assert client.post("/api/undo", content=b"{}", headers={"Content-Type": "text/plain"}).status_code == 415
        assert client.post("/api/undo", content=b"{}",
                           headers={**JSON, "Origin": "http://x.example"}).status_code == 403
        assert client.get("/api/queue", headers={"Host": "evil.example"}).status_code == 403
        assert stored(client) == 1


@pytest.mark.parametrize("body, status", [
    (json.dumps({"pair_id": "p04", "action": "fix", "new_caption": "x" * 30_000_000}).encode(), 413),
    (json.dumps({"pair_id": "p04", "action": "fix", "new_caption": "x" * 10_001}).encode(), 413),
    (b'{"pair_id": "p04", "action": "fix", "new_caption": "a \\ud800 caption"}', 400),
    (b'{"pair_id": "p04\\udfff", "action": "keep"}', 400),
    (b'{"pair_id": "p04", "action": "fix", "new_caption": "\xed\xa0\x80"}', 400),  # a surrogate in raw bytes
    (b"[" * 200_000, 413), (b"[" * 50_000, 400), (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, 400),
    (b"", 400), (b"{} {}", 400), (b"NaN", 400)])
def test_refuses_big_deep_and_badly_encoded_bodies_with_json(client, body, status):
    response = client.post("/api/decision", content=body, headers=JSON)
    assert response.status_code == status and response.json()["error"]
    assert client.post("/api/undo", content=body, headers=JSON).status_code == status
    assert stored(client) == 0 and client.get("/api/queue").status_code == 200  # nothing stored, still serving


def test_a_caption_up_to_the_limit_is_stored(client):
    caption = "\u00e9" * 10_000  # 10,000 characters, 20,000 bytes of UTF-8
    response = client.post("/api/decision", json={"pair_id": "p04", "action": "fix", "new_caption": caption})
    assert response.status_code == 200 and response.json()["decision"]["new_caption"] == caption


def test_an_unexpected_error_is_a_json_500_without_a_traceback(files, monkeypatch):
    monkeypatch.setattr(ReviewQueue, "summary", lambda self: 1 / 0)
    with review_client(review_app(*files, detector="rrsitr", token=TOKEN), raise_server_exceptions=False) as client:
        response = client.get("/api/summary")
    assert response.status_code == 500 and response.headers["content-type"] == "application/json"
    assert "Traceback" not in response.text and "ZeroDivisionError" not in response.text and response.json()["error"]
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("port", [99999, -1, 65536])
def test_an_impossible_port_is_one_line(port):
    with pytest.raises(NctoolError, match=f"--port {port}: not a port"):
        bind("127.0.0.1", port)
    result = run_cli("review", "d.parquet", "--scores", "s.parquet", "--port", port)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and f"--port {port}: not a port" in result.stderr


def start_review(files, *args, columns: int = 80) -> tuple[subprocess.Popen, str]:
    """`nctool review` on a free port with stdout a pipe; returns the process and the line that looks like a URL."""
    process = subprocess.Popen([sys.executable, "-c", "from nctool.cli import main; main()", "review", str(files[0]),
                                "--scores", str(files[1]), "--port", "0", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": str(columns)})
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if "http://" in line:
            return process, lines
    process.kill()
    raise AssertionError(f"no URL printed: {lines} {process.stderr.read()}")


def test_cli_prints_the_url_with_its_token_whole_on_its_own_line(tmp_path):
    folder = tmp_path / ("a-long-folder-name-for-the-review-data" * 3)
    folder.mkdir()
    files = write_review_files(folder)
    process, lines = start_review(files)
    try:
        url = lines[-1]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?token=[A-Za-z0-9_-]{40,}", url), lines
        assert str(files[0]) in "".join(lines[:-1])  # what is reviewed is said too
        token = url.split("token=")[1]
        api = url.split("?")[0] + "api/summary"
        with urllib.request.urlopen(urllib.request.Request(api, headers={"X-Nctool-Token": token})) as response:
            assert json.load(response)["left"] == 21
        with pytest.raises(urllib.error.HTTPError, match="403"):
            urllib.request.urlopen(api)
        write = urllib.request.Request(url.split("?")[0] + "api/decision", data=DROP, method="POST",
                                       headers={**JSON, "X-Nctool-Token": token})
        with urllib.request.urlopen(write) as response:
            assert json.load(response)["decision"]["action"] == "drop"
    finally:
        process.kill()
        process.wait()
    again, lines = start_review(files, columns=40)  # a new launch, a new token; a narrower terminal
    again.kill()
    again.wait()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?token=[A-Za-z0-9_-]{40,}", lines[-1]), lines
    assert lines[-1].split("token=")[1] != token


def test_cli_no_token_warns_and_prints_a_bare_url(files):
    process, lines = start_review(files, "--no-token")
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", lines[-1]), lines
        with urllib.request.urlopen(lines[-1] + "api/summary") as response:
            assert response.status == 200
    finally:
        process.kill()
        process.wait()
    assert "warning: --no-token" in process.stderr.read()


# ---- the gallery ----

CARDS_JS = RENDERER


def gallery_data(html: str) -> dict:
    """The JSON block a gallery's cards are drawn from."""
    block = re.search(r'<script type="application/json" id="gallery-data">(.*?)</script>', html, re.S)
    return json.loads(block.group(1))


def test_gallery_embeds_the_lowest_pairs_and_escapes_captions(tmp_path, files):
    data_path, scores_path = files
    result = write_gallery(data_path, scores_path, tmp_path / "gallery.html", detector="rrsitr", limit=5)
    html = (tmp_path / "gallery.html").read_text()
    assert result["pairs"] == 5
    data = gallery_data(html)
    queue = ReviewQueue.load(data_path, scores_path, detector="rrsitr")
    lowest = [queue.pairs["pair_id"].iat[row] for row in queue.order[:5]]
    assert [card["pair_id"] for card in data["cards"]] == lowest and lowest[0] == "p04"
    assert data["cards"] == [queue.card(int(row)) for row in queue.order[:5]]  # what /api/queue gives the page
    shown = {card["image_id"] for card in data["cards"]} | {
        image["image_id"] for card in data["cards"] for image in card["suggested_images"]}
    assert any(card["suggested_images"] for card in data["cards"])  # the suggested images are in the gallery too
    assert sorted(data["images"]) == sorted(shown)  # each image once, as a data: URI
    assert html.count("data:image/jpeg;base64,") == len(shown) and "/api/" not in html
    assert all(uri.startswith("data:image/jpeg;base64,") for uri in data["images"].values())
    assert XSS not in html and "\\u003cimg src=x onerror=alert(1)\\u003e" in html
    assert data["cards"][0]["caption"] == XSS
    # no card is drawn in Python: the page's own renderer is inlined, allowed by hash alone
    assert '<article' not in html and CARDS_JS.read_text() in html
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]+'", html) and "unsafe-inline" not in html
    with pytest.raises(NctoolError, match="limit 0: too small"):
        write_gallery(data_path, scores_path, tmp_path / "g.html", detector="rrsitr", limit=0)
    with pytest.raises(NctoolError, match="is also an input"):
        write_gallery(data_path, scores_path, scores_path, detector="rrsitr")


# ---- the command line ----

def test_gallery_shows_the_decisions_of_the_store(tmp_path, files):
    data_path, scores_path = files
    with DecisionStore(default_decisions_path(scores_path), reviewer="ana") as store:
        store.record("p04", "drop")
    write_gallery(data_path, scores_path, tmp_path / "gallery.html", detector="rrsitr", limit=2)
    decision = gallery_data((tmp_path / "gallery.html").read_text())["cards"][0]["decision"]
    assert decision["action"] == "drop" and decision["reviewer"] == "ana"


def test_cli_maps_flags_to_the_library(monkeypatch):
    calls = {}
    monkeypatch.setattr(review_cli, "write_gallery", lambda *a, **k: calls.setdefault("gallery", (a, k)) and
                        {"pairs": 3, "out": a[2]})
    monkeypatch.setattr(review_cli, "export", lambda *a, **k: calls.setdefault("export", (a, k))[0][1])
    monkeypatch.setattr(review_cli, "findings", lambda *a, **k: calls.setdefault("findings", (a, k)) and
                        {"audit_text": "audit: 40.0 % noisy", "audit_labels_text": "audited labels: clean 1 of 20",
                         "agreement_text": "ana vs bo: kappa 0.50"})
    served_app = SimpleNamespace(state=SimpleNamespace(notes=[]))
    monkeypatch.setattr(review_cli, "review_app", lambda *a, **k: calls.setdefault("app", (a, k)) and served_app)
    monkeypatch.setattr(review_cli, "serve", lambda app, sock: calls.setdefault("serve", sock.getsockname()))
    result = invoke("review", "d.parquet", "--scores", "s.parquet", "--static", "g.html", "--limit", "3",
                    "--detector", "similarity", "--image-root", "imgs")
    assert result.exit_code == 0, result.output
    assert calls["gallery"][0] == (Path("d.parquet"), Path("s.parquet"), Path("g.html"))
    assert calls["gallery"][1]["limit"] == 3 and calls["gallery"][1]["detector"] == "similarity"
    assert str(calls["gallery"][1]["image_root"]) == "imgs"
    result = invoke("review", "d.parquet", "--scores", "s.parquet", "--export", "x.parquet", "--decisions", "m.sqlite")
    assert result.exit_code == 0 and str(calls["export"][0][1]) == "x.parquet"
    assert str(calls["export"][1]["decisions"]) == "m.sqlite"
    assert calls["findings"] == ((Path("d.parquet"), Path("s.parquet")), {"detector": "rrsitr",
                                                                         "decisions": Path("m.sqlite")})
    assert "audit: 40.0 % noisy\naudited labels: clean 1 of 20\nana vs bo: kappa 0.50\n" in result.output
    result = invoke("review", "d.parquet", "--scores", "s.parquet", "--port", "0", "--reviewer", "bo",
                    "--blind")
    assert result.exit_code == 0, result.output
    token = calls["app"][1].pop("token")
    assert calls["app"][1] == {"detector": "rrsitr", "decisions": None, "reviewer": "bo", "image_root": None,
                               "host": "127.0.0.1", "blind": True}
    host, port = calls["serve"]
    assert f"\nhttp://127.0.0.1:{port}/?token={token}\n" in result.output and "warning" not in result.output
    assert len(token) >= 40


def test_cli_warns_when_listening_beyond_this_machine(monkeypatch):
    monkeypatch.setattr(review_cli, "review_app", lambda *a, **k: SimpleNamespace(state=SimpleNamespace(notes=[])))
    monkeypatch.setattr(review_cli, "serve", lambda app, sock: None)
    result = invoke("review", "d.parquet", "--scores", "s.parquet", "--host", "0.0.0.0", "--port", "0")
    assert result.exit_code == 0 and "warning: listening on 0.0.0.0" in result.output


def test_cli_static_gallery_end_to_end(tmp_path, files):
    data_path, scores_path = files
    result = run_cli("review", data_path, "--scores", scores_path, "--static", tmp_path / "g.html", "--limit", "4")
    assert result.returncode == 0, result.stderr
    assert "gallery of 4 pairs" in result.stdout
    html = (tmp_path / "g.html").read_text()
    data = gallery_data(html)
    assert len(data["cards"]) == 4 and {card["image_id"] for card in data["cards"]} <= set(data["images"])
    assert html.count("data:image/jpeg;base64,") == len(data["images"])  # every image embedded once
    bad = run_cli("review", data_path, "--scores", tmp_path / "missing.parquet", "--static", tmp_path / "h.html")
    assert bad.returncode == 2 and "missing.parquet: file not found" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "h.html").exists()


# ---- orders, the learner, bulk actions, the audit and two reviewers ----

def test_each_order_holds_every_scored_pair(files, tmp_path):
    from nctool.curate.review.audit import audit_order
    from nctool.curate.review.queue import ORDERS

    queue = ReviewQueue.load(*files, detector="rrsitr")
    ids = queue.pairs["pair_id"].to_numpy()
    for order in ORDERS:
        assert sorted(queue.select(order=order).tolist()) == sorted(queue.order.tolist()), order
    assert queue.select(order="audit").tolist() == queue.order[audit_order(ids[queue.order])].tolist()
    categories = queue.pairs["category"].to_numpy()[queue.select(order="category")].tolist()
    assert categories == sorted(categories)
    beach = queue.select(order="category", category="beach")  # noisiest first within a class
    assert np.all(np.diff(queue.pairs["reliability"].to_numpy()[beach]) > 0)
    chance = 1 - queue.pairs["reliability"].to_numpy()  # review_scores states no noisy probability
    uncertain = queue.select(order="uncertain")
    assert np.all(np.diff(np.abs(chance[uncertain] - 0.5)) >= 0)
    with pytest.raises(NctoolError, match="order 'newest': unknown"):
        queue.select(order="newest")


def test_the_learned_order_follows_the_curator_after_enough_decisions(files, tmp_path):
    from nctool.curate.review.learning import fit_noise_model, noise_features

    queue = ReviewQueue.load(*files, detector="rrsitr")
    ids = queue.pairs["pair_id"].to_numpy()
    # the curator answers by a rule the detector does not know: noise is the airport scenes
    airport = queue.pairs["category"].to_numpy() == "airport"
    decided = queue.order[:9]
    with DecisionStore(tmp_path / "d.sqlite", reviewer="ana") as store:
        for row in decided:
            store.record(ids[row], "drop" if airport[row] else "keep")
        queue.sync(store)
        assert queue.summary()["learned"] == {"decisions": 0, "estimate": None}  # 9 < LEARN_EVERY
        assert queue.select(order="learned").tolist() == queue.order.tolist()  # the noisiest order until then
        row = queue.order[9]
        decided = queue.order[:10]
        store.record(ids[row], "drop" if airport[row] else "keep")
        queue.sync(store, [ids[row]])
    features = noise_features(queue.pairs.iloc[queue.order])
    place = {row: i for i, row in enumerate(queue.order)}
    expected = fit_noise_model(features, [place[r] for r in decided], airport[decided])
    assert expected is not None
    assert queue.select(order="learned").tolist() == queue.order[np.argsort(-expected, kind="stable")].tolist()
    learned = queue.summary()["learned"]
    undecided = np.ones(len(queue.order), dtype=bool)
    undecided[[place[r] for r in decided]] = False
    estimate = (airport[decided].sum() + expected[undecided].sum()) / len(queue.order)
    assert learned == {"decisions": 10, "estimate": pytest.approx(estimate)}


def test_a_rule_covers_the_undecided_pairs_of_the_filter_above_the_cut(files, tmp_path):
    queue = ReviewQueue.load(*files, detector="rrsitr")
    chance = 1 - queue.pairs["reliability"].to_numpy()
    first = queue.pairs["pair_id"].iat[queue.order[0]]
    decide(queue, tmp_path, first, "keep")
    rule = queue.rule(min_noisy_probability=0.7, category="beach")
    rows = [queue.row_of[pair_id] for pair_id in rule["pair_ids"]]
    expected = [row for row in queue.order if chance[row] >= 0.7 and queue.pairs["category"].iat[row] == "beach"
                and queue.pairs["pair_id"].iat[row] != first]
    assert rows == expected and rule["pairs"] == len(expected)
    assert rule["expected_noise"] == pytest.approx(chance[expected].mean())
    assert rule["rule"] == "undecided pairs with category=beach whose the detector's noisy probability is at least 0.7"
    with pytest.raises(NctoolError, match="outside \\[0, 1\\]"):
        queue.rule(min_noisy_probability=1.5)


def test_a_blind_review_shows_only_its_reviewer_and_agreement_shows_both(files, tmp_path):
    queue = ReviewQueue.load(*files, detector="rrsitr")
    blind = ReviewQueue.load(*files, detector="rrsitr", blind="bo")
    ids = queue.pairs["pair_id"].to_numpy()[queue.order]
    with DecisionStore(tmp_path / "d.sqlite", reviewer="ana") as store:
        for pair_id, ana, bo in zip(ids[:4], ["drop", "keep", "keep", "fix"], ["drop", "drop", "keep", "drop"]):
            store.record(pair_id, ana, new_caption="a harbour" if ana == "fix" else None)
            store.record(pair_id, bo, reviewer="bo")
        store.record(ids[4], "drop")  # ana alone
        queue.sync(store)
        blind.sync(store)
    assert blind.summary()["reviewed"] == 4 and blind.summary()["agreement"] is None
    assert {c["pair_id"]: c["decision"]["action"] for c in blind.page(state="dropped")["cards"]} == {
        ids[0]: "drop", ids[1]: "drop", ids[3]: "drop"}
    with pytest.raises(NctoolError, match="blind review"):
        blind.select(state="disagreed")
    assert queue.summary()["reviewed"] == 5  # everyone's: the newest decision of each pair (bo's on the first 4)
    assert queue.summary()["agreement"] == {"reviewers": ["ana", "bo"], "pairs": 4, "agree": 0.75,
                                            "kappa": pytest.approx(0.5), "disagree": 1}
    assert [c["pair_id"] for c in queue.page(state="disagreed")["cards"]] == [ids[1]]


def test_api_bulk_actions_rules_and_their_undo(client, files):
    pairs = client.get("/api/queue", params={"limit": 4}).json()["cards"]
    ids = [card["pair_id"] for card in pairs]
    body = client.post("/api/bulk", json={"action": "drop", "pair_ids": ids[:3]}).json()
    assert body["pair_ids"] == ids[:3] and {d["action"] for d in body["decisions"].values()} == {"drop"}
    assert body["batch"]["rule"] == "3 selected pairs" and body["summary"]["actions"]["drop"] == 3
    preview = client.get("/api/rule", params={"min_noisy_probability": 0.5, "label": "noisy"}).json()
    assert preview["pairs"] == client.get("/api/queue", params={"label": "noisy", "state": "undecided"}).json()[
        "total"] and "pair_ids" not in preview
    rule = {"label": "noisy", "min_noisy_probability": 0.5}
    stale = client.post("/api/bulk", json={"action": "drop", "rule": rule, "expect": preview["pairs"] + 1})
    assert stale.status_code == 409 and f"covers {preview['pairs']} pairs" in stale.json()["error"]
    applied = client.post("/api/bulk", json={"action": "drop", "rule": rule, "expect": preview["pairs"]}).json()
    assert len(applied["pair_ids"]) == preview["pairs"] and not set(applied["pair_ids"]) & set(ids[:3])
    undone = client.post("/api/undo", json={}).json()
    assert undone["pair_ids"] == applied["pair_ids"] and set(undone["decisions"].values()) == {None}
    undone = client.post("/api/undo", json={"pair_id": ids[1]}).json()
    assert undone["pair_ids"] == ids[:3] and client.get("/api/summary").json()["reviewed"] == 0
    for bad in [{"action": "drop", "pair_ids": []}, {"action": "drop", "pair_ids": "p04"},
                {"action": "drop", "rule": rule}, {"action": 3, "pair_ids": ids}]:
        assert client.post("/api/bulk", json=bad).status_code == 422, bad
    assert client.post("/api/bulk", json={"action": "fix", "pair_ids": ids[:1]}).status_code == 422
    assert client.post("/api/bulk", json={"action": "drop", "pair_ids": ["nope"]}).status_code == 404
    assert client.get("/api/rule", params={"min_noisy_probability": "lots"}).status_code == 400


def test_the_audited_labels_line_sets_each_check_beside_its_stated_rate():
    from nctool.curate.review.queue import audit_labels_text

    report = {"labels": {"clean": {"decided": 78, "noisy": 3, "estimate": 3 / 78, "low": 0.012, "high": 0.09},
                         "noisy": {"decided": 20, "noisy": 19, "estimate": 0.95, "low": 0.78, "high": 0.99}}}
    assert audit_labels_text(report, {"clean_contamination": 0.035, "noisy_precision": 0.96}) == (
        "audited labels: clean 3 of 78 are noise (3.8 %, 1.2-9.0; stated 3.5 %); noisy 19 of 20 are noise "
        "(95 %, 78-99; stated 96 %)")
    assert audit_labels_text({"labels": {}}, None) == audit_labels_text({}, None) == ""


def test_export_prints_the_audit_and_the_agreement(files, tmp_path):
    from nctool.curate.review.audit import MIN_AUDIT, audit_order, audit_share
    from nctool.curate.review.queue import audit_labels_text, audit_text
    from nctool.metrics import cohen_kappa

    data = review_data(images=20, captions=3)
    data_path, scores_path = write_table(data, tmp_path / "big.parquet"), tmp_path / "big-scores.parquet"
    scores = review_scores(data)  # with the detector's noisy probability: the audit states its assisted share too
    write_table(scores.assign(noisy_probability=1 - scores["reliability"]), scores_path)
    queue = ReviewQueue.load(data_path, scores_path, detector="rrsitr")
    audit = queue.order[audit_order(queue.pairs["pair_id"].to_numpy()[queue.order])]
    ids, noisy = queue.pairs["pair_id"].to_numpy()[audit], queue.pairs["noisy"].to_numpy()[audit]
    with DecisionStore(default_decisions_path(scores_path), reviewer="ana") as store:
        for pair_id, truth in zip(ids[:MIN_AUDIT], noisy[:MIN_AUDIT]):
            store.record(pair_id, "drop" if truth else "keep")
        store.record(ids[0], "keep" if noisy[0] else "drop", reviewer="bo")
        store.record(ids[1], "drop" if noisy[1] else "keep", reviewer="bo")
    result = run_cli("review", data_path, "--scores", scores_path, "--export", tmp_path / "out.parquet")
    # bo's decision on the first pair is its newest: the export (last write wins) and the audit follow it
    actions = ["keep" if noisy[0] else "drop"] + ["drop" if truth else "keep" for truth in noisy[1:MIN_AUDIT]]
    report = audit_share(actions + [None] * (len(ids) - MIN_AUDIT),
                         predicted=1 - queue.pairs["reliability"].to_numpy()[audit],
                         labels=queue.pairs["label"].to_numpy()[audit])
    low, high = 100 * report["low"], 100 * report["high"]
    assisted = report["assisted"]
    assert audit_text(report) == (
        f"audit: {100 * report['estimate']:.1f} % noisy ({low:.1f}-{high:.1f}, 90 %) from {MIN_AUDIT} decided in a "
        f"uniform sample; with the detector's scores {100 * assisted['estimate']:.1f} % ({100 * assisted['low']:.1f}-"
        f"{100 * assisted['high']:.1f})")
    assert audit_text(report) in result.stdout
    clean = report["labels"]["clean"]
    line = audit_labels_text(report, None)
    assert line.startswith(f"audited labels: clean {clean['noisy']} of {clean['decided']} are noise")
    assert line in result.stdout
    kappa = cohen_kappa(noisy[:2], [not noisy[0], noisy[1]])  # ana's and bo's judgements of the first two
    kappa = "undefined (one answer throughout)" if kappa is None else f"{kappa:.2f}"
    assert f"ana vs bo: Cohen's kappa {kappa}, agree on 50 % of 2 pairs, 1 disagree" in result.stdout


def test_a_sync_in_progress_never_shows_half_of_the_decisions(files, tmp_path, monkeypatch):
    import threading

    queue = ReviewQueue.load(*files, detector="rrsitr")
    with DecisionStore(tmp_path / "d.sqlite", reviewer="ana") as store:
        store.record("p04", "drop")
        queue.sync(store)
        store.record("p05", "keep")
        reached, go_on = threading.Event(), threading.Event()
        match = ReviewQueue._match

        def slow_match(self, decisions):  # the sync stops midway, its new state half built
            reached.set()
            go_on.wait(10)
            return match(self, decisions)

        monkeypatch.setattr(ReviewQueue, "_match", slow_match)
        sync = threading.Thread(target=queue.sync, args=(store,))
        sync.start()
        assert reached.wait(10)
        assert queue.decisions["p04"]["action"] == "drop" and queue.summary()["reviewed"] == 1  # the old state, whole
        go_on.set()
        sync.join()
    assert queue.summary()["reviewed"] == 2 and queue.decisions["p05"]["action"] == "keep"


def test_export_writes_the_decisions_even_when_the_audit_cannot_be_read(files, tmp_path):
    data_path, scores_path = files
    with DecisionStore(default_decisions_path(scores_path), reviewer="ana") as store:
        store.record("p04", "drop")
    result = invoke("review", data_path, "--scores", scores_path, "--detector", "neighbors", "--export",
                    tmp_path / "out.parquet")
    assert result.exit_code == 0 and read_decisions(tmp_path / "out.parquet")["pair_id"].tolist() == ["p04"]
    assert "note: no audit or agreement line:" in result.output and "neighbors" in result.output
