"""Training throughput, peak memory, and RRSITR's loss overhead over InfoNCE (default: nctool-tiny, CPU, fp32).

Usage: .venv/bin/python benchmarks/train_speed.py [--steps 20] [--batch 100]
       .venv/bin/python benchmarks/train_speed.py --model ViT-B-32 --device cuda --amp --json out.json
Times whole optimiser steps (forward, loss, backward, AdamW) on random images and random tokens
(random weights), after warm-up steps, and the loss function alone on the step's similarity
matrices. --amp: bf16 autocast on CUDA around the forward and the loss, as `nctool train` does
(nctool.runtime.autocast). On CUDA every timing is closed by a synchronize, and the peak GPU memory
(torch.cuda.max_memory_allocated) is reported per loss.
"""

import argparse
import json
import resource
import time

import torch

from nctool import runtime
from nctool.model import losses
from nctool.model.clip import create_model
from nctool.model.transforms import preprocess_for


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--model", default="nctool-tiny", help="open_clip model name (random init)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA (nctool.runtime.autocast)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    device = runtime.pick_device(args.device)
    cuda = device.type == "cuda"

    def now() -> float:
        if cuda:
            torch.cuda.synchronize(device)
        return time.perf_counter()

    torch.manual_seed(0)
    model = create_model(args.model).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    preprocess = preprocess_for(model)
    context = preprocess.tokenizer(["x"]).shape[1]
    images = torch.randn(args.batch, 3, preprocess.image_size, preprocess.image_size, device=device)
    tokens = torch.randint(1, 5000, (args.batch, context), device=device)
    tokens[:, 12] = 49407  # end of text
    g1, g2 = losses.thresholds_for_batch(args.batch, terms=2)

    def loss_fn(kind, sim):
        if kind == "infonce":
            return losses.infonce_loss(sim)[0]
        return losses.rrsitr_loss(sim, None, g1, g2)[0]

    print(f"model {args.model}, device {device}, amp {'bf16' if args.amp and cuda else 'off'}, "
          f"torch threads: {torch.get_num_threads()}, batch {args.batch}, steps {args.steps}")
    results = {"model": args.model, "device": str(device), "amp": bool(args.amp and cuda), "batch": args.batch,
               "steps": args.steps, "losses": {}}
    for kind in ("infonce", "rrsitr"):
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        step_times, loss_times = [], []
        for step in range(args.steps + 3):
            start = now()
            with runtime.autocast(device, cuda=args.amp):
                img, _, txt, _ = model(images, tokens)
                sim = img @ txt.T
                loss_start = now()
                loss = loss_fn(kind, sim)
                loss_end = now()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step >= 3:
                step_times.append(now() - start)
                loss_times.append(loss_end - loss_start)
        step_ms = 1000 * sorted(step_times)[len(step_times) // 2]
        loss_ms = 1000 * sorted(loss_times)[len(loss_times) // 2]
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None
        results["losses"][kind] = {"step_ms": step_ms, "steps_per_s": 1000 / step_ms,
                                   "pairs_per_s": args.batch / step_ms * 1000, "loss_ms": loss_ms,
                                   "peak_gpu_mib": peak}
        print(f"{kind:8s} median step {step_ms:7.1f} ms  ({args.batch / step_ms * 1000:6.1f} pairs/s, "
              f"{1000 / step_ms:.2f} steps/s)  loss forward {loss_ms:6.3f} ms "
              f"({100 * loss_ms / step_ms:.2f}% of the step)"
              + (f"  peak GPU memory {peak:,.0f} MiB" if cuda else ""))
    results["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {results['peak_rss_mib']:.0f} MiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
