"""Review-page test data shared by the review, browser, durability and decisions tests: a small
dataset of generated images (one caption carries an XSS payload), its scores, and a client of the app."""

import io

import numpy as np
import pandas as pd
from PIL import Image
from starlette.testclient import TestClient

from nctool.schema import row_hashes, write_table

XSS = "<img src=x onerror=alert(1)>"
TOKEN = "a-test-token-of-the-review"
BASE_URL = "http://127.0.0.1:8765"  # what a browser sends as Host for the printed URL
CATEGORIES = ("airport", "beach")


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def review_data(images: int = 8, captions: int = 3) -> pd.DataFrame:
    """`images` images of `captions` captions each; the last image is in val (unscored); p4 carries XSS."""
    n = images * captions
    rows = []
    for i in range(n):
        image = i // captions
        rows.append({"pair_id": f"p{i:02d}", "image_id": f"img{image}",
                     "image": {"bytes": png((30 * image % 256, 90, 200 - 20 * image % 200)), "path": None},
                     "caption": XSS if i == 4 else f"caption {i} of a {CATEGORIES[image % 2]} scene",
                     "split": "val" if image == images - 1 else "train", "category": CATEGORIES[image % 2],
                     "noisy": i % 5 == 0})
    return pd.DataFrame(rows)


def reliabilities(n: int) -> np.ndarray:
    """Distinct reliabilities in a fixed shuffled order: p04 (the XSS caption) is the lowest."""
    order = np.random.default_rng(3).permutation(n)
    values = np.empty(n)
    values[order] = (np.arange(n) + 0.5) / n
    values[[4, int(np.argmin(values))]] = values[[int(np.argmin(values)), 4]]
    return values


def review_scores(data: pd.DataFrame) -> pd.DataFrame:
    """rrsitr (with suggestions for its noisy pairs) and similarity scores of the train pairs."""
    train = data[data["split"] == "train"].reset_index(drop=True)
    reliability = reliabilities(len(train))
    label = np.where(reliability < 0.3, "noisy", np.where(reliability < 0.6, "ambiguous", "clean"))
    flagged = label == "noisy"
    other = [train[train["image_id"] != image_id] for image_id in train["image_id"]]
    rrsitr = pd.DataFrame({
        "pair_id": train["pair_id"], "row_hash": row_hashes(train), "reliability": reliability, "label": label,
        "detector": "rrsitr", "loss": 30 * (1 - reliability), "loss_std": 0.5,
        "suggested_pair_ids": [o["pair_id"].iloc[:2].tolist() if f else None for o, f in zip(other, flagged)],
        "suggested_captions": [o["caption"].iloc[:2].tolist() if f else None for o, f in zip(other, flagged)],
        "suggested_caption_scores": [[0.9, 0.8] if f else None for f in flagged],
        "suggested_image_ids": [o["image_id"].unique()[:2].tolist() if f else None for o, f in zip(other, flagged)],
        "suggested_image_scores": [[0.7, 0.6] if f else None for f in flagged]})
    similarity = pd.DataFrame({"pair_id": train["pair_id"], "row_hash": row_hashes(train),
                               "reliability": reliability[::-1].copy(), "label": label[::-1].copy(),
                               "detector": "similarity", "similarity": 0.2})
    return pd.concat([rrsitr, similarity], ignore_index=True)


def write_review_files(folder, images: int = 8) -> tuple:
    """(data, scores) Parquet files in `folder`."""
    data = review_data(images)
    data_path, scores_path = folder / "data.parquet", folder / "scores.parquet"
    write_table(data, data_path)
    write_table(review_scores(data), scores_path)
    return data_path, scores_path


def review_client(app, **kwargs) -> TestClient:
    """A client of the review app as its own page is: Host 127.0.0.1:8765, the launch's token on every request."""
    return TestClient(app, base_url=BASE_URL, headers={"X-Nctool-Token": TOKEN}, **kwargs)
