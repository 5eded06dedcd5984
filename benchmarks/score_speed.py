"""Scoring throughput against an honest ceiling: decoding alone, the encoder forward alone, end to end.

Usage:
    .venv/bin/python benchmarks/score_speed.py DATA --model nctool-tiny --recipe demo
    .venv/bin/python benchmarks/score_speed.py DATA --checkpoint runs/NAME/best.pt

All in one process on the same rows (the train split), repeated in rounds whose stages interleave;
each stage's median over the rounds is reported, as wall time and as this process's CPU time (on a
machine shared with other jobs the CPU time is the stable measure; with --threads 1 it is the work):

- read: the Parquet file; tokenize: the captions alone; decode + tokenize: PairData (each unique
  image decoded to the uint8 cache, captions tokenised), with 1 decode worker and with the default
  (nctool.model.batches.decode_workers);
- transform: the eval transform of each batch's unique images (uint8 cache -> normalised floats);
- forward: the image and text towers on those tensors, warm model, batched as scoring batches them
  (per `batch_size` rows: the rows' unique images, then their captions; local tokens when the
  recipe has the local term);
- rrsitr pool: embedding a `pool_size`-pair reference pool (ReferencePool: with its own pairs' numbers),
  and ReferencePool.losses of every batch;
- end to end: nctool.detect.score.score (library call: model load, reading, decoding, embedding,
  detectors, writing) per detector choice, and its PHASES, cut at its progress events.

--device (default: CUDA when present, as `nctool score`) places the forward, the pool and `score` on
the same device; on CUDA each timing ends with a synchronize (compare wall times there: CPU time is
the host's), and the peak GPU memory is reported. --json writes the medians for benchmarks/gpu.sh.
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from nctool import runtime
from nctool.data.images import resolve_root
from nctool.detect.detectors import detector_names
from nctool.detect.measure import ModelSource, PoolSpec, ReferencePool
from nctool.detect.score import score
from nctool.model.batches import PairData, decode_workers, encode_dataset
from nctool.model.transforms import preprocess_for
from nctool.schema import pair_hashes, read_table

# phases of an end-to-end run: (from the last progress event of, to the last of); None: the run's start
PHASES = {"model, reading, reference pool": (None, "reference pool"), "stream: decode, embed, losses": (
    "reference pool", "score pairs"), "detectors": ("score pairs", "detectors"), "writing": ("detectors", "end")}


def batches_of(data: PairData, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(unique images, rows) of each batch of rows, as scoring's encode_dataset calls take them."""
    return [(torch.unique(data.image_index[start:start + batch_size]), torch.arange(start, min(start + batch_size,
                                                                                                 len(data))))
            for start in range(0, len(data), batch_size)]


SYNC = []  # torch.cuda.synchronize when scoring on CUDA: a timing ends when the device's work does


