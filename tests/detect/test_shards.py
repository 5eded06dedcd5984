"""Embeddings as shards (`nctool embed`) and scoring from them (`nctool score --embeddings`)."""

import hashlib
import json
import re
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from cli_helpers import interrupted, invoke

import nctool.detect.score
import nctool.detect.shards
from nctool.config import load_recipe
from nctool.data import noise, synth
from nctool.detect.measure import ModelSource, PoolSpec
from nctool.detect.ray import RayEngine
from nctool.detect.score import score
from nctool.detect.shards import default_folder, embed
from nctool.errors import NctoolError
from nctool.model.checkpoint import save_checkpoint
from nctool.model.clip import create_model
from nctool.schema import row_group_count, write_table

SETTINGS = {"batch_size": 16, "pool": PoolSpec(repeats=3, pool_size=60)}
SCORING = {"detectors": ["all"], "suggest": 2, "options": {"neighbors": 3}, **SETTINGS}


def checkpoint(path, seed):
    torch.manual_seed(seed)
    recipe = load_recipe("demo", ["train.batch_size=20", "loss.use_local=true"])
    save_checkpoint({"model": create_model("nctool-tiny").state_dict(), "config": recipe.to_dict()}, path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Noised synth data in row groups of 50 rows (3 shards; the last one holds no train row) and two
    random nctool-tiny checkpoints; the data is in image order, so val and test rows come last."""
    folder = tmp_path_factory.mktemp("embeddings")
    df, _ = noise.inject(synth.generate(30, size=32), 0.4, "caption-shuffle", seed=1)
    df = df.sort_values("split", key=lambda split: split.map({"train": 0, "val": 1, "test": 2}), kind="stable")
    write_table(df, folder / "data.parquet", row_group_size=50)
    write_table(df.assign(caption=df["caption"].iloc[::-1].to_numpy()), folder / "other.parquet", row_group_size=50)
    checkpoint(folder / "model.pt", 0)
    checkpoint(folder / "other.pt", 1)
    return folder, df


def test_scores_from_embeddings_equal_direct_scores(files):
    folder, df = files
    assert row_group_count(folder / "data.parquet") == 3
    summary = embed(folder / "data.parquet", model=ModelSource(checkpoint=folder / "model.pt"), out=folder / "emb",
                    **SETTINGS)
    assert summary == {"out": str(folder / "emb"), "pairs": 120, "shards": 3, "computed": [0, 1, 2], "reused": 0,
                       "invalidated": None}
    shards = [pd.read_parquet(folder / "emb" / f"shard-0000{i}.parquet") for i in range(3)]
    assert [len(shard) for shard in shards] == [50, 50, 20]  # 120 train rows; the rest of row group 2 is val
    first = shards[0]
    assert list(first.columns) == ["pair_id", "image_id", "row_hash", "noisy", "similarity", "loss", "loss_std",
                                   "decoy_similarity", "decoy_loss", "scene_decoy_similarity", "scene_decoy_loss",
                                   "decoy_partner", "scene_decoy_partner", "image_embedding", "caption_embedding"]
    assert first["pair_id"].tolist() == df["pair_id"].iloc[:50].tolist()
    assert len(first["image_embedding"].iloc[0]) == len(first["caption_embedding"].iloc[0]) == 128
    manifest = json.loads((folder / "emb" / "manifest.json").read_text())
    assert [{k: v for k, v in shard.items() if k != "sha256"} for shard in manifest["shards"]] == \
        [{"file": f"shard-0000{i}.parquet", "row_group": i, "rows": rows} for i, rows in enumerate([50, 50, 20])]
    assert manifest["settings"] == {"splits": ["train"], "seed": 0, "repeats": 3, "pool_size": 60,
                                    "precision": "float32"}
    assert manifest["dim"] == 128 and manifest["pool"]["pairs"] == 60 and manifest["model"]["name"] == "nctool-tiny"
    # each shard names the run it belongs to: a rerun keeps exactly the shards that carry the current key
    assert {pq.read_metadata(path).metadata[b"nctool.embeddings_key"].decode()
            for path in (folder / "emb").glob("shard-*")} == {manifest["key"]}

    direct = score(folder / "data.parquet", model=ModelSource(checkpoint=folder / "model.pt"),
                   out=folder / "direct.parquet", **SCORING)
    cached = score(folder / "data.parquet", embeddings=folder / "emb", out=folder / "cached.parquet", **SCORING)
    assert cached["embedded"] is None and cached["noise_share"] == direct["noise_share"]
    # every detector (neighbors and siblings included) and every suggestion, to the last bit
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "cached.parquet"),
                                  pd.read_parquet(folder / "direct.parquet"), check_exact=True)
    # with a model and --embeddings, score brings the folder up to date first (here: nothing to do)
    again = score(folder / "data.parquet", model=ModelSource(checkpoint=folder / "model.pt"), embeddings=folder / "emb",
                  out=folder / "again.parquet", **SCORING)
    assert again["embedded"]["computed"] == [] and again["embedded"]["reused"] == 3
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "again.parquet"), pd.read_parquet(folder / "direct.parquet"),
                                  check_exact=True)


@pytest.mark.slow
def test_a_rerun_computes_only_missing_shards_and_another_checkpoint_recomputes_all(files, tmp_path):
    folder, _ = files
    out = tmp_path / "emb"
    embed(folder / "data.parquet", model=ModelSource(checkpoint=folder / "model.pt"), out=out, **SETTINGS)
    before = {path.name: path.stat().st_mtime_ns for path in out.glob("shard-*")}
    bits = (out / "shard-00001.parquet").read_bytes()
    (out / "shard-00001.parquet").unlink()
    again = embed(folder / "data.parquet", model=ModelSource(checkpoint=folder / "model.pt"), out=out, **SETTINGS)
    assert (again["computed"], again["reused"], again["invalidated"]) == ([1], 2, None)
    assert (out / "shard-00001.parquet").read_bytes() == bits
    assert {name: (out / name).stat().st_mtime_ns for name in before if name != "shard-00001.parquet"} == \
        {name: mtime for name, mtime in before.items() if name != "shard-00001.parquet"}
    other = embed(folder / "data.parquet", model=ModelSource(checkpoint=folder / "other.pt"), out=out, **SETTINGS)
    assert other["computed"] == [0, 1, 2] and other["invalidated"] == ("made with another model (weights or recipe); "
                                                                      "recomputed every shard")
    seed = embed(folder / "data.parquet", model=ModelSource(checkpoint=folder / "other.pt"), out=out,
                 **{**SETTINGS, "pool": PoolSpec(seed=1, repeats=3, pool_size=60)})
    assert seed["computed"] == [0, 1, 2] and seed["invalidated"].startswith("made with another seed (0, now 1)")


def test_an_edited_shard_is_refused_by_score_and_re_embedded_by_embed(files, tmp_path):
    folder, _ = files
    out = tmp_path / "emb"
    embed(folder / "data.parquet", model=ModelSource(checkpoint=folder / "model.pt"), out=out, **SETTINGS)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [shard["sha256"] for shard in manifest["shards"]] == \
        [hashlib.sha256((out / shard["file"]).read_bytes()).hexdigest() for shard in manifest["shards"]]
    bits = (out / "shard-00001.parquet").read_bytes()
    edited = pq.read_table(out / "shard-00001.parquet")  # the same run key in its metadata, other losses
    edited = edited.set_column(edited.schema.get_field_index("loss"), "loss",
                               pa.array([9.0] * edited.num_rows, pa.float32()))
    pq.write_table(edited, out / "shard-00001.parquet")
    with pytest.raises(NctoolError, match=rf"^{re.escape(str(out / 'shard-00001.parquet'))}: changed since `nctool "
                                          rf"embed` wrote it \(its sha256 is not the one in manifest.json\); re-embed "
                                          rf"it with `nctool embed .*data.parquet --out .*emb` and its model \(it "
                                          rf"recomputes only the changed shards\)$"):
        score(folder / "data.parquet", embeddings=out, out=tmp_path / "s.parquet", **SCORING)
    again = embed(folder / "data.parquet", model=ModelSource(checkpoint=folder / "model.pt"), out=out, **SETTINGS)
    assert (again["computed"], again["reused"]) == ([1], 2)
    assert again["invalidated"] == "edited since they were written (shard-00001.parquet); re-embedded those"
    assert (out / "shard-00001.parquet").read_bytes() == bits
    assert json.loads((out / "manifest.json").read_text())["shards"] == manifest["shards"]


def test_scoring_from_embeddings_refuses_what_does_not_match(files, tmp_path):
    folder, _ = files
    out = tmp_path / "emb"
    embed(folder / "data.parquet", model=ModelSource(checkpoint=folder / "model.pt"), out=out, **SETTINGS)

    def from_embeddings(data="data.parquet", **changes):
        score(folder / data, embeddings=out, out=tmp_path / "s.parquet", **{**SCORING, **changes})

    with pytest.raises(NctoolError, match=r"emb: embedded with --seed 0, this run asks for --seed 1; score with "
                                          r"--seed 0, or re-embed: `nctool embed .*data.parquet --out .*emb --seed 1` "
                                          r"with its model$"):
        from_embeddings(pool=PoolSpec(seed=1, repeats=3, pool_size=60))
    with pytest.raises(NctoolError,
                       match="emb: embedded with --split train, this run asks for --split train --split val;"):
        from_embeddings(splits=["train", "val"])
    with pytest.raises(NctoolError, match="emb: embedded with --pool 60, this run asks for --pool 50;"):
        from_embeddings(pool=PoolSpec(repeats=3, pool_size=50))
    with pytest.raises(NctoolError, match=r"emb: embedded from another version of the data than .*other.parquet"):
        from_embeddings(data="other.parquet")
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "version": 1}))
    with pytest.raises(NctoolError, match=r"emb: written in embeddings format version 1, this nctool reads version 5; "
                                          r"re-embed it with `nctool embed"):
        from_embeddings()
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "shard-00002.parquet").unlink()
    with pytest.raises(NctoolError, match=r"emb: 1 of 3 shards not finished \(first: shard-00002.parquet\); finish "
                                          r"them with `nctool embed"):
        from_embeddings()
    with pytest.raises(NctoolError, match="none: no embeddings there; write them with `nctool embed"):
        score(folder / "data.parquet", embeddings=tmp_path / "none", out=tmp_path / "s.parquet")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(NctoolError, match="mine: not an nctool embeddings folder"):
        embed(folder / "data.parquet", model=ModelSource(checkpoint=folder / "model.pt"), out=tmp_path / "mine",
              **SETTINGS)
    assert [path.name for path in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    with pytest.raises(NctoolError, match="--address: only with --engine ray"):
        RayEngine.from_flags("local", address="auto")
    with pytest.raises(NctoolError, match="embed: no model given"):
        embed(folder / "data.parquet", out=out)
    assert not (tmp_path / "s.parquet").exists()


def test_engine_ray_without_ray_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as if it were not installed
    with pytest.raises(NctoolError, match=r"^--engine ray: Ray is not installed; pip install 'nctool\[ray\]'$"):
        RayEngine.from_flags("ray")
    with pytest.raises(NctoolError, match="engine 'spark': unknown; choose from local, ray"):
        RayEngine.from_flags("spark")
    assert default_folder("out/scores.parquet").as_posix() == "out/scores.embeddings"


def test_embed_flags_reach_the_library(monkeypatch):
    calls = []
    monkeypatch.setattr(nctool.detect.shards, "embed", lambda *args, **kwargs: calls.append((args, kwargs)) or
                        {"out": "emb", "pairs": 120, "shards": 3, "computed": [1], "reused": 2,
                         "invalidated": "made with another seed (0, now 4); recomputed every shard"})
    result = invoke("embed", "data.parquet", "--checkpoint", "m.pt", "--out", "emb", "--split", "train", "--split",
                    "val", "--image-root", "imgs", "--batch-size", "8", "--device", "cpu", "--seed", "4", "--repeats",
                    "2", "--pool", "30", "--engine", "ray", "--address", "auto", "--workers", "3",
                    "--gpus-per-worker", "0.5")
    assert result.exit_code == 0, result.output
    [(args, kwargs)] = calls
    assert [str(a) for a in args] == ["data.parquet"] and callable(kwargs.pop("progress"))
    assert [str(kwargs.pop(name)) for name in ("out", "image_root")] == ["emb", "imgs"]
    assert kwargs == {"model": ModelSource(checkpoint=Path("m.pt")), "splits": ["train", "val"], "batch_size": 8,
                      "device": "cpu", "pool": PoolSpec(seed=4, repeats=2, pool_size=30),
                      "engine": RayEngine(address="auto", workers=3, gpus_per_worker=0.5)}
    assert "120 pairs in 3 shards in emb (1 computed, 2 reused)" in result.output
    assert "recomputed every shard" in result.output
    calls.clear()
    assert invoke("embed", "d", "--model", "ViT-B-32", "--out", "emb").exit_code == 0
    assert {key: calls[0][1][key] for key in ("model", "engine", "splits")} == \
        {"model": ModelSource(model="ViT-B-32"), "engine": None, "splits": ["train"]}


def test_score_embeddings_and_engine_flags_reach_the_library(monkeypatch):
    calls = []
    monkeypatch.setattr(nctool.detect.score, "score", lambda *args, **kwargs: calls.append(kwargs) or
                        {"out": "s.parquet", "pairs": 3, "splits": ["train"], "labels": [], "noise_share": [],
                         "detectors": [], "embedded": {"out": "s.embeddings", "pairs": 3, "shards": 1, "computed": [0],
                                                       "reused": 0, "invalidated": None}})
    result = invoke("score", "d", "--checkpoint", "m", "--out", "s.parquet", "--engine", "ray", "--workers", "2",
                    "--gpus-per-worker", "1", "--address", "ray://head:10001", "--embeddings", "emb")
    assert result.exit_code == 0, result.output
    assert calls[0]["engine"] == RayEngine(address="ray://head:10001", workers=2, gpus_per_worker=1.0)
    assert str(calls[0]["embeddings"]) == "emb" and "3 pairs in 1 shards in s.embeddings (1 computed" in result.output
    calls.clear()
    assert invoke("score", "d", "--embeddings", "emb", "--out", "s.parquet").exit_code == 0
    assert calls[0]["model"] is None and calls[0]["engine"] is None and str(calls[0]["embeddings"]) == "emb"
    assert invoke("score", "d", "--embeddings", "emb", "--out", "s", "--engine", "spark").exit_code == 2


def test_ctrl_c_in_embed_says_what_was_kept(monkeypatch):
    monkeypatch.setattr(nctool.detect.shards, "embed", interrupted)
    result = invoke("embed", "d", "--checkpoint", "m", "--out", "emb")
    assert result.exit_code == 130
    assert result.output.strip() == ("interrupted: the shards finished so far stay in emb: "
                                     "run the same command to continue")
