"""Score every pair of a dataset with one model and a set of detectors (`nctool score`).

The model is a trained one (a checkpoint of `nctool train`, with its recipe) or, zero-shot, any
open_clip model with the weights given (nctool.detect.measure.ModelSource); a zero-shot model's rrsitr
loss takes its settings and reference batch size from a recipe (default `rsitmd`, the paper's).

The model embeds each scored pair once; the detectors (nctool.detect.detectors) all read that same `Evidence`
(nctool.detect.measure). The input is streamed a row group at a time (in slices of at most CHUNK_ROWS rows):
each chunk's unique images are decoded (nctool.model.batches.PairData) and embedded in batches of `batch_size`
rows (`measure`), and local (token-level) features live only for the batch at hand. `nctool embed`
(nctool.detect.shards) runs the same `measure` on the same chunks and writes one shard per row group, so
scoring from those shards (`embeddings`) gives exactly the scores of scoring directly. What is kept per pair
is a few numbers (similarity, loss) plus, only when the `neighbors` detector runs or fixes are suggested
(`suggest`), the pair's global image and caption embeddings (N x D floats each, e.g.
2 x 100,000 x 512 x 4 B = 410 MB), which the neighbour search and the suggestions need; they are kept on the
scoring device (GPU memory under CUDA), where those searches then run, in chunks.

Output: one Parquet in long format, one row per (pair, detector), sorted by pair_id within each
detector, with `detector` naming the detector and `row_hash` the hash of the image and caption that
were judged (docs/schema.md, "Scores"; nctool.curate.filtering.SCORE_COLUMNS). With `suggest` K > 0, every
row of a flagged pair (labelled noisy or ambiguous by any chosen detector) carries its suggested
fixes (nctool.detect.suggest.SUGGESTION_COLUMNS: the K best other captions for its image, the K best other
images for its caption); those columns are null on the other rows and when K is 0. The output is
checked before any work and written atomically. Its Parquet key-value metadata `nctool.noise_share`
(nctool.schema.NOISE_SHARE_KEY) holds, as JSON keyed by detector name, what each detector states:
the share of noisy pairs with its interval, and its clean and noisy sets' estimated error
(nctool.detect.calibration; docs/labels.md).
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from nctool import runtime
from nctool.data.images import resolve_root
from nctool.detect import shards
from nctool.detect.detectors import Evidence, detector_options, make_detectors
from nctool.detect.measure import (
    NO_MODEL,
    Embedder,
    ModelSource,
    PoolSpec,
    assemble_evidence,
    build_pool,
    check_at_least,
    measure,
    pool_ids,
    read_index,
    scored_chunks,
)
from nctool.detect.ray import RayEngine
from nctool.detect.suggest import SUGGESTION_COLUMNS, suggestions
from nctool.errors import NctoolError
from nctool.metrics import detection_table, label_table, statement_table
from nctool.model.checkpoint import read_checkpoint
from nctool.model.train import image_folds
from nctool.progress import Progress, silent
from nctool.schema import (
    NOISE_SHARE_KEY,
    TableWriter,
    check_output,
    check_splits,
    hex_row_hashes,
    pair_id_hashes,
    row_group_count,
)

OUTPUT_ROWS = 4096  # scores written at a time (one row group of the scores file)


def score(data_path: str | os.PathLike, *, out: str | os.PathLike, model: ModelSource | None = None,
          embeddings: str | os.PathLike | None = None, engine: RayEngine | None = None,
          detectors: Sequence[str] = ("rrsitr",), splits: Sequence[str] = ("train",),
          image_root: str | os.PathLike | None = None, batch_size: int = 256, device: str | None = None,
          pool: PoolSpec = PoolSpec(), options: Mapping[str, Any] | None = None, suggest: int = 0,
          progress: Progress = silent) -> dict:
    """Score the pairs of `splits` with the chosen detectors and write the scores file `out`.

    Parameters
    ----------
    data_path
        Dataset Parquet in nctool's schema; null or empty captions are refused.
    out
        Where the scores go (atomic write); refused before any work when it is a folder or an input.
    model
        The model that scores (a checkpoint, whose recipe sets the loss and the reference batch size,
        or a zero-shot model with its weights and recipe). None with `embeddings`: score from that
        folder alone.
    embeddings
        A folder of `nctool embed` shards (nctool.detect.shards). Without a model it is only read, and
        must have been embedded from this data file with these splits, seed, repeats and pool_size
        (else NctoolError naming what differs). With a model it is first brought up to date by
        nctool.detect.shards.embed (only missing or outdated shards are computed), then read. None:
        the model embeds on the fly (local engine) or into nctool.detect.shards.default_folder(out) (Ray).
    engine
        Who embeds: None, this process; a RayEngine, its actors write the shards, then the detectors
        run here over them.
    detectors
        Registered detector names (nctool.detect.detectors.DETECTORS) or "all".
    splits
        The splits to score.
    image_root
        Folder for relative image paths; default: the one the data file records.
    batch_size
        Pairs per forward pass.
    device
        "cpu", "cuda", "cuda:N"; default: runtime.pick_device.
    pool
        The reference pool of the rrsitr loss; its seed also seeds the detectors' draws (Evidence.seed).
    options
        Detector options by name (nctool.detect.detectors.detector_options); each detector takes its own.
        With `tagger` (a word tagger file, nctool.model.tagger) the scored images are also read through it
        once, for the detectors that need it (Evidence.image_words; refused before any work if it is not one).
    suggest
        K > 0: give each flagged pair its K best other captions and K best other images
        (nctool.detect.suggest); 0: no suggestions (the columns are null).
    progress
        Callback progress(done, total, description).

    Returns
    -------
    dict
        `out`, `pairs`, `splits`, `detectors` (nctool.metrics.detection_table rows: label counts
        and, when the data has a `noisy` column, the detection metrics) and `labels`
        (nctool.metrics.label_table rows; empty without ground truth) and `noise_share` (one row per
        detector that estimates it: `detector`, `estimate`, `low`, `high`, `level` and, with ground
        truth, nctool.metrics.statement_table's `truth`, `clean_truth` and `noisy_truth`); `embedded`: the summary of
        nctool.detect.shards.embed when this run embedded into a folder, else None; `in_sample`: the share of the
        scored pairs that the one checkpoint scoring them trained on (above 0: the stated figures are in
        sample and run low), None when unknown (an out-of-fold run, or a checkpoint without that record).
    """
    if model is None and (embeddings is None or engine is not None):
        raise NctoolError(f"score: {NO_MODEL}")
    files = model.files if model is not None else ()
    check_output(out, data_path, *files, embeddings)  # nor inside the embeddings folder it reads
    if embeddings is not None and model is not None:  # it embeds into the folder first
        check_output(embeddings, data_path, *files, folder=True)
    chosen = make_detectors(detectors, options)
    splits = check_splits(splits)
    check_at_least("batch size", batch_size, 1)
    check_at_least("suggest", suggest, 0)
    folds = model.fold_runs() if model is not None else None  # an out-of-fold run: its fold models
    if folds is not None:
        _check_out_of_fold(model, chosen, suggest, engine, embeddings)
    needs = set().union(*(detector.needs for detector in chosen))
    tagger = None
    if (options or {}).get("tagger") is not None and "tags" not in needs:  # else it would be silently unused
        readers = detector_options()["tagger"][1]
        raise NctoolError(f"--tagger: only the {' and '.join(readers)} detectors read a tagger; add "
                          f"--detector {readers[0]} (or --detector all)")
    if "tags" in needs:  # loaded before any work, so a wrong file is refused at once
        from nctool.model.tagger import image_word_probabilities, load_tagger

        check_output(out, options["tagger"])
        tagger = load_tagger(options["tagger"])
    index = read_index(data_path, splits, fingerprint=embeddings is not None or engine is not None or folds is not None,
                       captions=suggest > 0 or "captions" in needs)
    dev = runtime.pick_device(device)
    keep_embeddings = "embeddings" in needs or suggest > 0  # the pool (loss and decoys) is always measured
    embedded = None
    if embeddings is None and engine is not None:
        embeddings = shards.default_folder(out)
    if embeddings is None:
        sources = [(model, index.scored_ids)] if folds is None else _fold_sources(model, folds, index)
        evidence, facts = _collect(data_path, splits, sources, pool=pool, image_root=image_root, batch_size=batch_size,
                                   device=dev, keep_embeddings=keep_embeddings, progress=progress)
    else:
        if model is not None:
            embedded = shards.embed(data_path, out=embeddings, model=model, pool=pool, splits=splits,
                                    image_root=image_root, batch_size=batch_size, device=device, engine=engine,
                                    progress=progress)
        evidence, facts = shards.read_evidence(embeddings, data_path, index, splits=splits, pool=pool,
                                               device=dev, keep_embeddings=keep_embeddings)
    captions = index.captions
    in_sample = _in_sample_share(model, folds, index.scored_ids)
    del index  # the scored ids are in the evidence now
    if "captions" in needs:
        evidence.caption = captions.loc[evidence.pair_id].to_numpy()
    if tagger is not None:
        evidence.image_words = image_word_probabilities(tagger, data_path, evidence.image_id, image_root=image_root,
                                                        device=dev, progress=progress)
    frames, shares = [], {}
    for i, detector in enumerate(chosen):
        frames.append(detector.detect(evidence))
        if "noise_share" in frames[-1].attrs:
            shares[detector.name] = frames[-1].attrs["noise_share"]
        progress(i + 1, len(chosen), "detectors")
    suggested = None
    if suggest:
        flagged = np.any([frame["label"].to_numpy() != "clean" for frame in frames], axis=0)
        suggested = suggestions(evidence, captions.loc[evidence.pair_id].to_numpy(), flagged, k=suggest)
    if in_sample:  # said with every statement, so that whoever reads the file (review, gallery) can say it
        shares = {name: {**stated, "in_sample": round(in_sample, 4)} for name, stated in shares.items()}
    _write_scores(out, frames, facts["row_hash"], suggested, metadata={NOISE_SHARE_KEY: json.dumps(shares)})
    truth = pd.Series(facts["noisy"], index=evidence.pair_id) if "noisy" in facts else None
    if truth is None:
        share_rows = [{"detector": name, **share} for name, share in shares.items()]
    else:
        share_rows = [row for frame in frames for row in statement_table(frame, shares, truth)]
    return {"out": str(out), "pairs": len(evidence.pair_id), "splits": splits,
            "detectors": [row for frame in frames for row in detection_table(frame, truth)],
            "labels": [row for frame in frames for row in label_table(frame, truth)], "noise_share": share_rows,
            "embedded": embedded, "in_sample": in_sample}


def _in_sample_share(model: ModelSource | None, folds, scored_ids: np.ndarray) -> float | None:
    """The share of the scored pairs that the one checkpoint scoring them trained on (its noisy pairs, learned,
    look cleaner than fresh decoys: figures in sample run low, docs/labels.md); None when unknown: no
    checkpoint, an out-of-fold run (each pair is scored by a model that did not see it), or a checkpoint
    that keeps no record of its pairs."""
    if model is None or model.checkpoint is None or folds is not None:
        return None
    # mapped, not read: the weights were loaded to score, and a second copy would double the peak memory
    trained = read_checkpoint(model.checkpoint, mmap=True).get("trained_pairs")
    if not isinstance(trained, torch.Tensor):  # older checkpoints kept no record, or a digest of the set
        return None
    return float(np.isin(pair_id_hashes(scored_ids), trained.numpy()).mean()) if len(scored_ids) else 0.0


def _write_scores(out: str | os.PathLike, frames: list[pd.DataFrame], row_hash: np.ndarray,
                  suggested: pd.DataFrame | None, metadata: dict[str, str]) -> None:
    """Write the detectors' frames (each in evidence order) one after the other, a row group at a time,
    with each row's `row_hash` and its suggestions (null without `suggested`), atomically."""
    # a detector's own: NaN elsewhere
    columns = list(dict.fromkeys(column for frame in frames for column in frame.columns))
    by_pair = None if suggested is None else suggested.set_index("pair_id")  # indexed once, looked up per row group
    with TableWriter(out, metadata=metadata) as writer:
        for frame in frames:
            for start in range(0, len(frame), OUTPUT_ROWS):
                part = frame.iloc[start:start + OUTPUT_ROWS].reindex(columns=columns)
                part.insert(1, "row_hash", hex_row_hashes(row_hash[start:start + OUTPUT_ROWS]))
                if by_pair is None:
                    part = part.assign(**dict.fromkeys(SUGGESTION_COLUMNS))
                else:
                    part = part.join(by_pair, on="pair_id")
                writer.write(part)


def _check_out_of_fold(model: ModelSource, chosen: list, suggest: int, engine: RayEngine | None,
                       embeddings: str | os.PathLike | None) -> None:
    """Refuse what an out-of-fold run cannot do: its fold models' embeddings cannot be compared with each
    other (neighbours, suggestions) nor come from one embeddings folder or Ray job."""
    mixing = [name for name in ("neighbors",) if name in {detector.name for detector in chosen}]
    mixing += ["--suggest"] * (suggest > 0) + ["--engine ray"] * (engine is not None)
    mixing += ["--embeddings"] * (embeddings is not None)
    if mixing:
        raise NctoolError(f"--checkpoint {model.checkpoint}: an out-of-fold run scores each fold with its own model, "
                          f"whose embeddings the others cannot compare; drop {', '.join(mixing)}")


def _fold_sources(model: ModelSource, runs: tuple[list[ModelSource], dict],
                  index) -> list[tuple[ModelSource, np.ndarray]]:
    """An out-of-fold run's (fold model, the scored pair ids of its fold) pairs.

    Each pair goes to the model of its image's fold (nctool.model.train.image_folds): the one that did
    not train on it (val and test pairs: no model did)."""
    sources, manifest = runs
    if manifest["data"] != index.fingerprint:
        raise NctoolError(f"--checkpoint {model.checkpoint}: its folds were trained on another version of the data; "
                          f"train them on this file with `nctool train DATA --folds {manifest['folds']}`")
    fold = image_folds(index.image_ids, manifest["folds"])
    return [(source, index.scored_ids[fold == k]) for k, source in enumerate(sources) if (fold == k).any()]


def _collect(data_path: str | os.PathLike, splits: list[str], sources: list[tuple[ModelSource, np.ndarray]], *,
             pool: PoolSpec, image_root, batch_size: int, device: torch.device, keep_embeddings: bool,
             progress: Progress) -> tuple[Evidence, dict]:
    """Direct scoring, for each (model, the pair ids it scores): load the model, embed its reference pool
    (the loss's batches and the decoys' captions, drawn from its own pairs), then stream its rows once, a row
    group at a time (`scored_chunks`, `measure`); returns assemble_evidence's over every model's pairs."""
    parts, pools, done, total = [], [], 0, sum(len(ids) for _, ids in sources)
    for model, scored_ids in sources:
        scorer, settings = model.load(device)
        embed = Embedder.of(scorer, resolve_root(data_path, image_root), batch_size, device)
        mine = set(scored_ids) if len(sources) > 1 else None
        ids = pool_ids(scored_ids, pool.seed, pool.pool_size)
        reference = build_pool(embed, data_path, ids, settings, pool, progress)
        offset = sum(len(earlier) for earlier in pools)  # this model's pool positions among all the pools
        with torch.inference_mode():
            for group in range(row_group_count(data_path)):
                for chunk in scored_chunks(data_path, splits, group):
                    if mine is not None:
                        chunk = chunk[chunk["pair_id"].isin(mine)]
                        if chunk.empty:
                            continue
                    part = measure(embed, reference, chunk, keep_embeddings=keep_embeddings,
                                   progress=lambda rows, done=done: progress(done + rows, total, "score pairs"))
                    for name in ("decoy_partner", "scene_decoy_partner"):  # -1 stays: no decoy
                        part[name] = torch.where(part[name] >= 0, part[name] + offset, part[name])
                    parts.append(part)
                    done += len(chunk)
        pools.append(ids)
    return assemble_evidence(parts, loss_thresholds=reference.thresholds, seed=pool.seed,
                             pool_pair_ids=np.concatenate(pools))