def timed(work) -> tuple[tuple[float, float], object]:
    """((wall seconds, CPU seconds of this process), result) of work()."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    for sync in SYNC:
        sync()
    return (time.perf_counter() - wall, time.process_time() - cpu), result


def one_round(args, model, recipe, root: Path, out: Path, number: int) -> dict:
    seconds = {}
    preprocess = preprocess_for(model)
    local = recipe.loss.use_local
    seconds["read"], frame = timed(lambda: read_table(args.data, splits=["train"]))
    seconds["tokenize"], _ = timed(lambda: preprocess.tokenizer(frame["caption"].tolist()))
    for workers in (1, decode_workers())[::-1 if number % 2 else 1]:  # alternate which goes first
        seconds[f"decode + tokenize, {workers} worker(s)"], data = timed(
            lambda: PairData(frame, root, preprocess, workers=workers))
    batches = batches_of(data, args.batch_size)
    seconds["transform"], inputs = timed(lambda: [data.eval_transform(data.pixels[images]) for images, _ in batches])
    device = next(model.parameters()).device

    def forward():
        embedded = []
        with torch.inference_mode(), runtime.autocast(device):
            for pixels, (images, rows) in zip(inputs, batches):
                image, text = model.encode_image(pixels.to(device), local=local), model.encode_text(
                    data.tokens[rows].to(device), local=local)
                embedded.append({"image_global": image[0], "image_local": image[1], "text_global": text[0],
                                 "text_local": text[1],
                                 "caption_image_index": torch.searchsorted(images, data.image_index[rows]).to(
                                     device)})
        return embedded
    seconds["forward"], embedded = timed(forward)
    if "rrsitr" in args.detectors or "all" in args.detectors:
        ids = data.frame["pair_id"].to_numpy()
        pool_rows = torch.from_numpy(np.lexsort((ids, pair_hashes(ids, 0)))[:args.pool_size])  # score's pool

        def pool_embed():  # as nctool.detect.measure.Embedder: embedded on the device, kept there
            with runtime.autocast(device):
                embeddings = encode_dataset(model, data, pool_rows, batch_size=args.batch_size, device=device,
                                            local=local)
            embeddings = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in embeddings.items()}
            return ReferencePool(embeddings, data.frame["pair_id"].iloc[pool_rows].tolist(), loss_cfg=recipe.loss,
                                 batch_size=recipe.train.batch_size, repeats=args.repeats, seed=0)
        seconds["rrsitr pool: embed, measure its pairs"], pool = timed(pool_embed)

        def pool_losses():
            with torch.inference_mode():
                for rows, (_, indices) in zip(embedded, batches):
                    pool.losses(rows, data.frame["pair_id"].iloc[indices].tolist())
        seconds["rrsitr pool: losses of every batch"], _ = timed(pool_losses)
    for detector in args.detectors:
        events = []

        def progress(done, total, what):
            events.append((time.perf_counter(), time.process_time(), what))
        name = f"score --detector {detector}"
        start = time.perf_counter(), time.process_time()
        seconds[name], _ = timed(lambda: score(
            args.data, out=out, model=ModelSource(args.checkpoint, args.model, recipe=args.recipe),
            pool=PoolSpec(repeats=args.repeats, pool_size=args.pool_size), detectors=[detector],
            batch_size=args.batch_size, device=str(device), progress=progress))
        # the run's phases, cut at the last progress event of each (without a reference pool, no first phase)
        last = {None: start, "end": tuple(map(sum, zip(start, seconds[name])))}
        last.update({what.split(":")[0]: (wall, cpu) for wall, cpu, what in events})
        for phase, (begin, end) in PHASES.items():
            if end in last:
                begin = last.get(begin, start)
                seconds[f"{name}: {phase}"] = (last[end][0] - begin[0], last[end][1] - begin[1])
    return {"pairs": len(data), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--checkpoint")
    parser.add_argument("--model", help="zero-shot open_clip model (random weights: throughput does not need them)")
    parser.add_argument("--recipe", help="with --model: the loss settings (demo: global only; rsitmd: local term on)")
    parser.add_argument("--detector", dest="detectors", action="append", choices=[*detector_names(), "all"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--pool-size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch threads for every stage (default: torch's own)")
    parser.add_argument("--device", help="cpu, cuda, cuda:N (default: CUDA if present, as `nctool score`)")
    parser.add_argument("--json", help="also write the medians (wall, CPU seconds per stage) to this JSON file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.detectors = args.detectors or ["similarity", "rrsitr", "all"]
    device = runtime.pick_device(args.device)
    if device.type == "cuda":
        SYNC.append(lambda: torch.cuda.synchronize(device))
    model, recipe = ModelSource(args.checkpoint, args.model, recipe=args.recipe).load(device)
    model.eval()
    with torch.inference_mode(), runtime.autocast(device):  # warm-up: the first forward pays one-off allocations
        model.encode_text(torch.zeros((args.batch_size, model.clip.context_length), dtype=torch.long, device=device))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(args.rounds):
            rounds.append(one_round(args, model, recipe, resolve_root(args.data), Path(tmp, "scores.parquet"), number))
            print(json.dumps(rounds[-1]), flush=True)
    pairs = rounds[0]["pairs"]
    median = {name: [statistics.median(r["seconds"][name][i] for r in rounds) for i in (0, 1)]
              for name in rounds[0]["seconds"]}
    forward = median["forward"]
    print(f"\n{pairs} pairs, median of {args.rounds} rounds, torch threads {torch.get_num_threads()}, "
          f"decode workers {decode_workers()}, local term {'on' if recipe.loss.use_local else 'off'}\n")
    print("| stage | wall s | pairs/s (wall) | CPU s | pairs/s (CPU) | forward / it (wall, CPU) |")
    print("|---|---|---|---|---|---|")
    for name, (wall, cpu) in median.items():
        ratio = (f"{forward[0] / wall:.0%}, {forward[1] / cpu:.0%}"
                 if name.startswith("score") and ":" not in name else "")
        print(f"| {name} | {wall:.2f} | {pairs / wall:,.0f} | {cpu:.2f} | {pairs / cpu:,.0f} | {ratio} |")
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    if peak is not None:
        print(f"\npeak GPU memory {peak:,.0f} MiB (device {device}, every stage and score run)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"pairs": pairs, "rounds": args.rounds, "device": str(device), "model": args.model,
                       "recipe": args.recipe, "local": recipe.loss.use_local, "median": median,
                       "peak_gpu_mib": peak}, f, indent=1)


if __name__ == "__main__":
    main()
