"""`--engine ray`: a Ray Data actor pool writes the shards; its scores equal the local engine's."""

import pandas as pd
import pytest
import torch

from nctool.config import load_recipe
from nctool.data import noise, synth
from nctool.detect.detectors import detector_names
from nctool.detect.measure import ModelSource, PoolSpec
from nctool.detect.ray import RayEngine
from nctool.detect.score import score
from nctool.detect.shards import embed
from nctool.model.checkpoint import save_checkpoint
from nctool.model.clip import create_model
from nctool.schema import write_table

ray = pytest.importorskip("ray")

SETTINGS = {"batch_size": 16, "pool": PoolSpec(repeats=2, pool_size=40)}
SCORING = {"detectors": ["all"], "suggest": 2, "options": {"neighbors": 3}, **SETTINGS}


@pytest.fixture
def one_thread():
    """Each Ray CPU actor has one CPU, so one torch thread; a CPU matmul's rounding can depend on the
    thread count (some shapes are split differently), so the local engine runs on one thread too."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_ray_engine_scores_equal_the_local_engine_row_by_row(tmp_path, one_thread):
    df, _ = noise.inject(synth.generate(20, size=32), 0.4, "caption-shuffle", seed=1)
    write_table(df, tmp_path / "data.parquet", row_group_size=40)  # 100 rows: 3 row groups, 3 shards
    torch.manual_seed(0)
    recipe = load_recipe("demo", ["train.batch_size=20", "loss.use_local=true"])
    save_checkpoint({"model": create_model("nctool-tiny").state_dict(), "config": recipe.to_dict()},
                    tmp_path / "model.pt")
    local = embed(tmp_path / "data.parquet", model=ModelSource(checkpoint=tmp_path / "model.pt"),
                  out=tmp_path / "local", **SETTINGS)
    score(tmp_path / "data.parquet", embeddings=tmp_path / "local", out=tmp_path / "local.parquet", **SCORING)
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        summary = score(tmp_path / "data.parquet", model=ModelSource(checkpoint=tmp_path / "model.pt"),
                        engine=RayEngine(workers=2), out=tmp_path / "ray.parquet", **SCORING)
        assert summary["embedded"]["out"] == str(tmp_path / "ray.embeddings")  # the default folder, beside --out
        assert summary["embedded"]["computed"] == local["computed"] == [0, 1, 2]
        # an interrupted run: only the missing shard is computed again
        (tmp_path / "ray.embeddings" / "shard-00001.parquet").unlink()
        again = embed(tmp_path / "data.parquet", model=ModelSource(checkpoint=tmp_path / "model.pt"),
                      engine=RayEngine(workers=2), out=tmp_path / "ray.embeddings",
                      **SETTINGS)
        assert (again["computed"], again["reused"], again["invalidated"]) == ([1], 2, None)
    finally:
        ray.shutdown()
    # The actors run the same code on the same chunks as the local engine (measure.measure over each row
    # group), on the same CPU kernels and thread count, so no tolerance is needed: the shards and the
    # scores are equal to the bit.
    for shard in ("shard-00000.parquet", "shard-00001.parquet", "shard-00002.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "ray.embeddings" / shard),
                                      pd.read_parquet(tmp_path / "local" / shard), check_exact=True)
    ray_scores, local_scores = pd.read_parquet(tmp_path / "ray.parquet"), pd.read_parquet(tmp_path / "local.parquet")
    assert len(ray_scores) == len(detector_names()) * 80  # every detector, every train pair
    pd.testing.assert_frame_equal(ray_scores, local_scores, check_exact=True)
