"""The Ray engine of `nctool embed` / `score --engine ray`: a Ray Data actor pool that writes shards.

Each actor builds the model once (nctool.detect.measure.scoring_model) and receives the driver's
reference pool once; it writes each row group it is handed with the shard writer the caller passes
in (nctool.detect.shards.write_shard), so this module knows nothing of the shard format.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from nctool.detect.measure import Embedder, ReferencePool, scoring_model
from nctool.errors import NctoolError
from nctool.model.transforms import preprocess_for

ShardWrite = Callable[[Embedder, ReferencePool, dict, int], tuple[int, str]]
"""Writes the shard of one row group; returns its (rows, sha256)."""


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data is the part nctool uses)
    except ImportError:
        raise NctoolError("--engine ray: Ray is not installed; pip install 'nctool[ray]'") from None
    return ray


@contextmanager
def ray_session(address: str | None):
    """Ray, joined (or started) for the block; only a session started here is shut down after it."""
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise NctoolError(f"--address {address}: no Ray cluster reached ({str(exc).splitlines()[0]}); start one "
                              f"with `ray start --head` or leave --address out for a local one") from None
    # the library reports through `progress`: no Ray Data progress bars or execution notes meanwhile
    context, logger = ray.data.DataContext.get_current(), logging.getLogger("ray.data")
    shown = context.enable_progress_bars, context.print_on_execution_start, logger.level
    context.enable_progress_bars = context.print_on_execution_start = False
    logger.setLevel(logging.ERROR)
    try:
        yield ray
    finally:
        context.enable_progress_bars, context.print_on_execution_start = shown[:2]
        logger.setLevel(shown[2])
        if started:
            ray.shutdown()


def gpus_per_worker(ray, requested: float | None) -> float:
    if requested is not None:
        return requested
    return 1.0 if ray.cluster_resources().get("GPU", 0) else 0.0


def ray_shards(ray, job: dict, pool: ReferencePool, todo: list[int], write: ShardWrite, *, workers: int | None,
               gpus: float, batch_size: int, model: dict, root: Path) -> Iterator[tuple[int, int, str]]:
    """Write the shards of `todo` with a Ray Data actor pool; yields (row group, rows, sha256) as each finishes.

    Paths go to the actors absolute (they may run in another folder); the model files, the data
    file and the output folder must be reachable from every node (a shared file system).
    """
    resources = ray.cluster_resources()
    if workers is None:
        workers = max(1, int(resources.get("GPU", 0) // gpus) if gpus else int(resources.get("CPU", 1)))
    model = {name: str(Path(value).resolve()) if value is not None and Path(value).exists() else value
             for name, value in model.items()}
    job = {**job, "model": model, "root": str(Path(root).resolve()), "batch_size": batch_size, "gpus": gpus}
    pool_ref = ray.put(pool.to("cpu"))
    groups = ray.data.from_items([{"row_group": group} for group in todo], override_num_blocks=len(todo))
    # the pool goes to the object store once; inside a list its reference reaches each actor as it is, and
    # the actor fetches it (ray.get) once
    written = groups.map_batches(ShardWriter, fn_constructor_kwargs={"job": job, "pool": [pool_ref], "write": write},
                                 batch_size=1, compute=ray.data.ActorPoolStrategy(size=min(workers, len(todo))),
                                 num_gpus=gpus or None, num_cpus=None if gpus else 1)
    for row in written.iter_rows():
        yield int(row["row_group"]), int(row["rows"]), str(row["sha256"])


class ShardWriter:
    """A Ray Data actor: loads the model and the reference pool once, then writes each shard it is handed.

    Called with a batch {"row_group": [g, ...]}; returns {"row_group", "rows", "sha256"} of the shards written.
    """

    def __init__(self, job: dict, pool: list, write: ShardWrite):
        import ray

        device = torch.device("cuda" if job["gpus"] > 0 and torch.cuda.is_available() else "cpu")
        scorer, _ = scoring_model(**job["model"], device=device)
        self.embedder = Embedder(scorer, preprocess_for(scorer), Path(job["root"]), job["batch_size"], device)
        self.pool = ray.get(pool)[0].to(device)  # the driver's pool: its members' numbers are not recomputed here
        self.job, self.write = job, write

    def __call__(self, batch: dict) -> dict:
        groups = [int(group) for group in batch["row_group"]]
        written = [self.write(self.embedder, self.pool, self.job, group) for group in groups]
        return {"row_group": np.array(groups), "rows": np.array([rows for rows, _ in written]),
                "sha256": np.array([sha256 for _, sha256 in written])}
