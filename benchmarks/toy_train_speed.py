"""Training speed of the toy base at 16x16, batch 32, on this machine, in one process:

- the bare model step (forward, backward, fused AdamW on cached batches), the reference,
  and the same step with torch's default per-tensor AdamW;
- the real training loop (``training.loop.train``: accelerate, clipping, EMA, logging) with
  the data rendered in the training process (``data.workers: 0``) and in one worker ahead.

    python benchmarks/toy_train_speed.py [--rounds 3] [--steps 100]

Rounds interleave the four, so a busy machine slows all of them alike; medians are printed
with each loop's ratio to the bare step (1.0 would be a loop that costs nothing).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from unpaired_edit.core.models.toy import build_toy  # noqa: E402
from unpaired_edit.core.toy.datasets import CaptionDataset, stack  # noqa: E402
from unpaired_edit.training.config import DataConfig, TrainConfig  # noqa: E402
from unpaired_edit.training.loop import train  # noqa: E402
from unpaired_edit.training.methods.base import TrainState  # noqa: E402
from unpaired_edit.training.methods.t2i import T2IOptions, TextToImage  # noqa: E402

BATCH = 32


def bare_step_rate(steps: int, fused: bool = True) -> float:
    """Steps/s of forward + backward + AdamW on batches rendered beforehand."""
    data = CaptionDataset(size=16)
    method = TextToImage(TrainConfig(output_dir="unused"), T2IOptions())
    model = build_toy()
    model.unet.train()
    model.text_encoder.train()
    optimizer = torch.optim.AdamW([*model.unet.parameters(), *model.text_encoder.parameters()], lr=1e-3,
                                  fused=fused)
    cached = [stack([data[j] for j in range(i * BATCH, (i + 1) * BATCH)]) for i in range(steps)]
    start = time.perf_counter()
    for i, batch in enumerate(cached):
        rngs = [torch.Generator().manual_seed(j) for j in range(i * BATCH, (i + 1) * BATCH)]
        loss, _ = method.loss(model, batch, rngs, TrainState())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return steps / (time.perf_counter() - start)


def loop_rate(steps: int, workers: int) -> float:
    """Steps/s of the training loop itself, timed without the one validation at its end."""
    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(output_dir=out, steps=steps, batch_size=BATCH, ema_decay=0.995, log_every=steps,
                             validate_every=10 * steps, checkpoint_every=10 * steps,
                             data=DataConfig(size=16, workers=workers))
        method = TextToImage(config, T2IOptions(validate_samples=1, validate_steps=1))
        timed = {}
        validate = method.validate

        def stop_clock(model, rows):
            timed["end"] = time.perf_counter()
            return validate(model, rows)

        method.validate = stop_clock
        start = time.perf_counter()
        train(method)
        return steps / (timed["end"] - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    runs = {"model step only (reference)": lambda: bare_step_rate(args.steps),
            "model step, per-tensor AdamW": lambda: bare_step_rate(args.steps, fused=False),
            "training loop, data in-process": lambda: loop_rate(args.steps, 0),
            "training loop, 1 data worker": lambda: loop_rate(args.steps, 1)}
    bare_step_rate(5)  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            rates[name].append(run())
    medians = {name: statistics.median(r) for name, r in rates.items()}
    reference = medians["model step only (reference)"]
    print(f"toy base 16x16, batch {BATCH}, {args.steps} steps x {args.rounds} rounds, "
          f"torch threads {torch.get_num_threads()}")
    for name, rate in medians.items():
        print(f"{name:32s}: {rate:5.2f} steps/s   ratio to reference {rate / reference:.3f}")


if __name__ == "__main__":
    main()
