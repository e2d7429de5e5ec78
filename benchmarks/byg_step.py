"""ByG's training step against UIP2P's, in one process, on the toy world: both from the toy base
with their shipped configs (``training/configs/byg_toy16.yaml``, ``uip2p_toy16.yaml``) at the
same batch, through the real training loop (``training.loop.train``: EMA, clipping, logging),
ByG past its identity-only warm-up.

    python benchmarks/byg_step.py [--batch 32] [--steps 10] [--rounds 2]

Each rate is N steps timed as the difference between an N-step and a 2N-step run (so model
loading and the loop's start cost nothing), the two methods interleaved round by round so a
busy machine slows both alike. It prints the median step time of each and ByG's ratio to
UIP2P's (goal: at most 2.0). Measured with the defaults on this 2-core CPU (80 s): ratio 4.61 at
first (UIP2P 0.223 s, ByG 1.025 s a step at batch 32); 3.62 (0.203 s, 0.733 s) once the rollout
stops at each snapshot, runs on the merged EMA weights and the frozen velocities are one pass.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from unpaired_edit.training.config import load_config  # noqa: E402
from unpaired_edit.training.image_text import build_toy_clip  # noqa: E402
from unpaired_edit.training.loop import train  # noqa: E402
from unpaired_edit.training.methods import METHODS  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "training" / "configs"


class _Timed(Exception):
    """Ends a run at its validation: the validation and the export are not the step."""


def run_seconds(name: str, steps: int, batch: int, clip: Path) -> float:
    """Wall time of a ``steps``-step run of method ``name`` until its one validation at the end."""
    method_cls = METHODS[name]
    raw = yaml.safe_load((CONFIGS / f"{name}_toy16.yaml").read_text())
    with tempfile.TemporaryDirectory() as out:
        raw |= {"output_dir": out, "model": "builtin/toy-base-16", "steps": steps, "batch_size": batch,
                "log_every": steps, "validate_every": 10 * steps, "checkpoint_every": 10 * steps}
        if "clip" in raw[name]:
            raw[name]["clip"] = str(clip)
        if "identity_warmup" in raw[name]:
            raw[name]["identity_warmup"] = 0  # time the step after the warm-up, not its identity-only steps
        path = Path(out) / "config.yaml"
        path.write_text(yaml.safe_dump(raw))
        config, options = load_config(path, name, method_cls.Options)
        method = method_cls(config, options)
        timed = {}

        def stop_clock(model, rows):
            timed["end"] = time.perf_counter()
            raise _Timed

        method.validate = stop_clock
        start = time.perf_counter()
        try:
            train(method)
        except _Timed:
            pass
        return timed["end"] - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        clip = build_toy_clip().save(Path(folder) / "clip")  # untrained: the same cost as the trained one
        seconds = {"uip2p": [], "byg": []}
        for _ in range(args.rounds):
            for name in seconds:
                n, twice = (run_seconds(name, s, args.batch, clip) for s in (args.steps, 2 * args.steps))
                seconds[name].append((twice - n) / args.steps)
    step = {name: statistics.median(s) for name, s in seconds.items()}
    print(f"toy world 16x16, batch {args.batch}, {args.steps} steps (difference of {args.steps}- and "
          f"{2 * args.steps}-step runs) x {args.rounds} rounds")
    for name, s in step.items():
        print(f"{name:6s}: {s:.3f} s a step")
    print(f"ByG / UIP2P step time: {step['byg'] / step['uip2p']:.2f} (goal <= 2.0)")


if __name__ == "__main__":
    main()
