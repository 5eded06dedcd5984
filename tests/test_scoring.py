import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr

from cli_helpers import run_cli
from nctool import losses, noise, synth
from nctool.checkpoint import load_trained_model, save_checkpoint
from nctool.config import load_recipe
from nctool.data import PairData, encode_dataset
from nctool.errors import NctoolError
from nctool.model import create_model, local_similarity
from nctool.schema import write_table
from nctool.scoring import pair_hashes, reference_batches, reference_losses, score

BATCH = 20


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny noised dataset (30 images, 120 train rows) and a random nctool-tiny checkpoint (batch 20)."""
    folder = tmp_path_factory.mktemp("scoring")
    df, _ = noise.inject(synth.generate(30, size=32), 0.4, "caption-shuffle", seed=1)
    write_table(df, folder / "data.parquet")
    torch.manual_seed(0)
    config = load_recipe("demo", [f"train.batch_size={BATCH}", "loss.use_local=true", "loss.g1=5.0", "loss.g2=18.0",
                                  "loss.reference_batch=100"])
    save_checkpoint({"model": create_model("nctool-tiny").state_dict(), "config": config}, folder / "model.pt")
    return folder, df


def run_score(folder, name, data="data.parquet", **options):
    options = {"detectors": ["all"], "batch_size": 16, "pool_size": 60, "repeats": 3, **options}
    summary = score(folder / data, folder / "model.pt", folder / name, **options)
    return summary, pd.read_parquet(folder / name)


@pytest.mark.parametrize("use_local", [True, False])
def test_reference_loss_is_per_pair_loss_of_the_explicit_batch(files, use_local):
    folder, df = files
    model, config, _ = load_trained_model(folder / "model.pt")
    loss_cfg = {**config["loss"], "use_local": use_local}
    data = PairData(df, folder, model)
    pool = encode_dataset(model, data, torch.arange(40))
    rows = encode_dataset(model, data, torch.arange(30, 60))  # rows 30..39 are also in the pool
    own = np.where(np.arange(30, 60) < 40, np.arange(30, 60), -1)
    batches = reference_batches(np.arange(30, dtype=np.uint64), own, 40, BATCH - 1, 3)
    got = reference_losses(rows, pool, batches, loss_cfg)
    assert got.shape == (30, 3)

    def pick(emb, rows):
        image = emb["caption_image_index"][rows]
        return emb["image_global"][image], emb["image_local"][image], emb["text_global"][rows], emb["text_local"][rows]

    for i in range(30):
        assert not (batches[i] == own[i]).any()
        for k in range(3):
            parts = zip(pick(rows, [i]), pick(pool, batches[i, k]))
            image_global, image_local, text_global, text_local = (torch.cat(pair) for pair in parts)
            global_logits = loss_cfg["logit_scale"] * image_global @ text_global.T
            local_logits = loss_cfg["local_scale"] * local_similarity(text_local, image_local).T if use_local else None
            expected = losses.per_pair_loss(global_logits, local_logits)[0]
            torch.testing.assert_close(got[i, k], expected, rtol=1e-5, atol=1e-5)


def test_reference_batches_depend_only_on_the_pair():
    hashes = pair_hashes(["a#0", "b#1", "c#2"], seed=0)
    batches = reference_batches(hashes, np.array([2, -1, 0]), pool_size=10, size=9, repeats=4)
    assert batches.shape == (3, 4, 9)
    assert all(len(set(b.tolist())) == 9 for b in batches.flatten(0, 1))
    assert not (batches[0] == 2).any() and not (batches[2] == 0).any()
    again = reference_batches(hashes[::-1].copy(), np.array([0, -1, 2]), pool_size=10, size=9, repeats=4)
    assert torch.equal(torch.sort(again.flip(0), -1).values, torch.sort(batches, -1).values)
    assert not np.array_equal(pair_hashes(["a#0"], 0), pair_hashes(["a#0"], 1))


def test_scores_do_not_depend_on_row_order(files):
    folder, df = files
    write_table(df.sample(frac=1, random_state=3), folder / "shuffled.parquet")
    summary, first = run_score(folder, "ordered.parquet")
    _, second = run_score(folder, "shuffled_scores.parquet", data="shuffled.parquet")
    assert summary["pairs"] == 120 and len(first) == 4 * 120
    assert first["detector"].unique().tolist() == ["rrsitr", "similarity", "loss-gmm", "neighbors"]
    joined = first.merge(second, on=["pair_id", "detector"])
    assert len(joined) == len(first)
    # equal up to float32 rounding: a pair's embedding can differ in the last bits with its batch's composition
    np.testing.assert_allclose(joined["reliability_x"], joined["reliability_y"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(joined["loss_x"], joined["loss_y"], rtol=1e-4, equal_nan=True)
    assert (joined["label_x"] == joined["label_y"]).all()


def test_rrsitr_is_stable_across_seeds(files):
    folder, _ = files
    _, seed0 = run_score(folder, "seed0.parquet", detectors=["rrsitr"], repeats=5, pool_size=1000)
    summary, seed1 = run_score(folder, "seed1.parquet", detectors=["rrsitr"], repeats=5, pool_size=1000, seed=1)
    assert spearmanr(seed0["loss"], seed1["loss"]).statistic > 0.95
    # 120 train rows < 1000: the pool is every row; thresholds follow batch 20 (four loss terms)
    g1, g2 = losses.thresholds_for_batch(BATCH, 5.0, 18.0)
    codes = losses.split_by_loss(torch.tensor(seed1["loss"]), g1, g2)
    assert (seed1["label"] == np.array(losses.LABEL_NAMES)[codes]).all()
    [row] = summary["detectors"]
    assert row["clean"] + row["ambiguous"] + row["noisy"] == 120 and 0 <= row["auroc"] <= 1


def test_score_errors(files, tmp_path):
    folder, df = files
    with pytest.raises(NctoolError, match="checkpoint not found"):
        score(folder / "data.parquet", tmp_path / "none.pt", tmp_path / "s.parquet")
    (tmp_path / "bad.pt").write_text("not a checkpoint")
    with pytest.raises(NctoolError, match="not a readable nctool checkpoint"):
        score(folder / "data.parquet", tmp_path / "bad.pt", tmp_path / "s.parquet")
    with pytest.raises(NctoolError, match="detector 'clip': unknown"):
        score(folder / "data.parquet", folder / "model.pt", tmp_path / "s.parquet", detectors=["clip"])
    write_table(df[df["split"] == "test"], tmp_path / "test_only.parquet")
    with pytest.raises(NctoolError, match="no rows in split train; the file's splits are test"):
        score(tmp_path / "test_only.parquet", folder / "model.pt", tmp_path / "s.parquet")
    write_table(df.drop(columns=["caption"]), tmp_path / "no_caption.parquet")
    with pytest.raises(NctoolError, match="missing required column 'caption'"):
        score(tmp_path / "no_caption.parquet", folder / "model.pt", tmp_path / "s.parquet")
    assert not (tmp_path / "s.parquet").exists()


def test_score_cli(files, tmp_path):
    folder, _ = files
    result = run_cli("score", folder / "data.parquet", "--checkpoint", folder / "model.pt", "--detector", "similarity",
                     "--detector", "rrsitr", "--split", "train", "--split", "val", "--pool", "50", "--repeats", "2",
                     "--out", tmp_path / "scores.parquet")
    assert result.returncode == 0, result.stderr
    assert "AUROC" in result.stdout and "similarity" in result.stdout and "rrsitr" in result.stdout
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    assert len(scores) == 2 * 135 and set(scores["detector"]) == {"similarity", "rrsitr"}
    result = run_cli("score", folder / "data.parquet", "--checkpoint", tmp_path / "none.pt",
                     "--out", tmp_path / "x.parquet")
    assert result.returncode == 2 and "checkpoint not found" in result.stderr and "Traceback" not in result.stderr
