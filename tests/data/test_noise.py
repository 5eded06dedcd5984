"""nctool.data.noise and `nctool inject`: realised rates, ground truth, reproducibility, errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_helpers import invoke, run_cli

import nctool.cli.inject
from nctool.data.noise import (
    KINDS,
    NOISE_COLUMNS,
    RRSITR_RATES,
    NoisedFile,
    _shuffle,
    inject,
    inject_files,
    inject_many,
    noised_name,
)
from nctool.errors import NctoolError
from nctool.schema import image_root, read_table, write_table

CATEGORIES = ("airport", "beach", "forest", "harbor")


def table(train: int = 200, val: int = 20, test: int = 20, captions: int = 5) -> pd.DataFrame:
    """A dataset in nctool's schema; splits interleaved (as files may be), image i in CATEGORIES[i % 4]."""
    splits = ["train"] * train + ["val"] * val + ["test"] * test
    order = np.random.default_rng(0).permutation(len(splits))
    rows = []
    for i in order:
        for j in range(captions):
            rows.append({"pair_id": f"syn/{i:04d}#{j}", "image_id": f"syn/{i:04d}",
                         "image": {"bytes": None, "path": f"{i:04d}.png"}, "caption": f"image {i} caption {j}",
                         "split": splits[i], "category": CATEGORIES[i % len(CATEGORIES)], "extra": i * 10 + j})
    return pd.DataFrame(rows)


def check_ground_truth(clean: pd.DataFrame, noised: pd.DataFrame) -> None:
    """Recompute every noise column from the clean table and the recorded caption_source."""
    by_pair = clean.set_index("pair_id")
    source = by_pair.loc[noised["caption_source"]]
    assert sorted(noised["caption_source"]) == sorted(clean["pair_id"])  # a permutation: nothing lost
    assert list(noised["caption"]) == list(source["caption"])
    assert list(noised["noisy"]) == list(source["image_id"].to_numpy() != noised["image_id"].to_numpy())
    for col in clean.columns.drop("caption"):
        assert noised[col].tolist() == clean[col].tolist(), col


def train_share(stats) -> float:
    return next(s for s in stats if s.split == "train").noisy_share


@pytest.mark.parametrize("kind", KINDS)
def test_ground_truth_and_untouched_splits(kind):
    clean = table()
    rates = [0.2, 0.8] if kind == "rrsitr" else [0.0, 0.2, 0.8]
    for rate, noised, stats in inject_many(clean, rates, kind, seed=7):
        check_ground_truth(clean, noised)
        assert (noised["noise_kind"] == kind).all()
        train = noised["split"] == "train"
        assert (noised.loc[train, "noise_rate"] == rate).all()
        rest = noised[~train]
        assert not rest["noisy"].any() and (rest["caption_source"] == rest["pair_id"]).all()
        assert (rest["noise_rate"] == 0).all()
        assert {s.split: (s.rows, s.noisy) for s in stats} == {
            split: (len(g), int(g["noisy"].sum())) for split, g in noised.groupby("split")}


@pytest.mark.parametrize("rate", [0.2, 0.4, 0.6, 0.8])
def test_caption_shuffle_realised_rate_slightly_below(rate):
    noised, stats = inject(table(), rate, "caption-shuffle", seed=1)
    train = noised[noised["split"] == "train"]
    assert (train["caption_source"] != train["pair_id"]).sum() <= round(rate * len(train))
    assert rate - 0.03 <= train_share(stats) <= rate


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_image_shuffle_moves_whole_images(rate):
    clean = table()
    clean = clean[~((clean["image_id"].str[-1] == "3") & clean["pair_id"].str.endswith("#4"))]  # some have 4
    noised, stats = inject(clean, rate, "image-shuffle", seed=3)
    train = noised[noised["split"] == "train"]
    rows_of = {img: list(g["pair_id"]) for img, g in clean.groupby("image_id", sort=False)}
    givers = {}
    for img, g in train.groupby("image_id", sort=False):
        giver = g["caption_source"].str.split("#").str[0].unique()
        assert len(giver) == 1  # all captions of one image
        assert list(g["caption_source"]) == rows_of[giver[0]]  # all of them, in order
        assert list(g["noisy"]) == [giver[0] != img] * len(g)
        givers[img] = giver[0]
    assert sorted(givers.values()) == sorted(givers)  # images were permuted
    moved = [img for img, giver in givers.items() if giver != img]
    n_images = len(givers)
    assert len(moved) <= round(rate * n_images)
    assert rate - 0.05 <= train_share(stats) <= rate + 0.01


