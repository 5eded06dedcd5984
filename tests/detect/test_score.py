import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from cli_helpers import interrupted, invoke, run_cli
from scipy.stats import spearmanr

import nctool.detect.measure
import nctool.detect.score
import nctool.model.clip
from nctool.cli import main
from nctool.config import load_recipe
from nctool.curate.filtering import filter_file
from nctool.curate.review.queue import stated_noise
from nctool.data import noise, synth
from nctool.detect.detectors import detector_names, detector_options
from nctool.detect.measure import (
    ModelSource,
    PoolSpec,
    ReferencePool,
    read_index,
    reference_batches,
    reference_losses,
    reference_orders,
)
from nctool.detect.score import score
from nctool.detect.shards import embed
from nctool.detect.suggest import SUGGESTION_COLUMNS
from nctool.errors import NctoolError
from nctool.metrics import detection_metrics
from nctool.model import losses
from nctool.model.batches import PairData, encode_dataset
from nctool.model.checkpoint import read_checkpoint, save_checkpoint
from nctool.model.clip import LocalGrams, create_model, load_trained_model
from nctool.model.objectives import batch_logits
from nctool.model.train import image_folds
from nctool.model.transforms import preprocess_for
from nctool.schema import LABELS, noise_statements, pair_hashes, pair_id_hashes, row_hashes, write_table

