"""How fast `nctool review` opens on a large dataset: index build and first page at N pairs.

Writes a synthetic dataset (N pairs, 5 captions per image, one small PNG shared by every row so no
time goes to making images) and an rrsitr scores file with 5 suggestions per flagged pair, then
times, in this process: building the app (reading both files, the queue index, opening the
decisions store), the first /api/queue page (resume=1, 25 cards), /api/summary, a filtered page
(label + caption search), the first thumbnail, then the grid's requests: a 60-tile page, one in the
audit order, two bulk actions of 30 pairs (the learner fits), a page in the learned order, a rule's
preview, the undo of a bulk action and the summary with decisions.

    .venv/bin/python benchmarks/review_speed.py --pairs 100000 --out /tmp/review-speed
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from starlette.testclient import TestClient

from nctool.curate.review.server import review_app
from nctool.schema import row_hashes, write_table

WORDS = "runway plane road river house tree beach parking car bridge field storage tank church".split()


def write_files(out: Path, pairs: int, seed: int = 0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (90, 140, 60)).save(buffer, format="PNG")
    image_ids = np.array([f"img/{i // 5:06d}" for i in range(pairs)], dtype=object)
    captions = [" ".join(rng.choice(WORDS, 8)) + f" {i}" for i in range(pairs)]
    data = pd.DataFrame({"pair_id": [f"pair/{i:07d}" for i in range(pairs)], "image_id": image_ids,
                         "image": [{"bytes": buffer.getvalue(), "path": None}] * pairs, "caption": captions,
                         "split": "train", "category": rng.choice(["airport", "beach", "farmland", "river"], pairs),
                         "noisy": rng.random(pairs) < 0.2})
    reliability = np.clip(rng.normal(0.6, 0.25, pairs), 0, 1)
    label = np.where(reliability < 0.3, "noisy", np.where(reliability < 0.55, "ambiguous", "clean"))
    flagged = label == "noisy"
    pick = rng.integers(0, pairs, (pairs, 5))
    scores = pd.DataFrame({
        "pair_id": data["pair_id"], "row_hash": row_hashes(data), "reliability": reliability, "label": label,
        "detector": "rrsitr", "loss": 30 * (1 - reliability), "loss_std": 0.5,
        "suggested_pair_ids": [data["pair_id"].to_numpy()[p].tolist() if f else None for p, f in zip(pick, flagged)],
        "suggested_captions": [[captions[j] for j in p] if f else None for p, f in zip(pick, flagged)],
        "suggested_caption_scores": [[0.5, 0.4, 0.3, 0.2, 0.1] if f else None for f in flagged],
        "suggested_image_ids": [image_ids[p].tolist() if f else None for p, f in zip(pick, flagged)],
        "suggested_image_scores": [[0.5, 0.4, 0.3, 0.2, 0.1] if f else None for f in flagged]})
    out.mkdir(parents=True, exist_ok=True)
    return write_table(data, out / "data.parquet"), write_table(scores, out / "scores.parquet")


def timed(what: str, call, rows: list, repeat: int = 1) -> object:
    """Run `call` `repeat` times (a read: the same answer each time) and note the median seconds."""
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = call()
        seconds.append(time.perf_counter() - start)
    rows.append((what + (f" (median of {repeat})" if repeat > 1 else ""), float(np.median(seconds))))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--out", type=Path, required=True, help="folder for the generated files")
    args = parser.parse_args()
    data_path, scores_path = write_files(args.out, args.pairs)
    (args.out / "scores.decisions.sqlite").unlink(missing_ok=True)
    rows: list = []
    app = timed("build the app (read files, queue index, decisions store)",
                lambda: review_app(data_path, scores_path, token="t", reviewer="ana"), rows)
    # as the page itself sends requests: its Host, the token, same-origin JSON writes
    with TestClient(app, base_url="http://127.0.0.1:8765", headers={"X-Nctool-Token": "t"}) as client:
        page = timed("first page: GET /api/queue?resume=1&limit=25",
                     lambda: client.get("/api/queue", params={"resume": 1, "limit": 25}).json(), rows)
        timed("GET /api/summary", lambda: client.get("/api/summary").json(), rows)
        timed("filtered page: label=noisy, q=bridge", lambda: client.get(
            "/api/queue", params={"label": "noisy", "q": "bridge", "limit": 25}).json(), rows)
        timed("first thumbnail: GET /api/image/{pair_id}",
              lambda: client.get("/api/image/" + page["cards"][0]["pair_id"]).content, rows)
        time.sleep(3)  # a person reads the first page; meanwhile the server imports scikit-learn (learning.warm_up)
        grid = timed("grid page: GET /api/queue?resume=1&limit=60",
                     lambda: client.get("/api/queue", params={"resume": 1, "limit": 60}).json(), rows, repeat=5)
        timed("audit-order grid page: order=audit, limit=60",
              lambda: client.get("/api/queue", params={"order": "audit", "limit": 60}).json(), rows, repeat=5)
        write = {"Origin": "http://127.0.0.1:8765", "Sec-Fetch-Site": "same-origin"}
        ids = [card["pair_id"] for card in grid["cards"]]
        for action, chosen in (("keep", ids[:30]), ("drop", ids[30:])):
            timed(f"bulk {action} of 30 selected pairs: POST /api/bulk (the learner refits)", lambda: client.post(
                "/api/bulk", json={"action": action, "pair_ids": chosen}, headers=write).json(), rows)
        timed("learned-order grid page: order=learned, limit=60",
              lambda: client.get("/api/queue", params={"order": "learned", "limit": 60}).json(), rows, repeat=5)
        timed("rule preview: GET /api/rule?min_noisy_probability=0.9",
              lambda: client.get("/api/rule", params={"min_noisy_probability": 0.9}).json(), rows, repeat=5)
        timed("undo the last bulk action: POST /api/undo",
              lambda: client.post("/api/undo", json={}, headers=write).json(), rows)
        timed("GET /api/summary with decisions (audit, learner, agreement)",
              lambda: client.get("/api/summary").json(), rows, repeat=5)
    print(f"{args.pairs:,} pairs, {page['total']:,} in the queue\n\n| step | seconds |\n|---|---|")
    for what, seconds in rows:
        print(f"| {what} | {seconds:.3f} |")
    print(f"| **first page shown (build + first page)** | **{rows[0][1] + rows[1][1]:.3f}** |")


if __name__ == "__main__":
    main()
