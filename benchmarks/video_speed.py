"""Video Edit's speed and memory: frames per second edited in chunks against a loop that edits one
frame at a time (both with the bundled toy editor, the same frames, steps and seed), and the peak
memory of Video Edit at 8, 32 and 128 frames, each measured in a fresh process (peak resident
memory above what the process held before editing), for a picture editor and a toy video model.

    python benchmarks/video_speed.py [--frames 32] [--chunk 16] [--overlap 4] [--steps 10] [--rounds 3]

Goals: chunked / per-frame frames per second >= 1.3; peak memory flat in the number of frames
(the 128-frame peak within a few MB of the 8-frame one: only one chunk is ever in flight).
Measured with --rounds 2 on this 2-core CPU: chunked 51.1 frames/s, one at a time 15.9, ratio 3.20;
peak above the loaded model, toy video model: 15.1 MB at 8 frames (one chunk of 8), 39.1 at 32 and
43.9 at 128 (chunks of 16); the picture editor's stayed under its loading peak (0.0) at every count.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from unpaired_edit.core.builtin import load_builtin  # noqa: E402
from unpaired_edit.core.editing import edit_pixels  # noqa: E402
from unpaired_edit.core.samplers import EditSettings  # noqa: E402
from unpaired_edit.core.toy.clips import Clip  # noqa: E402
from unpaired_edit.core.toy.world import Obj, Scene  # noqa: E402
from unpaired_edit.core.video import Chunking, edit_video  # noqa: E402

from timing import median_seconds  # noqa: E402  (this folder)

EDITOR = "builtin/toy-uip2p-16"
INSTRUCTION = "make the red circle blue"


def toy_frames(n: int) -> torch.Tensor:
    obj = Obj("circle", "red", "large", "left")
    return Clip(Scene((obj,), "sky"), obj, "right").render(n, 16).transpose(0, 1)  # [F, 3, H, W]


def model(kind: str):
    editor = load_builtin(EDITOR, "benchmark")
    return editor.as_video() if kind == "video" else editor


def peak_mb(kind: str, frames: int, chunk: int, overlap: int, steps: int) -> float:
    """Peak resident memory above the loaded model's, in MB, of one Video Edit run in a new process."""
    code = (f"import sys; sys.argv = ['x']; import video_speed as b, resource; m = b.model({kind!r}); "
            f"f = b.toy_frames({frames}); before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
            f"b.edit_video(m, f, b.INSTRUCTION, b.EditSettings({steps}, 1.0, 1.0, 0), b.Chunking({chunk}, {overlap})); "
            "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=os.path.dirname(os.path.abspath(__file__)))
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=16)
    parser.add_argument("--overlap", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    editor, frames = model("image"), toy_frames(args.frames)
    settings, chunking = EditSettings(args.steps, 1.0, 1.0, 0), Chunking(args.chunk, args.overlap)
    chunked, looped = median_seconds([
        lambda: edit_video(editor, frames, INSTRUCTION, settings, chunking),
        lambda: [edit_pixels(editor, frame[None], INSTRUCTION, settings) for frame in frames]], args.rounds)
    print(f"{args.frames} toy frames 16x16, {args.steps} steps, chunks of {args.chunk} overlapping by {args.overlap}")
    print(f"Video Edit, chunked : {args.frames / chunked:7.1f} frames/s")
    print(f"one frame at a time : {args.frames / looped:7.1f} frames/s")
    print(f"chunked / per-frame : {looped / chunked:.2f} (goal >= 1.3; chunks re-edit their overlap)")
    for kind in ("image", "video"):
        peaks = {n: peak_mb(kind, n, args.chunk, args.overlap, 2) for n in (8, 32, 128)}
        cells = ", ".join(f"{n} frames {mb:.1f} MB" for n, mb in peaks.items())
        print(f"peak memory above the loaded model, {kind} model: {cells}")


if __name__ == "__main__":
    main()