BATCH = 20


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny noised dataset (30 images, 120 train rows) and a random nctool-tiny checkpoint (batch 20)."""
    folder = tmp_path_factory.mktemp("scoring")
    clean = synth.generate(30, size=32)
    df, _ = noise.inject(clean, 0.4, "caption-shuffle", seed=1)
    write_table(df, folder / "data.parquet")
    write_table(noise.inject(clean, 0.2, "caption-shuffle", seed=1)[0], folder / "data20.parquet")
    torch.manual_seed(0)
    recipe = load_recipe("demo", [f"train.batch_size={BATCH}", "loss.use_local=true", "loss.g1=5.0", "loss.g2=18.0",
                                  "loss.reference_batch=100"])
    save_checkpoint({"model": create_model("nctool-tiny").state_dict(), "config": recipe.to_dict()},
                    folder / "model.pt")
    return folder, df


def run_score(folder, name, data="data.parquet", seed=0, repeats=3, pool_size=60, **options):
    options = {"detectors": ["all"], "batch_size": 16, **options}
    summary = score(folder / data, model=ModelSource(checkpoint=folder / "model.pt"), out=folder / name,
                    pool=PoolSpec(seed, repeats, pool_size), **options)
    return summary, pd.read_parquet(folder / name)


@pytest.mark.parametrize("use_local", [True, False])
def test_reference_loss_is_the_training_loss_of_the_explicit_batch(files, use_local):
    folder, df = files
    model, recipe, _ = load_trained_model(folder / "model.pt")
    loss_cfg = dataclasses.replace(recipe.loss, use_local=use_local)
    data = PairData(df, folder, preprocess_for(model))
    pool = encode_dataset(model, data, torch.arange(40))
    rows = encode_dataset(model, data, torch.arange(30, 60))  # rows 30..39 are also in the pool
    own = np.where(np.arange(30, 60) < 40, np.arange(30, 60), -1)
    batches = reference_batches(np.arange(30, dtype=np.uint64), own, reference_orders(0, 40, 3), BATCH - 1)
    got = reference_losses(rows, pool, batches, loss_cfg)
    assert got.shape == (30, 3)

    def pick(emb, rows):
        image = emb.caption_image_index[rows]
        return emb.image_global[image], emb.image_local[image], emb.text_global[rows], emb.text_local[rows]

    for i in range(30):
        assert not (batches[i] == own[i]).any()
        for k in range(3):
            parts = zip(pick(rows, [i]), pick(pool, batches[i, k]))
            image_global, image_local, text_global, text_local = (torch.cat(pair) for pair in parts)
            global_sim, local = batch_logits(image_global, image_local, text_global, text_local, loss_cfg)
            expected = losses.per_pair_loss(loss_cfg.logit_scale * global_sim, local)[0]  # as the objectives do
            torch.testing.assert_close(got[i, k], expected, rtol=1e-5, atol=1e-5)


def test_cached_pool_grams_give_exactly_the_uncached_losses(files, monkeypatch):
    folder, df = files
    model, recipe, _ = load_trained_model(folder / "model.pt")
    assert recipe.loss.use_local
    monkeypatch.setattr(nctool.model.clip, "GRAM_BUDGET_BYTES", 3 * 4 * 128 * 128)  # several chunks on each side
    data = PairData(df, folder, preprocess_for(model))
    pool_ids, ids = df["pair_id"].iloc[:40].tolist(), df["pair_id"].iloc[30:60].tolist()
    with torch.inference_mode():
        pool_emb = encode_dataset(model, data, torch.arange(40), local=True)
        rows = encode_dataset(model, data, torch.arange(30, 60), local=True)
        options = {"loss_cfg": recipe.loss, "batch_size": BATCH, "repeats": 3, "seed": 0}
        cached = ReferencePool(pool_emb, pool_ids, **options)
        assert all(isinstance(getattr(cached.embeddings, k), LocalGrams) for k in ("image_local", "text_local"))
        monkeypatch.setattr(nctool.detect.measure, "POOL_GRAM_BUDGET_BYTES", 0)  # too small: no cache
        uncached = ReferencePool(pool_emb, pool_ids, **options)
        assert isinstance(uncached.embeddings.text_local, torch.Tensor)
        assert torch.equal(cached.losses(rows, ids), uncached.losses(rows, ids))


def test_pool_pairs_are_measured_from_the_pool_as_streamed_pairs_would_be(files):
    folder, df = files
    model, recipe, _ = load_trained_model(folder / "model.pt")
    data = PairData(df, folder, preprocess_for(model))
    pool_ids = df["pair_id"].iloc[:40].tolist()
    with torch.inference_mode():
        pool = ReferencePool(encode_dataset(model, data, torch.arange(40)), pool_ids, loss_cfg=recipe.loss,
                             batch_size=BATCH, repeats=3, seed=0)
        rows = encode_dataset(model, data, torch.arange(10, 30))  # pool pairs 10..29, embedded apart
        loss = pool.losses(rows, pool_ids[10:30])
    torch.testing.assert_close(pool.members["loss"][10:30], loss.mean(1))
    torch.testing.assert_close(pool.members["loss_std"][10:30], loss.std(1, correction=0))
    image = rows.image_global[rows.caption_image_index]
    torch.testing.assert_close(pool.members["similarity"][10:30], (image * rows.text_global).sum(-1))
    torch.testing.assert_close(pool.members["text_global"][10:30], rows.text_global)


def test_score_embeds_every_pair_and_every_image_once(files, monkeypatch):
    folder, df = files
    embedded, images = [], []

    def counting(model, data, rows=None, **options):
        embedded.append(len(data) if rows is None else len(rows))
        return encode_dataset(model, data, rows, **options)

    encode_image = nctool.model.clip.RetrievalModel.encode_image
    monkeypatch.setattr(nctool.detect.measure, "encode_dataset", counting)
    monkeypatch.setattr(nctool.model.clip.RetrievalModel, "encode_image",
                        lambda self, pixels, local=True: (images.append(len(pixels))
                                                          or encode_image(self, pixels, local)))
    run_score(folder, "once.parquet", detectors=["rrsitr"], pool_size=50)
    assert embedded[0] == 50 and sum(embedded) == 120  # the pool first, then the other 70 pairs
    assert sum(images) == df.loc[df["split"] == "train", "image_id"].nunique()


def test_known_images_are_taken_not_encoded(files):
    folder, df = files
    model, _, _ = load_trained_model(folder / "model.pt")
    data = PairData(df, folder, preprocess_for(model))
    first = encode_dataset(model, data, torch.arange(0, 40))
    both = encode_dataset(model, data, torch.arange(20, 80))
    known = dataclasses.replace(first, image_global=first.image_global + 1, image_local=first.image_local + 1)  # marked
    got = encode_dataset(model, data, torch.arange(20, 80), known=known)
    for name in ("image_global", "image_local"):
        for i, image_id in enumerate(got.image_ids):
            if image_id in first.image_ids:
                assert torch.equal(getattr(got, name)[i], getattr(known, name)[first.image_ids.index(image_id)])
            else:
                torch.testing.assert_close(getattr(got, name)[i], getattr(both, name)[i])
    assert set(got.image_ids) - set(first.image_ids) and set(got.image_ids) & set(first.image_ids)
    assert torch.equal(got.text_global, both.text_global)


def test_reference_batches_depend_only_on_the_pair():
    hashes = pair_hashes(["a#0", "b#1", "c#2"], seed=0)
    orders = reference_orders(0, pool_size=10, repeats=4)
    assert sorted(orders[1].tolist()) == list(range(10)) and not np.array_equal(orders[0], orders[1])
    batches = reference_batches(hashes, np.array([2, -1, 0]), orders, size=9)
    assert batches.shape == (3, 4, 9)
    assert all(len(set(b.tolist())) == 9 for b in batches.flatten(0, 1))
    assert not (batches[0] == 2).any() and not (batches[2] == 0).any()
    again = reference_batches(hashes[::-1].copy(), np.array([0, -1, 2]), orders, size=9)
    assert torch.equal(again.flip(0), batches)
    assert not np.array_equal(pair_hashes(["a#0"], 0), pair_hashes(["a#0"], 1))


def test_a_reference_batch_is_a_run_of_its_order_that_steps_over_the_pair():
    orders = np.array([[4, 1, 3, 0, 2], [0, 1, 2, 3, 4]])
    hashes = pair_hashes([f"p{i}" for i in range(200)], seed=0)
    own = np.arange(200) % 6 - 1  # -1 (not in the pool) and each pool position
    batches = reference_batches(hashes, own, orders, size=3).numpy()
    starts = set()
    for i in range(200):
        for r in range(2):
            # the run of 4 from the batch's first member, less the pair's own position when it lies in that run
            first = int(np.flatnonzero(orders[r] == batches[i, r, 0])[0])
            run = [orders[r][(first + k) % 5] for k in range(4)]
            expected = [p for p in run if p != own[i]][:3]
            assert batches[i, r].tolist() == expected
            starts.add((r, first))
    assert len(starts) == 10  # every start of both orders is drawn


def test_scores_do_not_depend_on_row_order(files):
    folder, df = files
    write_table(df.sample(frac=1, random_state=3), folder / "shuffled.parquet")
    summary, first = run_score(folder, "ordered.parquet", options={"neighbors": 3})
    _, second = run_score(folder, "shuffled_scores.parquet", data="shuffled.parquet", options={"neighbors": 3})
    assert summary["pairs"] == 120 and len(first) == len(detector_names()) * 120
    assert first["detector"].unique().tolist() == list(detector_names())
    assert list(first.columns[:5]) == ["pair_id", "row_hash", "reliability", "label", "detector"]
    # each score names the row it judged: the hash of that pair's image_id and caption
    expected = dict(zip(df["pair_id"], row_hashes(df)))
    assert (first["row_hash"] == first["pair_id"].map(expected)).all()
    joined = first.merge(second, on=["pair_id", "detector"])
    assert len(joined) == len(first)
    # equal up to float32 rounding: a pair's embedding can differ in the last bits with its batch's composition
    np.testing.assert_allclose(joined["reliability_x"], joined["reliability_y"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(joined["loss_x"], joined["loss_y"], rtol=1e-4, equal_nan=True)
    assert (joined["label_x"] == joined["label_y"]).all()


def test_rrsitr_is_stable_across_seeds_and_the_summary_measures_the_file(files):
    folder, df = files
    _, seed0 = run_score(folder, "seed0.parquet", detectors=["rrsitr"], repeats=5, pool_size=1000)
    summary, seed1 = run_score(folder, "seed1.parquet", detectors=["rrsitr"], repeats=5, pool_size=1000, seed=1,
                               options={"training_split": True})
    assert spearmanr(seed0["loss"], seed1["loss"]).statistic > 0.95
    # 120 train rows < 1000: the pool is every row; with the training split, thresholds follow batch 20 (four terms)
    g1, g2 = losses.thresholds_for_batch(BATCH, 5.0, 18.0)
    codes = losses.split_by_loss(torch.tensor(seed1["loss"]), g1, g2)
    assert (seed1["label"] == np.array(LABELS)[codes]).all()
    # the summary is the detection of exactly the written scores against the file's `noisy` column
    [row] = summary["detectors"]
    noisy = seed1["pair_id"].map(df.set_index("pair_id")["noisy"]).to_numpy(dtype=bool)
    expected = detection_metrics(noisy, 1 - seed1["reliability"], seed1["label"] == "noisy")
    assert row["auroc"] == expected["auroc"] and row["auprc"] == expected["auprc"]
    assert [row[label] for label in LABELS] == [int((seed1["label"] == label).sum()) for label in LABELS]
    assert [r["count"] for r in summary["labels"]] == [row[label] for label in LABELS]
    # the noise-share estimate: in the summary, with the true share, and in the file's metadata
    [share] = summary["noise_share"]
    stored = noise_statements(folder / "seed1.parquet")
    assert share["detector"] == "rrsitr" and share["truth"] == noisy.mean() and share["method"] == "decoys"
    clean = (seed1["label"] == "clean").to_numpy()
    assert share["clean"] == clean.sum() and share["clean_truth"] == (noisy[clean].mean() if clean.any() else None)
    assert stored == {"rrsitr": {key: value for key, value in share.items()
                                 if key not in ("detector", "truth", "clean_truth", "noisy_truth")}}


def test_suggestions_ride_on_every_row_of_a_flagged_pair_and_survive_filtering(files, tmp_path):
    folder, df = files
    # a pair is flagged when either detector flags it (the random model's rrsitr would flag every pair)
    _, scores = run_score(folder, "suggested.parquet", detectors=["similarity", "loss-gmm"], suggest=3,
                          options={"keep_fraction": 0.6})
    flagged = set(scores.loc[scores["label"] != "clean", "pair_id"])
    assert ((scores["detector"] == "similarity") & (scores["label"] == "noisy")).sum() == 48  # 40 % of 120
    assert len(flagged) < 120  # so that unflagged rows are checked too
    rows = df.set_index("pair_id")
    for pair_id, group in scores.groupby("pair_id"):
        first = group.iloc[0]
        for column in SUGGESTION_COLUMNS:  # the same on each detector's row
            assert all(np.array_equal(value, first[column]) if pair_id in flagged else value is None
                       for value in group[column])
        if pair_id not in flagged:
            continue
        image = rows.loc[pair_id, "image_id"]
        suggested = rows.loc[list(first["suggested_pair_ids"])]
        assert len(suggested) == 3 and (suggested["image_id"] != image).all()
        assert list(first["suggested_captions"]) == suggested["caption"].tolist()
        assert len(set(first["suggested_image_ids"])) == 3 and image not in set(first["suggested_image_ids"])
        # images best first; captions in the order of cosine and attribute support (tests/detect/test_suggest.py)
        assert len(first["suggested_image_scores"]) == 3 and (np.diff(first["suggested_image_scores"]) <= 0).all()
        assert len(first["suggested_caption_scores"]) == 3
    # through nctool.schema's read_table and write_table the columns stay lists
    filter_file(folder / "data.parquet", folder / "suggested.parquet", out=tmp_path / "kept.parquet",
                detector="similarity")
    kept = pd.read_parquet(tmp_path / "kept.parquet").set_index("pair_id")
    by_pair = scores[scores["detector"] == "similarity"].set_index("pair_id")
    for pair_id in set(kept.index) & flagged:
        assert list(kept.loc[pair_id, "suggested_pair_ids"]) == list(by_pair.loc[pair_id, "suggested_pair_ids"])
    # without --suggest the columns are there, all null
    _, plain = run_score(folder, "plain.parquet", detectors=["similarity"])
    assert plain[list(SUGGESTION_COLUMNS)].isna().all().all()


def test_scores_of_the_20_percent_file_do_not_filter_the_40_percent_file(files, tmp_path):
    folder, _ = files
    score(folder / "data20.parquet", model=ModelSource(checkpoint=folder / "model.pt"),
          out=tmp_path / "scores20.parquet",
          detectors=["similarity"], batch_size=64)
    with pytest.raises(NctoolError, match=r"scores: pair '.+' was scored with another image or caption than the "
                                          r"dataset holds .*score this one with `nctool score`"):
        filter_file(folder / "data.parquet", tmp_path / "scores20.parquet", out=tmp_path / "kept.parquet")
    assert not (tmp_path / "kept.parquet").exists()


def test_score_refuses_bad_outputs_before_any_work(files, tmp_path):
    folder, df = files
    write_table(df, tmp_path / "data.parquet")
    before = (tmp_path / "data.parquet").read_bytes()
    # the checkpoint does not exist: an error about the output shows that nothing else was started
    for out, message in ((tmp_path / "data.parquet", "is also an input of this command and would be replaced"),
                         (tmp_path, "is a folder; give a file path")):
        with pytest.raises(NctoolError, match=message):
            score(tmp_path / "data.parquet", model=ModelSource(checkpoint=tmp_path / "none.pt"), out=out)
    assert (tmp_path / "data.parquet").read_bytes() == before
    with pytest.raises(NctoolError, match="is also an input"):
        score(tmp_path / "data.parquet", model=ModelSource(checkpoint=folder / "model.pt"), out=folder / "model.pt")


def test_score_errors(files, tmp_path):
    folder, df = files
    with pytest.raises(NctoolError, match="checkpoint not found"):
        score(folder / "data.parquet", model=ModelSource(checkpoint=tmp_path / "none.pt"), out=tmp_path / "s.parquet")
    (tmp_path / "bad.pt").write_text("not a checkpoint")
    with pytest.raises(NctoolError, match="bad.pt: not loaded"):
        score(folder / "data.parquet", model=ModelSource(checkpoint=tmp_path / "bad.pt"), out=tmp_path / "s.parquet")
    with pytest.raises(NctoolError, match="suggest -1: must be at least 0"):
        score(folder / "data.parquet", model=ModelSource(checkpoint=folder / "model.pt"), out=tmp_path / "s.parquet",
              suggest=-1)
    with pytest.raises(NctoolError, match="detector 'clip': unknown"):
        score(folder / "data.parquet", model=ModelSource(checkpoint=folder / "model.pt"), out=tmp_path / "s.parquet",
              detectors=["clip"])
    with pytest.raises(NctoolError, match="split 'dev': unknown; choose from train, val, test"):
        score(folder / "data.parquet", model=ModelSource(checkpoint=folder / "model.pt"), out=tmp_path / "s.parquet",
              splits=["dev"])
    write_table(df[df["split"] == "test"], tmp_path / "test_only.parquet")
    with pytest.raises(NctoolError, match="no rows in split train; the file's splits are test"):
        score(tmp_path / "test_only.parquet", model=ModelSource(checkpoint=folder / "model.pt"),
              out=tmp_path / "s.parquet")
    write_table(df.drop(columns=["caption"]), tmp_path / "no_caption.parquet")
    with pytest.raises(NctoolError, match="missing required column 'caption'"):
        score(tmp_path / "no_caption.parquet", model=ModelSource(checkpoint=folder / "model.pt"),
              out=tmp_path / "s.parquet")
    assert not (tmp_path / "s.parquet").exists()


@pytest.mark.parametrize("caption", [None, "  "])
def test_score_cli_refuses_an_empty_caption_in_one_line(files, tmp_path, capsys, caption):
    folder, df = files
    broken = df.astype({"caption": object})
    broken.loc[df.index[df["split"] == "val"][0], "caption"] = caption  # even outside the scored split
    write_table(broken, tmp_path / "broken.parquet")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:  # the console entry point, in-process
        main(["score", str(tmp_path / "broken.parquet"), "--checkpoint", str(tmp_path / "none.pt"),
              "--out", str(tmp_path / "s.parquet")])
    stderr = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and "has an empty or null caption" in stderr
    assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr


def test_a_checkpoint_judging_the_pairs_it_trained_on_is_said_to_be_in_sample(files, tmp_path):
    folder, df = files
    payload = read_checkpoint(folder / "model.pt")
    train = df.loc[df["split"] == "train", "pair_id"]
    # it learned the train pairs but 30 (a curator's dropped ones, say, with `train --decisions`)
    learned = torch.from_numpy(pair_id_hashes(train[30:]))
    save_checkpoint({**payload, "trained_pairs": learned}, tmp_path / "learned.pt")
    options = {"detectors": ["similarity"], "pool": PoolSpec(0, 2, 60), "batch_size": 16}
    learner = ModelSource(checkpoint=tmp_path / "learned.pt")
    ran = score(folder / "data.parquet", model=learner, out=tmp_path / "a.parquet", **options)
    assert ran["in_sample"] == (len(train) - 30) / len(train) == 0.75
    stated = noise_statements(tmp_path / "a.parquet")["similarity"]  # what review and the gallery read
    assert stated["in_sample"] == 0.75 and "in sample: its model trained on 75 % of these pairs" in stated_noise(stated)
    # with val too, the share of all scored pairs; val alone, none
    both = score(folder / "data.parquet", model=learner, out=tmp_path / "c.parquet", splits=["train", "val"], **options)
    assert both["in_sample"] == 90 / (len(train) + (df["split"] == "val").sum())
    val = score(folder / "data.parquet", model=learner, out=tmp_path / "d.parquet", splits=["val"], **options)
    assert val["in_sample"] == 0.0 and "in_sample" not in noise_statements(tmp_path / "d.parquet")["similarity"]
    # a checkpoint without a record of its pairs: no claim either way
    assert run_score(folder, "b.parquet", detectors=["similarity"])[0]["in_sample"] is None


def test_score_cli_says_when_its_figures_are_in_sample(monkeypatch):
    monkeypatch.setattr(nctool.detect.score, "score", lambda *args, **kwargs: {
        "out": "s.parquet", "pairs": 3, "splits": ["train"], "labels": [], "noise_share": [], "in_sample": 0.5,
        "detectors": [{"detector": "rrsitr", "clean": 2, "ambiguous": 0, "noisy": 1}]})
    result = invoke("score", "data.parquet", "--checkpoint", "m.pt", "--out", "s.parquet")
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "m.pt trained on 50 % of these pairs, so the figures above are in sample" in said
    assert "`nctool train data.parquet --folds 3 --out FOLDER`" in said


def test_score_flags_reach_the_library(monkeypatch):
    calls = []
    monkeypatch.setattr(nctool.detect.score, "score", lambda *args, **kwargs: calls.append((args, kwargs)) or
                        {"out": "s.parquet", "pairs": 3, "splits": ["train"], "labels": [],
                         "noise_share": [{"detector": "similarity", "method": "decoys", "estimate": 0.3, "low": 0.2,
                                          "high": 0.4, "clean": 2, "clean_contamination": 0.04, "clean_low": 0.02,
                                          "clean_high": 0.06, "noisy": 1, "noisy_precision": 0.95, "noisy_low": 0.8,
                                          "noisy_high": 1.0, "max_contamination": 0.05}],
                         "detectors": [{"detector": "similarity", "clean": 2, "ambiguous": 0, "noisy": 1}]})
    result = invoke("score", "data.parquet", "--checkpoint", "m.pt", "--out", "s.parquet", "--detector", "similarity",
                    "--detector", "loss-gmm", "--split", "train", "--split", "val", "--image-root", "imgs",
                    "--batch-size", "8", "--device", "cpu", "--seed", "4", "--repeats", "2", "--pool", "30",
                    "--keep-fraction", "0.5", "--threshold", "0.3", "--neighbors", "7", "--clean-from", "0.8",
                    "--noisy-below", "0.1", "--noisy-from", "0.8", "--training-split", "--suggest", "5",
                    "--no-scene-decoys")
    assert result.exit_code == 0, result.output
    [(args, kwargs)] = calls
    assert [str(a) for a in args] == ["data.parquet"]
    progress = kwargs.pop("progress")
    assert callable(progress) and str(kwargs.pop("image_root")) == "imgs"
    assert str(kwargs.pop("out")) == "s.parquet"
    defaults = {name: option.default for name, (option, _) in detector_options().items()}
    assert kwargs == {"model": ModelSource(checkpoint=Path("m.pt")), "embeddings": None, "engine": None,
                      "detectors": ["similarity", "loss-gmm"], "splits": ["train", "val"], "batch_size": 8,
                      "device": "cpu", "pool": PoolSpec(seed=4, repeats=2, pool_size=30), "suggest": 5,
                      "options": {**defaults, "noisy_from": 0.8, "training_split": True, "scene_decoys": False,
                                  "keep_fraction": 0.5,
                                  "threshold": 0.3, "neighbors": 7, "clean_from": 0.8, "noisy_below": 0.1}}
    assert "similarity" in result.output and "noise share" in result.output and "wrote s.parquet" in result.output
    assert "30.0 % (20.0-40.0)" in result.output and "4.0 % (2.0-6.0)" in result.output
    said = " ".join(result.output.split())
    assert "95.0 % (80.0-100.0)" in said
    assert ("similarity: its noisy set (1 pairs, est. precision 95 %) may be only 80 % noisy at the low end of the "
            "noise share's interval: review it by eye (`nctool review`) before dropping it unseen") in said
    assert "in sample" not in result.output
    calls.clear()
    assert invoke("score", "d", "--checkpoint", "m", "--out", "s").exit_code == 0
    assert calls[0][1]["detectors"] == ["rrsitr"] and calls[0][1]["splits"] == ["train"] and calls[0][1]["suggest"] == 0
    assert calls[0][1]["options"] == defaults
    assert {key: defaults[key] for key in ("noisy_from", "training_split", "keep_fraction", "threshold", "neighbors",
                                           "clean_from", "noisy_below", "iterations", "sibling_weight")} == \
        {"noisy_from": 0.95, "training_split": False, "keep_fraction": None, "threshold": None, "neighbors": 10,
         "clean_from": 0.75, "noisy_below": 0.25, "iterations": 3, "sibling_weight": 1.0}
    assert invoke("score", "d", "--checkpoint", "m", "--out", "s", "--detector", "clip").exit_code == 2


@pytest.mark.slow
def test_score_cli(files, tmp_path):
    """The one end-to-end run of `nctool score` (a subprocess, as a user runs it)."""
    folder, _ = files
    result = run_cli("score", folder / "data.parquet", "--checkpoint", folder / "model.pt", "--detector", "similarity",
                     "--detector", "rrsitr", "--split", "train", "--split", "val", "--pool", "50", "--repeats", "2",
                     "--suggest", "2", "--out", tmp_path / "scores.parquet")
    assert result.returncode == 0, result.stderr
    assert "AUROC" in result.stdout and "similarity" in result.stdout and "rrsitr" in result.stdout
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    assert len(scores) == 2 * 135 and set(scores["detector"]) == {"similarity", "rrsitr"}
    flagged = scores["label"] != "clean"
    assert flagged.any() and (scores.loc[flagged, "suggested_image_ids"].map(len) == 2).all()


def test_ctrl_c_in_score_says_what_was_kept(monkeypatch):
    monkeypatch.setattr(nctool.detect.score, "score", interrupted)
    result = invoke("score", "d", "--checkpoint", "m", "--out", "s.parquet")
    assert result.exit_code == 130
    assert result.output.strip() == "interrupted: nothing written (s.parquet is written only when scoring finishes)"
    shards = invoke("score", "d", "--checkpoint", "m", "--embeddings", "emb", "--out", "s.parquet")
    assert shards.exit_code == 130
    assert shards.output.strip() == ("interrupted: nothing written (s.parquet is written only when scoring finishes); "
                                     "the shards finished so far stay in emb: run the same command to continue")


def test_an_out_of_fold_run_scores_each_pair_with_the_model_of_its_fold(files, tmp_path):
    folder, df = files
    oof = tmp_path / "oof"
    for k in range(2):
        (oof / f"fold-{k}").mkdir(parents=True)
        torch.manual_seed(k)
        checkpoint = read_checkpoint(folder / "model.pt")
        save_checkpoint({**checkpoint, "model": create_model("nctool-tiny").state_dict()}, oof / f"fold-{k}/best.pt")
    fingerprint = read_index(folder / "data.parquet", ["train"], fingerprint=True).fingerprint
    (oof / "folds.json").write_text(json.dumps({"folds": 2, "runs": ["fold-0/best.pt", "fold-1/best.pt"],
                                                "data": fingerprint}))
    options = {"detectors": ["similarity", "rrsitr"], "batch_size": 16, "pool": PoolSpec(repeats=2, pool_size=40)}
    score(folder / "data.parquet", model=ModelSource(checkpoint=oof), out=tmp_path / "oof.parquet", **options)
    scores = pd.read_parquet(tmp_path / "oof.parquet").query("detector == 'similarity'").set_index("pair_id")
    fold = pd.Series(image_folds(df["image_id"].to_numpy(), 2), index=df["pair_id"]).loc[scores.index]
    assert set(fold) == {0, 1}
    for k in range(2):
        score(folder / "data.parquet", model=ModelSource(checkpoint=oof / f"fold-{k}/best.pt"),
              out=tmp_path / f"fold{k}.parquet", **options)
        alone = pd.read_parquet(tmp_path / f"fold{k}.parquet").query("detector == 'similarity'").set_index("pair_id")
        mine = fold.index[fold == k]
        # equal up to float32 rounding: a pair's embedding can differ in the last bits with its batch's composition
        np.testing.assert_allclose(scores.loc[mine, "similarity"], alone.loc[mine, "similarity"], atol=1e-6)
    with pytest.raises(NctoolError, match="an out-of-fold run scores each fold with its own model.*drop neighbors"):
        score(folder / "data.parquet", model=ModelSource(checkpoint=oof), out=tmp_path / "s.parquet",
              detectors=["neighbors"])
    with pytest.raises(NctoolError, match="cannot compare; drop --embeddings$"):
        score(folder / "data.parquet", model=ModelSource(checkpoint=oof), out=tmp_path / "s.parquet",
              embeddings=tmp_path / "emb", detectors=["similarity"])
    with pytest.raises(NctoolError, match="score it directly with `nctool score --checkpoint"):
        embed(folder / "data.parquet", model=ModelSource(checkpoint=oof), out=tmp_path / "emb")
    with pytest.raises(NctoolError, match="its folds were trained on another version of the data"):
        score(folder / "data20.parquet", model=ModelSource(checkpoint=oof), out=tmp_path / "s.parquet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NctoolError, match="a folder without folds.json"):
        score(folder / "data.parquet", model=ModelSource(checkpoint=tmp_path / "empty"), out=tmp_path / "s.parquet")


def test_decoy_captions_come_from_another_image_and_same_scene_ones_from_the_same_category():
    pool = object.__new__(ReferencePool)  # partners() reads only the pool pairs' images and categories, and the seed
    pool.seed = 0
    pool.pair_images = np.array(["a", "a", "b", "c", "d", "e"])
    pool.pair_categories = np.array(["x", "x", "x", "y", "y", "z"], dtype=object)
    ids, images = [f"p{i}" for i in range(6)], np.array(["a", "b", "c", "d", "e", "f"])
    random = pool.partners(ids, images)
    assert (pool.pair_images[random] != images).all()
    scene = pool.partners(ids, images, np.array(["x", "x", "y", "y", "z", "w"], dtype=object))
    # the only pool captions of the pair's category on another image: b for a, a for b, d for c, c for d; e has no
    # other image of z in the pool and f no w
    assert list(pool.pair_images[scene[:4]]) == ["b", "a", "d", "c"] and scene[4] == scene[5] == -1


def test_a_tagger_reads_each_pair_image_for_the_attribute_detectors(files, tmp_path):
    from nctool.data.words import attribute_sets
    from nctool.model.tagger import load_tagger, train_tagger

    folder, df = files
    train_tagger(folder / "data.parquet", tmp_path / "tagger.pt", epochs=1, batch_size=8, min_count=1, image_size=32)
    summary, both = run_score(folder, tmp_path / "scores.parquet", detectors=["attributes", "rrsitr-attributes"],
                              options={"tagger": str(tmp_path / "tagger.pt")})
    scores, with_loss = (both[both["detector"] == name].reset_index(drop=True)
                         for name in ("attributes", "rrsitr-attributes"))
    assert summary["pairs"] == len(scores) == (df["split"] == "train").sum()
    # both detectors read the same tagger's reading of the same images
    pd.testing.assert_series_equal(scores["tagger_support"], with_loss["tagger_support"])
    vocab = set(load_tagger(tmp_path / "tagger.pt").vocab)
    captions = df.set_index("pair_id").loc[scores["pair_id"], "caption"]
    read = [bool(words & vocab) for words in attribute_sets(captions)]  # a caption with a word the tagger knows
    assert any(read) and scores["tagger_support"].notna().tolist() == read
    with pytest.raises(NctoolError, match="model.pt: not a word tagger"):  # refused before any work
        run_score(folder, tmp_path / "other.parquet", detectors=["attributes"],
                  options={"tagger": str(folder / "model.pt")})
    assert not (tmp_path / "other.parquet").exists()
    with pytest.raises(NctoolError, match="--tagger: only the attributes and rrsitr-attributes detectors read a "
                                          "tagger; add --detector attributes"):
        run_score(folder, tmp_path / "other.parquet", detectors=["rrsitr"], options={"tagger": str(tmp_path / "t.pt")})
