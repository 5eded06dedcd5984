"""Embeddings as shards (`nctool embed`), scoring from them (`nctool score --embeddings`), and the Ray engine.

`embed` runs the model once over the scored pairs and writes, per pair, everything the detectors
read (nctool.detect.detectors.Evidence): the similarity, the rrsitr loss and its spread over the reference
batches, and the global image and caption embeddings. The reference pool is chosen over all the
scored pairs and embedded once, before any shard, exactly as direct scoring does it; each shard then
holds the pairs of one row group of the data file, measured by nctool.detect.measure.measure on the same
chunks as direct scoring, so scores read from the shards equal the direct ones.

A folder holds `manifest.json` and `shard-00000.parquet`, ... (one per row group, written
atomically; docs/schema.md, "Embeddings"). The manifest records what the shards depend on (the
model's weights and recipe, the data file's fingerprint and row groups, the splits, seed, repeats,
pool size and precision); its hash, the run key, is in every shard's Parquet metadata. A rerun keeps
the shards that carry the current key and computes the others, so an interrupted run continues
where it stopped; a changed model, data file or setting invalidates every shard of the folder.

Engines: "local" writes the shards in this process; "ray" hands them to a Ray Data actor pool
(`map_batches` with a callable class: each actor loads the model once, on a GPU when it is given
one), the pool's embeddings going to the actors once through the object store. Ray is imported only
here, when that engine is chosen. The detectors, which need every pair at once (mixtures,
calibration, neighbours), always run in the scoring process over the gathered shards
(docs/scaling.md).
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from nctool import runtime
from nctool.config import Recipe
from nctool.data.images import resolve_root
from nctool.detect.detectors import Evidence
from nctool.detect.measure import (
    NO_MODEL,
    DataIndex,
    Embedder,
    ModelSource,
    PoolSpec,
    ReferencePool,
    assemble_evidence,
    build_pool,
    check_at_least,
    measure,
    pool_ids,
    read_index,
    reference_batch_size,
    scored_chunks,
)
from nctool.detect.ray import RayEngine, gpus_per_worker, ray_session, ray_shards
from nctool.errors import NctoolError
from nctool.model import losses
from nctool.progress import Progress, silent
from nctool.schema import atomic_path, check_output, check_splits, column_names, row_group_count, write_json

FORMAT = "nctool-embeddings"
FORMAT_VERSION = 5  # 2: row_hash as uint64; 3: each shard's sha256 in the manifest; 4: decoys; 5: same-scene decoys
MANIFEST = "manifest.json"
KEY = b"nctool.embeddings_key"  # shard metadata: the run key of the manifest the shard was written for
# measure()'s embeddings -> shard columns; every other shard column has measure()'s name
MEASURES = ("similarity", "loss", "loss_std", "decoy_similarity", "decoy_loss",  # measure()'s per-pair numbers
            "scene_decoy_similarity", "scene_decoy_loss")
VECTOR_COLUMNS = {"image_global": "image_embedding", "text_global": "caption_embedding"}
# run settings the reader must ask for too -> their flag
SETTING_FLAGS = {"splits": "--split", "seed": "--seed", "repeats": "--repeats", "pool_size": "--pool"}


def shard_name(row_group: int) -> str:
    """The file of the shard of one row group: shard-00000.parquet, ..."""
    return f"shard-{row_group:05d}.parquet"


def default_folder(out: str | os.PathLike) -> Path:
    """Where `score --engine ray` keeps its shards without --embeddings: beside `out`, suffix .embeddings."""
    return Path(out).with_suffix(".embeddings")


@dataclass(frozen=True)
class ShardJob:
    """What writing one shard needs besides the model and the pool (absolute paths: Ray actors may run
    in another folder)."""

    data_path: str
    splits: list[str]
    folder: str
    key: str  # the run key each shard stores in its metadata


def embed(data_path: str | os.PathLike, *, out: str | os.PathLike, model: ModelSource | None = None,
          pool: PoolSpec = PoolSpec(), splits: Sequence[str] = ("train",), image_root: str | os.PathLike | None = None,
          batch_size: int = 256, device: str | None = None, engine: RayEngine | None = None,
          progress: Progress = silent) -> dict:
    """Embed and measure the pairs of `splits` into a folder of shards, one per row group of the data file.

    Parameters
    ----------
    data_path
        Dataset Parquet in nctool's schema.
    out
        The folder: new, empty, or one this function wrote (anything else is refused). Shards that
        carry the current run key are kept; with another model, data file or setting, every shard
        is recomputed.
    model, pool, splits, image_root, batch_size, device
        As nctool.detect.score.score takes them (`device`: where this process embeds the reference pool
        and, with the local engine, the shards); `model` None is refused.
    engine
        None: this process writes the shards; a RayEngine: its actor pool does.
    progress
        Callback progress(done, total, description).

    Returns
    -------
    dict
        `out` (the folder), `pairs` (scored pairs), `shards` (how many the folder holds),
        `computed` (row groups whose shard this run wrote), `reused` (shards kept) and `invalidated`
        (why the folder's earlier shards were dropped; None when they were not).
    """
    if model is None:
        raise NctoolError(f"embed: {NO_MODEL}")
    if model.fold_runs() is not None:
        raise NctoolError(f"--checkpoint {model.checkpoint}: an out-of-fold run scores each fold with its own model; "
                          f"score it directly with `nctool score --checkpoint {model.checkpoint}`, without embed")
    splits = check_splits(splits)
    check_at_least("batch size", batch_size, 1)
    folder = check_output(out, data_path, *model.files, folder=True)
    previous = _read_manifest(folder)
    index = read_index(data_path, splits, fingerprint=True)
    scored_ids = index.scored_ids
    data = {"fingerprint": index.fingerprint, "row_groups": row_group_count(data_path)}
    dev = runtime.pick_device(device)
    scorer, settings = model.load(dev)
    with ray_session(engine.address) if engine is not None else nullcontext() as ray:
        gpus = gpus_per_worker(ray, engine.gpus_per_worker) if ray else 0.0
        precision = "bfloat16 autocast" if (gpus > 0 if ray else dev.type == "cuda") else "float32"
        identity = {"format": FORMAT, "version": FORMAT_VERSION, "model": _model_identity(model, settings),
                    "data": data, "settings": {"splits": splits, **asdict(pool), "precision": precision}}
        key = hashlib.blake2b(json.dumps(identity, sort_keys=True).encode(), digest_size=16).hexdigest()
        invalidated, stale = None, previous is not None and previous.get("key") != key
        if stale:
            invalidated = f"made with another {_difference(previous, identity)}; recomputed every shard"
            for shard in folder.glob("shard-*.parquet"):
                shard.unlink()
        done, edited = _finished(folder, None if stale else previous, data["row_groups"])
        if edited:  # a shard whose bytes are not the ones written (and recorded) is made again
            invalidated = f"edited since they were written ({', '.join(map(shard_name, edited))}); re-embedded those"
        todo = [group for group in range(data["row_groups"]) if group not in done]
        ids = pool_ids(scored_ids, pool.seed, pool.pool_size)
        manifest = previous if previous is not None and not stale else {
            **identity, "key": key,
            "pool": {"pairs": len(ids), "ids_sha256": hashlib.sha256("\0".join(ids).encode()).hexdigest()},
            "loss_thresholds": list(losses.recipe_thresholds(  # as ReferencePool.thresholds, before the pool exists
                settings.loss, reference_batch_size(settings.train.batch_size, len(ids))))}
        manifest["sources"] = {"data": str(data_path), "checkpoint": model.checkpoint and str(model.checkpoint),
                               "pretrained": model.pretrained and str(model.pretrained),
                               "engine": "local" if engine is None else "ray"}
        _write_manifest(folder, manifest, done)
        if todo:
            embedder = Embedder.of(scorer, resolve_root(data_path, image_root), batch_size, dev)
            job = ShardJob(str(Path(data_path).resolve()), splits, str(folder.resolve()), key)
            reference = build_pool(embedder, data_path, ids, settings, pool, progress)
            manifest["dim"] = int(reference.embeddings.text_global.shape[1])
            if ray:
                del scorer, embedder
                shards = ray_shards(ray, engine, job, reference, todo, write_shard, gpus=gpus, model=model,
                                    root=resolve_root(data_path, image_root), batch_size=batch_size)
            else:
                shards = ((group, *write_shard(embedder, reference, job, group)) for group in todo)
            for count, (group, rows, sha256) in enumerate(shards, 1):
                done[group] = {"rows": rows, "sha256": sha256}
                _write_manifest(folder, manifest, done)
                progress(count, len(todo), "embed shards")
    return {"out": str(folder), "pairs": len(scored_ids), "shards": data["row_groups"], "computed": todo,
            "reused": data["row_groups"] - len(todo), "invalidated": invalidated}


def read_evidence(folder: str | os.PathLike, data_path: str | os.PathLike, index: DataIndex, *,
                  splits: list[str], pool: PoolSpec, device: torch.device,
                  keep_embeddings: bool) -> tuple[Evidence, dict]:
    """The Evidence of a finished embeddings folder (what nctool.detect.measure.assemble_evidence returns).

    `index` is that of `data_path`, with its fingerprint (nctool.detect.measure.read_index). Refused in
    one line when the folder was embedded from other data or with other splits, seed, repeats or pool
    size, or when a shard is missing. The embeddings go to `device`, and are read only with `keep_embeddings`.
    """
    folder = Path(folder)
    manifest = _read_manifest(folder)
    if manifest is None:
        raise NctoolError(f"{folder}: no embeddings there; write them with `nctool embed {data_path} --checkpoint CK "
                          f"--out {folder}`, or score with --checkpoint to embed on the fly")
    again = f"`nctool embed {data_path} --out {folder}` and its model"
    if manifest.get("version") != FORMAT_VERSION:
        raise NctoolError(f"{folder}: written in embeddings format version {manifest.get('version')}, this nctool "
                          f"reads version {FORMAT_VERSION}; re-embed it with {again}")
    data = {"fingerprint": index.fingerprint, "row_groups": row_group_count(data_path)}
    if manifest["data"] != data:
        raise NctoolError(f"{folder}: embedded from another version of the data than {data_path} (its fingerprint or "
                          f"row groups differ); re-embed it with {again}")
    asked = {"splits": splits, **asdict(pool)}
    for name, value in asked.items():
        if manifest["settings"][name] != value:
            made, wanted = _flags(name, manifest["settings"][name]), _flags(name, value)
            raise NctoolError(f"{folder}: embedded with {made}, this run asks for {wanted}; score with {made}, or "
                              f"re-embed: `nctool embed {data_path} --out {folder} {wanted}` with its model")
    done, edited = _finished(folder, manifest, data["row_groups"])
    if edited:
        raise NctoolError(f"{folder / shard_name(edited[0])}: changed since `nctool embed` wrote it (its sha256 is not "
                          f"the one in {MANIFEST}); re-embed it with {again} (it recomputes only the changed shards)")
    missing = [group for group in range(data["row_groups"]) if group not in done]
    if missing:
        raise NctoolError(f"{folder}: {len(missing)} of {data['row_groups']} shards not finished (first: "
                          f"{shard_name(missing[0])}); finish them with {again} (it computes only those)")
    columns = None if keep_embeddings else [name for name in pq.read_schema(folder / shard_name(0)).names
                                            if name not in VECTOR_COLUMNS.values()]
    parts = [_read_shard(folder / shard_name(group), columns, device) for group in range(data["row_groups"])
             if done[group]["rows"]]
    pool_pair_ids = pool_ids(index.scored_ids, pool.seed, pool.pool_size)
    return assemble_evidence(parts, loss_thresholds=tuple(manifest["loss_thresholds"]), seed=pool.seed,
                             pool_pair_ids=pool_pair_ids)


def write_shard(embedder: Embedder, pool: ReferencePool, job: ShardJob, row_group: int) -> tuple[int, str]:
    """Measure the scored pairs of one row group (nctool.detect.measure.measure) and write its shard atomically.

    Returns the shard's row count (0 for a row group without scored pairs: its shard is empty) and the
    sha256 of its file, which the manifest keeps.
    """
    with torch.inference_mode():
        parts = [measure(embedder, pool, chunk, keep_embeddings=True)
                 for chunk in scored_chunks(job.data_path, job.splits, row_group)]
    vector = pa.list_(pa.float32(), pool.embeddings.text_global.shape[1])
    schema = pa.schema([("pair_id", pa.string()), ("image_id", pa.string()), ("row_hash", pa.uint64())]
                       + [("noisy", pa.bool_())] * ("noisy" in column_names(job.data_path))
                       + [(name, pa.float32()) for name in MEASURES]
                       + [("decoy_partner", pa.int32()), ("scene_decoy_partner", pa.int32())]
                       + [(column, vector) for column in VECTOR_COLUMNS.values()], metadata={KEY: job.key.encode()})
    table = schema.empty_table() if not parts else pa.table(
        [_arrow(field, [part[_part_name(field.name)] for part in parts]) for field in schema], schema=schema)
    with atomic_path(Path(job.folder) / shard_name(row_group)) as tmp:
        pq.write_table(table, tmp, compression="zstd")
        sha256 = _sha256(tmp)
    return table.num_rows, sha256


def _arrow(field: pa.Field, values: list) -> pa.Array:
    """One shard column from measure()'s parts: numpy arrays, or tensors ([n] or [n, D]) on any device."""
    if isinstance(values[0], torch.Tensor):
        values = [(value.float() if value.is_floating_point() else value).cpu().numpy() for value in values]
    joined = np.concatenate(values)
    if pa.types.is_fixed_size_list(field.type):
        return pa.FixedSizeListArray.from_arrays(pa.array(joined.reshape(-1), pa.float32()), field.type.list_size)
    return pa.array(joined, field.type)


def _part_name(column: str) -> str:
    return {shard: part for part, shard in VECTOR_COLUMNS.items()}.get(column, column)


def _read_shard(path: Path, columns: list[str] | None, device: torch.device) -> dict:
    """A shard as a measure() output: numbers as float32 CPU tensors, embeddings [n, D] on `device`."""
    table = pq.read_table(path, columns=columns)
    part = {}
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if pa.types.is_fixed_size_list(column.type):
            vectors = column.flatten().to_numpy(zero_copy_only=False, writable=True)
            vectors = vectors.reshape(len(column), column.type.list_size)
            part[_part_name(name)] = torch.from_numpy(vectors).to(device)
        elif pa.types.is_floating(column.type):
            part[name] = torch.from_numpy(column.to_numpy(zero_copy_only=False, writable=True))
        elif pa.types.is_string(column.type):
            part[name] = column.to_numpy(zero_copy_only=False).astype(str)
        else:
            part[name] = column.to_numpy(zero_copy_only=False)
    return part


def _model_identity(model: ModelSource, settings: Recipe) -> dict:
    """What the embeddings depend on in the model: its name, weights (sha256 of the file, or the tag) and recipe."""
    weights = model.checkpoint if model.checkpoint is not None else model.pretrained
    file = weights is not None and Path(weights).is_file()
    return {"name": settings.model.name, "sha256": _sha256(weights) if file else None,
            "pretrained": None if file or weights is None else str(weights),
            "recipe": {"model": asdict(settings.model), "loss": asdict(settings.loss),
                       "batch_size": settings.train.batch_size}}


def _sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _difference(previous: dict, identity: dict) -> str:
    """What changed since the folder's shards were made, in words (the first difference)."""
    if previous.get("version") != identity["version"]:
        return f"format version ({previous.get('version')})"
    if previous.get("model") != identity["model"]:
        return "model (weights or recipe)"
    if previous.get("data") != identity["data"]:
        return "data file"
    made = previous.get("settings", {})
    changed = next((name for name in identity["settings"] if made.get(name) != identity["settings"][name]), None)
    if changed is None:
        return "run key"

    return f"{changed.replace('_', ' ')} ({_shown(made.get(changed))}, now {_shown(identity['settings'][changed])})"


def _flags(setting: str, value) -> str:
    """A run setting as the command-line flags that ask for it: `--seed 1`, `--split train --split val`."""
    return " ".join(f"{SETTING_FLAGS[setting]} {item}" for item in (value if isinstance(value, list) else [value]))


def _shown(value) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _read_manifest(folder: Path) -> dict | None:
    """The folder's manifest; None for a missing or empty folder; refuses anything else that is not ours."""
    if folder.exists() and not folder.is_dir():
        raise NctoolError(f"{folder}: is a file; give a folder for the embeddings (e.g. {folder.with_suffix('')}.emb/)")
    if not folder.is_dir() or not any(folder.iterdir()):
        return None
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise NctoolError(f"{folder}: not an nctool embeddings folder (no {MANIFEST} written by `nctool embed`); "
                          f"embed into a new or empty folder, and score from the folder `nctool embed` wrote")
    return manifest


def _write_manifest(folder: Path, manifest: dict, done: dict[int, dict]) -> None:
    manifest["shards"] = [{"file": shard_name(group), "row_group": group, **shard}
                          for group, shard in sorted(done.items())]
    write_json(manifest, folder / MANIFEST)


def _finished(folder: Path, manifest: dict | None, row_groups: int) -> tuple[dict[int, dict], list[int]]:
    """The shards of the folder's run that are as they were written, and the row groups of edited ones.

    Returns (row group -> {"rows", "sha256"} of each finished shard whose file still has the sha256
    the manifest recorded, the row groups whose file is there but has another sha256). A shard the
    manifest does not list (an embed stopped before it recorded the shard) is neither.
    """
    done, edited = {}, []
    recorded = {shard.get("row_group"): shard for shard in (manifest or {}).get("shards", [])
                if isinstance(shard, dict)}
    for group in range(row_groups):
        path, shard = folder / shard_name(group), recorded.get(group)
        if shard is None or not path.is_file():
            continue
        if _sha256(path) == shard.get("sha256"):
            done[group] = {"rows": shard["rows"], "sha256": shard["sha256"]}
        else:
            edited.append(group)
    return done, edited