@pytest.mark.parametrize("rate", [0.2, 0.4, 0.6, 0.8])
def test_category_mixes_only_within_category_and_never_own_image(rate):
    clean = table()
    noised, stats = inject(clean, rate, "category", seed=5)
    category_of = clean.set_index("pair_id")["category"]
    assert (category_of.loc[noised["caption_source"]].to_numpy() == noised["category"].to_numpy()).all()
    moved = noised["caption_source"] != noised["pair_id"]
    assert (noised.loc[moved, "noisy"]).all()  # categories are large: no own-image caption comes back
    assert train_share(stats) == round(rate * 1000) / 1000


def test_category_skips_rows_without_a_usable_category():
    clean = table()
    clean.loc[clean["image_id"] < "syn/0050", "category"] = None
    clean.loc[clean["image_id"] == "syn/0050", "category"] = "lonely"  # the only image of its category
    noised, _ = inject(clean, 0.6, "category", seed=2)
    unusable = clean["category"].isna() | (clean["category"] == "lonely")
    assert (noised.loc[unusable.to_numpy(), "caption_source"] == noised.loc[unusable.to_numpy(), "pair_id"]).all()
    check_ground_truth(clean, noised)


def test_shuffle_with_owners_leaves_only_the_unavoidable_clean():
    rng = np.random.default_rng(0)
    for owners in ([0, 0, 1, 1, 2], [0, 0, 0, 1, 2], [0, 0, 0, 0, 1, 2], [0, 0, 0, 0, 0, 1], [3, 3]):
        owners = np.array(owners)
        items = np.arange(len(owners))
        out = _shuffle(rng, items, groups=np.zeros(len(items)), owners=owners)
        assert sorted(out) == list(items)
        m = np.bincount(owners).max()
        assert (owners[out] == owners).sum() == max(0, 2 * m - len(owners))


def reference_rrsitr(captions: np.ndarray, seed: int = 42) -> dict[float, np.ndarray]:
    """The benchmark's loop, written out straightforwardly."""
    np.random.seed(seed)
    noisy = {}
    for ratio in [0.2, 0.4, 0.6, 0.8]:
        out = captions.copy()
        idx = np.random.choice(len(out), int(len(out) * ratio), replace=False)
        caps = out[idx].copy()
        np.random.shuffle(caps)
        out[idx] = caps
        noisy[ratio] = out
    return noisy


@pytest.mark.parametrize("n_images", [50, 47])
def test_rrsitr_reproduces_the_benchmark_exactly(n_images):
    clean = table(train=n_images, val=4, test=4)
    train_captions = clean.loc[clean["split"] == "train", "caption"].to_numpy()
    expected = reference_rrsitr(train_captions)
    results = inject_many(clean, list(RRSITR_RATES), "rrsitr")
    for rate, noised, _ in results:
        got = noised.loc[noised["split"] == "train", "caption"].to_numpy()
        assert [c.encode() for c in got] == [c.encode() for c in expected[rate]]
    alone, _ = inject(clean, 0.4, "rrsitr")  # the 0.2 draw is still consumed first
    assert alone.equals(results[1][1])


@pytest.mark.parametrize("kind", KINDS)
def test_deterministic_by_seed(kind):
    clean = table()
    a, _ = inject(clean, 0.4, kind, seed=11)
    b, _ = inject(clean, 0.4, kind, seed=11)
    c, _ = inject(clean, 0.4, kind, seed=12)
    assert a.equals(b)
    assert not a["caption"].equals(c["caption"])


def test_several_splits_can_be_noised():
    noised, stats = inject(table(), 0.4, "caption-shuffle", splits=["train", "val"])
    assert {s.split: s.rate for s in stats} == {"train": 0.4, "val": 0.4, "test": 0.0}
    assert noised.loc[noised["split"] == "val", "noisy"].any()
    assert not noised.loc[noised["split"] == "test", "noisy"].any()


