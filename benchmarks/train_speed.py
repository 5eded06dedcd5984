"""Training throughput, peak memory, and RRSITR's loss overhead over InfoNCE (nctool-tiny, CPU).

Usage: .venv/bin/python benchmarks/train_speed.py [--steps 20] [--batch 100]
Times whole optimiser steps (forward, loss, backward, AdamW) on random 64-px images and random
tokens, after warm-up steps, and the loss function alone on the step's similarity matrices.
"""

import argparse
import resource
import time

import torch

from nctool.model import losses
from nctool.model.clip import create_model
from nctool.model.transforms import preprocess_for


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = create_model("nctool-tiny")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    preprocess = preprocess_for(model)
    context = preprocess.tokenizer(["x"]).shape[1]
    images = torch.randn(args.batch, 3, preprocess.image_size, preprocess.image_size)
    tokens = torch.randint(1, 5000, (args.batch, context))
    tokens[:, 12] = 49407  # end of text
    g1, g2 = losses.thresholds_for_batch(args.batch, terms=2)

    def loss_fn(kind, sim):
        if kind == "infonce":
            return losses.infonce_loss(sim)[0]
        return losses.rrsitr_loss(sim, None, g1, g2)[0]

    print(f"torch threads: {torch.get_num_threads()}, batch {args.batch}, steps {args.steps}")
    for kind in ("infonce", "rrsitr"):
        step_times, loss_times = [], []
        for step in range(args.steps + 3):
            start = time.perf_counter()
            img, _, txt, _ = model(images, tokens)
            sim = img @ txt.T
            loss_start = time.perf_counter()
            loss = loss_fn(kind, sim)
            loss_end = time.perf_counter()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step >= 3:
                step_times.append(time.perf_counter() - start)
                loss_times.append(loss_end - loss_start)
        step_ms = 1000 * sorted(step_times)[len(step_times) // 2]
        loss_ms = 1000 * sorted(loss_times)[len(loss_times) // 2]
        print(f"{kind:8s} median step {step_ms:7.1f} ms  ({args.batch / step_ms * 1000:6.1f} pairs/s)  "
              f"loss forward {loss_ms:6.3f} ms ({100 * loss_ms / step_ms:.2f}% of the step)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
