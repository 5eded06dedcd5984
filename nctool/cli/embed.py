"""`nctool embed`: embed every scored pair once into Parquet shards that `nctool score --embeddings` reads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nctool.cli._ui import app, console_err, progress_bar
from nctool.cli.score import (
    AddressFlag,
    BatchSizeFlag,
    CheckpointFlag,
    DeviceFlag,
    Engine,
    EngineFlag,
    GpusFlag,
    ImageRootFlag,
    ModelFlag,
    PoolFlag,
    PretrainedFlag,
    RecipeFlag,
    RepeatsFlag,
    SeedFlag,
    SplitFlag,
    WorkersFlag,
    report_embedded,
)


@app.command("embed")
def embed_command(
    data: Annotated[Path, typer.Argument(help="Dataset Parquet in nctool's schema (docs/schema.md).")],
    out: Annotated[Path, typer.Option(
        help="Embeddings folder: manifest.json and one shard per row group (docs/schema.md, Embeddings); a rerun "
             "computes only the shards it lacks.")],
    checkpoint: CheckpointFlag = None,
    model: ModelFlag = None,
    pretrained: PretrainedFlag = None,
    recipe: RecipeFlag = None,
    split: SplitFlag = ["train"],
    image_root: ImageRootFlag = None,
    batch_size: BatchSizeFlag = 256,
    device: DeviceFlag = None,
    seed: SeedFlag = 0,
    repeats: RepeatsFlag = 5,
    pool: PoolFlag = 1000,
    engine: EngineFlag = Engine("local"),
    address: AddressFlag = None,
    workers: WorkersFlag = None,
    gpus_per_worker: GpusFlag = None,
) -> None:
    """Embed every pair once (similarity, rrsitr loss, image and caption embeddings) for `nctool score --embeddings`."""
    from nctool.detect.measure import ModelSource, PoolSpec
    from nctool.detect.ray import RayEngine
    from nctool.detect.shards import embed

    source = ModelSource.from_flags(checkpoint, model, pretrained, recipe)
    ray_engine = RayEngine.from_flags(engine.value, address, workers, gpus_per_worker)
    try:
        with progress_bar() as progress:
            result = embed(data, out=out, model=source, pool=PoolSpec(seed, repeats, pool), splits=split,
                           image_root=image_root, batch_size=batch_size, device=device, engine=ray_engine,
                           progress=progress)
    except KeyboardInterrupt:
        console_err.print(f"interrupted: the shards finished so far stay in {out}: run the same command to continue",
                          highlight=False, soft_wrap=True)
        raise typer.Exit(130)
    report_embedded(result)
    typer.echo(f"next: nctool score {data} --embeddings {out} --detector all --out scores.parquet")