@pytest.mark.parametrize("change, args, message", [
    (None, dict(rates=[1.0]), "rate 1: outside [0, 1)"),
    (None, dict(rates=[0.2, -0.1]), "rate -0.1: outside [0, 1)"),
    (None, dict(rates=[]), "rates: none given"),
    (None, dict(kind="swap"), "kind 'swap': unknown noise kind"),
    (None, dict(kind="rrsitr", rates=[0.3]), "rate 0.3: the rrsitr benchmark has only rates"),
    (None, dict(seed=-1), "seed -1"),
    (None, dict(splits=["dev"]), "split 'dev': unknown; choose from train, val, test"),
    (None, dict(splits=[]), "split: none given; name at least one of train, val, test"),
    ("noised", {}, "already noised"),
    ("no category", dict(kind="category"), "no 'category' column"),
    ("null category", dict(kind="category"), "column 'category' is empty"),
    ("few categories", dict(kind="category", rates=[0.8]), "rate 0.8 needs 800 rows but only 500 of 1000"),
    ("one val row", dict(splits=["val"]), "split 'val': 1 rows, too few"),
    ("one val image", dict(splits=["val"], kind="image-shuffle"), "split 'val': 1 images, too few"),
])
def test_errors(change, args, message):
    df = table()
    if change == "noised":
        df = inject(df, 0.2, "caption-shuffle")[0]
    elif change == "no category":
        df = df.drop(columns="category")
    elif change == "null category":
        df["category"] = None
    elif change == "few categories":
        df.loc[df["image_id"] < "syn/0100", "category"] = None
    elif change == "one val row":
        df = df[(df["split"] != "val") | (df["pair_id"] == df.loc[df["split"] == "val", "pair_id"].iloc[0])]
    elif change == "one val image":
        df = df[(df["split"] != "val") | (df["image_id"] == df.loc[df["split"] == "val", "image_id"].iloc[0])]
    call = {"rates": [0.2], "kind": "caption-shuffle", "seed": 42, "splits": ["train"], **args}
    with pytest.raises(NctoolError, match=re.escape(message)):
        inject_many(df, **call)


def test_file_names_keep_the_exact_rate_and_the_seed():
    rates = [0.0, 0.001, 0.2, 0.201, 0.204, 0.2000001, 0.995, 0.999]
    names = [noised_name("syn", "caption-shuffle", rate, 42) for rate in rates]
    assert len(set(names)) == len(rates)
    assert names[:3] == ["syn.caption-shuffle-0.0-s42.parquet", "syn.caption-shuffle-0.001-s42.parquet",
                         "syn.caption-shuffle-0.2-s42.parquet"]
    assert names[-1] == "syn.caption-shuffle-0.999-s42.parquet"
    assert noised_name("syn", "rrsitr", np.float64(0.4), 7) == "syn.rrsitr-0.4-s7.parquet"
    assert noised_name("syn", "rrsitr", 0.4, 7) != noised_name("syn", "rrsitr", 0.4, 8)


def test_inject_files_writes_one_file_per_rate_and_replaces_nothing_unasked(tmp_path):
    data = tmp_path / "data" / "syn.parquet"
    write_table(table(), data, image_root=tmp_path / "images")
    out = tmp_path / "noised"
    seen = []
    files = inject_files(data, out=out, rates=[0.001, 0.0], kind="caption-shuffle", seed=3,
                         progress=lambda done, total, what: seen.append((done, total, what)))
    assert [(f.path.name, f.rate) for f in files] == [("syn.caption-shuffle-0.001-s3.parquet", 0.001),
                                                      ("syn.caption-shuffle-0.0-s3.parquet", 0.0)]
    assert sorted(p.name for p in out.iterdir()) == sorted(f.path.name for f in files)
    assert seen[-1] == (2, 2, "writing")
    for f in files:
        expected, stats = inject(table(), f.rate, "caption-shuffle", seed=3)
        assert read_table(f.path).equals(read_table(write_table(expected, tmp_path / "expected.parquet")))
        assert f.stats == stats
        assert image_root(f.path) == (tmp_path / "images").resolve()  # relative paths still resolve
    before = {f.path: f.path.read_bytes() for f in files}
    with pytest.raises(NctoolError, match=r"syn\.caption-shuffle-0\.001-s3\.parquet: already exists; "
                                          r"pass --overwrite"):
        inject_files(data, out=out, rates=[0.001], kind="caption-shuffle", seed=3)
    assert {f.path: f.path.read_bytes() for f in files} == before
    # another seed is another file; --overwrite replaces
    inject_files(data, out=out, rates=[0.001], kind="caption-shuffle", seed=4)
    assert len(list(out.iterdir())) == 3
    files[0].path.write_bytes(b"stale")
    inject_files(data, out=out, rates=[0.001], kind="caption-shuffle", seed=3, overwrite=True)
    assert files[0].path.read_bytes() == before[files[0].path]


