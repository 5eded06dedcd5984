"""The Ray engine of `nctool embed` / `score --engine ray`: a Ray Data actor pool that writes shards.

`RayEngine` holds the engine's settings, checked once. Each actor builds the model once (its
nctool.detect.measure.ModelSource) and receives the driver's reference pool once; it writes each row
group it is handed with the shard writer and job the caller passes in (nctool.detect.shards.write_shard),
so this module knows nothing of the shard format.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from nctool.config import ENGINES
from nctool.detect.measure import Embedder, ModelSource, ReferencePool
from nctool.errors import NctoolError

ShardWrite = Callable[[Embedder, ReferencePool, Any, int], tuple[int, str]]
"""Writes the shard of one row group (embedder, pool, the caller's job, row group); returns its (rows, sha256)."""


@dataclass(frozen=True)
class RayEngine:
    """Embedding by a Ray Data actor pool, checked when made (and Ray must be installed).

    `address`: the cluster to join (ray.init's address); default: the running one, else a new local
    one. `workers`: actors in the pool; default: the cluster's GPUs / gpus_per_worker, or its CPUs.
    `gpus_per_worker`: GPUs per actor (fractions share a GPU; 0: CPU actors); default 1 when the
    cluster has a GPU, else 0.
    """

    address: str | None = None
    workers: int | None = None
    gpus_per_worker: float | None = None

    def __post_init__(self):
        if self.workers is not None and self.workers < 1:
            raise NctoolError(f"workers {self.workers}: must be at least 1")
        if self.gpus_per_worker is not None and self.gpus_per_worker < 0:
            raise NctoolError(f"gpus per worker {self.gpus_per_worker:g}: must be at least 0 (0: CPU workers)")
        import_ray()

    @classmethod
    def from_flags(cls, engine: str, address: str | None = None, workers: int | None = None,
                   gpus_per_worker: float | None = None) -> RayEngine | None:
        """The engine the command-line flags name: None for the local one (which takes no Ray flag)."""
        if engine not in ENGINES:
            raise NctoolError(f"engine '{engine}': unknown; choose from {', '.join(ENGINES)}")
        if engine == "ray":
            return cls(address, workers, gpus_per_worker)
        given = [flag for flag, value in (("--address", address), ("--workers", workers),
                                          ("--gpus-per-worker", gpus_per_worker)) if value is not None]
        if given:
            raise NctoolError(f"{given[0]}: only with --engine ray; drop it or add --engine ray")
        return None


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


def ray_shards(ray, engine: RayEngine, job: Any, pool: ReferencePool, todo: list[int], write: ShardWrite, *,
               gpus: float, model: ModelSource, root: Path, batch_size: int) -> Iterator[tuple[int, int, str]]:
    """Write the shards of `todo` with a Ray Data actor pool; yields (row group, rows, sha256) as each finishes.

    `job` goes to `write` as it is. Paths go to the actors absolute (they may run in another folder);
    the model files, the data file and the output folder must be reachable from every node (a shared
    file system).
    """
    workers = engine.workers
    if workers is None:
        resources = ray.cluster_resources()
        workers = max(1, int(resources.get("GPU", 0) // gpus) if gpus else int(resources.get("CPU", 1)))
    actor = {"job": job, "write": write, "model": model.resolved(), "root": Path(root).resolve(),
             "batch_size": batch_size, "gpus": gpus}
    pool_ref = ray.put(pool.to("cpu"))
    groups = ray.data.from_items([{"row_group": group} for group in todo], override_num_blocks=len(todo))
    # the pool goes to the object store once; inside a list its reference reaches each actor as it is, and
    # the actor fetches it (ray.get) once
    written = groups.map_batches(ShardWriter, fn_constructor_kwargs={**actor, "pool": [pool_ref]},
                                 batch_size=1, compute=ray.data.ActorPoolStrategy(size=min(workers, len(todo))),
                                 num_gpus=gpus or None, num_cpus=None if gpus else 1)
    for row in written.iter_rows():
        yield int(row["row_group"]), int(row["rows"]), str(row["sha256"])


class ShardWriter:
    """A Ray Data actor: loads the model and the reference pool once, then writes each shard it is handed.

    Called with a batch {"row_group": [g, ...]}; returns {"row_group", "rows", "sha256"} of the shards written.
    """

    def __init__(self, job: Any, pool: list, write: ShardWrite, model: ModelSource, root: Path, batch_size: int,
                 gpus: float):
        import ray

        device = torch.device("cuda" if gpus > 0 and torch.cuda.is_available() else "cpu")
        scorer, _ = model.load(device)
        self.embedder = Embedder.of(scorer, root, batch_size, device)
        self.pool = ray.get(pool)[0].to(device)  # the driver's pool: its members' numbers are not recomputed here
        self.job, self.write = job, write

    def __call__(self, batch: dict) -> dict:
        groups = [int(group) for group in batch["row_group"]]
        written = [self.write(self.embedder, self.pool, self.job, group) for group in groups]
        return {"row_group": np.array(groups), "rows": np.array([rows for rows, _ in written]),
                "sha256": np.array([sha256 for _, sha256 in written])}
