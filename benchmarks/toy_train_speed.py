"""Training speed of the toy base at 16x16, batch 32: the bare model step (forward, backward,
AdamW on a cached batch) against the step with its data rendered on the fly, in one process.

    python benchmarks/toy_train_speed.py [--rounds 6] [--steps 10]

Prints steps/s of each and the ratio (the data pipeline's cost; goal >= 0.9).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from unpaired_edit.core.models.toy import build_toy  # noqa: E402
from unpaired_edit.core.toy.datasets import CaptionDataset, stack  # noqa: E402
from unpaired_edit.training.config import TrainConfig  # noqa: E402
from unpaired_edit.training.methods.t2i import T2IOptions, TextToImage  # noqa: E402

BATCH = 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    data = CaptionDataset(size=16)
    method = TextToImage(TrainConfig(output_dir="unused"), T2IOptions())
    model = build_toy()
    model.unet.train()
    model.text_encoder.train()
    optimizer = torch.optim.AdamW([*model.unet.parameters(), *model.text_encoder.parameters()], lr=1e-3)
    cached = [stack([data[j] for j in range(i * BATCH, (i + 1) * BATCH)]) for i in range(args.steps)]

    def step(i: int, render: bool) -> None:
        indices = range(i * BATCH, (i + 1) * BATCH)
        batch = stack([data[j] for j in indices]) if render else cached[i]
        loss, _ = method.loss(model, batch, [torch.Generator().manual_seed(j) for j in indices])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    times: dict[bool, list[float]] = {False: [], True: []}
    for r in range(args.rounds + 1):  # round 0 warms up
        for render in (False, True):
            start = time.perf_counter()
            for i in range(args.steps):
                step(i, render)
            if r:
                times[render].append((time.perf_counter() - start) / args.steps)
    bare, full = (1 / statistics.median(times[k]) for k in (False, True))
    print(f"toy base 16x16, batch {BATCH}, torch threads {torch.get_num_threads()}")
    print(f"model step only      : {bare:.2f} steps/s")
    print(f"with rendered data   : {full:.2f} steps/s   ratio = {full / bare:.3f}  (goal >= 0.9)")


if __name__ == "__main__":
    main()