@pytest.mark.parametrize("case, message", [
    ("bad rate", "rate 1.5: outside [0, 1)"),
    ("out is a file", "is a file, not a folder"),
    ("rate twice", "--rate 0.2 0.2: a rate is given twice"),
    ("output is the input", "is also an input of this command and would be replaced"),
])
def test_inject_files_errors_write_nothing(tmp_path, case, message):
    data = tmp_path / "syn.parquet"
    write_table(table(), data)
    out = tmp_path / "noised"
    rates = {"bad rate": [0.2, 1.5], "rate twice": [0.2, 0.2]}.get(case, [0.2])
    if case == "out is a file":
        out.write_text("not a folder")
    if case == "output is the input":  # the output name is a link to the input
        out.mkdir()
        (out / noised_name("syn", "caption-shuffle", 0.2, 42)).symlink_to(data)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(NctoolError, match=re.escape(message)):
        inject_files(data, out=out, rates=rates, kind="caption-shuffle", overwrite=True)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_cli_flags_reach_the_library(monkeypatch, tmp_path):
    calls = []
    stats = inject(table(), 0.2, "caption-shuffle")[1]
    monkeypatch.setattr(nctool.cli.inject, "inject_files", lambda *args, **kwargs: calls.append((args, kwargs))
                        or [NoisedFile(Path("o/x.parquet"), 0.2, stats)])
    result = invoke("inject", "d.parquet", "--rate", "0.2", "--rate", "0.001", "--kind", "image-shuffle", "--seed",
                    "3", "--split", "train", "--split", "val", "--out", "o", "--overwrite")
    assert result.exit_code == 0, result.output
    [(args, kwargs)] = calls
    assert callable(kwargs.pop("progress"))
    assert args == (Path("d.parquet"),)
    assert kwargs == dict(out=Path("o"), rates=[0.2, 0.001], kind="image-shuffle", seed=3, splits=["train", "val"],
                          overwrite=True)
    assert type(kwargs["kind"]) is str
    calls.clear()
    assert invoke("inject", "d.parquet", "--rate", "0.2", "--kind", "rrsitr", "--out", "o").exit_code == 0
    [(_, kwargs)] = calls
    assert (kwargs["seed"], kwargs["splits"], kwargs["overwrite"]) == (42, ["train"], False)
    # the choices are the library's own list
    assert invoke("inject", "d.parquet", "--rate", "0.2", "--kind", "swap", "--out", "o").exit_code == 2
    help_text = invoke("inject", "--help").output
    assert all(kind in help_text for kind in KINDS)


def test_cli_end_to_end(tmp_path):
    data = tmp_path / "data" / "syn.parquet"
    write_table(table(), data)
    out = tmp_path / "noised"
    res = run_cli("inject", data, "--rate", "0.2", "--rate", "0.4", "--kind", "image-shuffle", "--seed", "3",
                  "--out", out)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["syn.image-shuffle-0.2-s3.parquet",
                                                     "syn.image-shuffle-0.4-s3.parquet"]
    assert "syn.image-shuffle-0.4-s3.parquet" in res.stdout and "noisy share" in res.stdout
    noised = read_table(out / "syn.image-shuffle-0.4-s3.parquet")
    expected, _ = inject(table(), 0.4, "image-shuffle", seed=3)
    assert noised[list(NOISE_COLUMNS) + ["caption"]].equals(expected[list(NOISE_COLUMNS) + ["caption"]])
    assert image_root(out / "syn.image-shuffle-0.4-s3.parquet") == data.parent.resolve()
