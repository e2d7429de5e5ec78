"""``python -m unpaired_edit.training METHOD --config FILE.yaml [--resume]`` and
``python -m unpaired_edit.training evaluate --model PATH [--task edit|transfer|inpaint|t2i|chance] [--loc FILE] [--n N]``
and ``python -m unpaired_edit.training toy-data --kind captions|instructions|pairs --out DIR --n N``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ..core.containers import check_made_for
from ..core.errors import EditError
from ..core.loc import load_hypernetwork
from ..core.model_files import load_model
from ..core.samplers import EditSettings
from ..core.toy.oracle import PRESERVED
from ..core.toy.world import SPLITS
from .config import ConfigError, load_config
from .evaluate import (evaluate_captions, evaluate_chance, evaluate_clip_edits, evaluate_edits, evaluate_inpainting,
                       evaluate_transfer, format_table)
from .files import FIELDS, write_toy_data
from .loop import train
from .methods import METHODS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m unpaired_edit.training", description="Train edit models.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, method in sorted(METHODS.items()):
        sub = commands.add_parser(name, help=f"Train with the {name} method.")
        sub.add_argument("--config", required=True, help="A YAML file (see training/configs/).")
        sub.add_argument("--resume", action="store_true", help="Continue from the newest checkpoint in output_dir.")
    toy = commands.add_parser("toy-data", help="Write the toy world as files a file-source config reads.")
    toy.add_argument("--kind", choices=tuple(FIELDS), required=True, help="Which rows: captions (t2i, clip), "
                     "instructions (uip2p, byg) or pairs (supervised, loc).")
    toy.add_argument("--out", required=True, help="The folder: <kind>.jsonl and images/ are written there.")
    toy.add_argument("--n", type=int, required=True, help="How many rows.")
    toy.add_argument("--size", type=int, default=16, help="Picture size (default 16).")
    toy.add_argument("--split", choices=SPLITS, default="train", help="Which scenes (default train).")
    toy.add_argument("--seed", type=int, default=0, help="Which toy data set (as data.seed; default 0).")
    ev = commands.add_parser("evaluate", help="Score a toy-world model with the oracle.")
    ev.add_argument("--model", help="A model file (e.g. runs/.../model.safetensors); not for --task chance.")
    ev.add_argument("--task", choices=("edit", "transfer", "inpaint", "t2i", "chance", "clip"), default="edit",
                    help="edit: edits of the split (default); transfer: the edit of a held-out pair made on another "
                         "scene (by instruction, or with --loc by the pair's LoRA); inpaint: fill, erase and "
                         "outpaint tasks (an inpainting model); t2i: caption accuracy of text-to-image samples; "
                         "chance: the edits' scores for pictures that make no real edit (source, noise, fills, a "
                         "copy instead of a move); clip: edits of toy clips (a video model, or a picture editor "
                         "frame by frame), scored per frame with flicker.")
    ev.add_argument("--loc", help="transfer: a LoC hypernetwork file; the edit is the LoRA it makes from the pair.")
    ev.add_argument("--strength", type=float, default=1.0, help="transfer --loc: the LoRA's strength (default 1).")
    ev.add_argument("--split", choices=SPLITS, default="test",
                    help="Which scenes: test (default; what results report), validation (what configs are "
                         "chosen on) or train.")
    ev.add_argument("--n", type=int, default=140, help="How many edits, tasks or captions (default 140).")
    ev.add_argument("--size", type=int, help="Image size (default: the size the model was trained at).")
    ev.add_argument("--steps", type=int, help="Sampling steps (default: the model's).")
    ev.add_argument("--guidance", type=float, help="Text guidance (default: the model's; 4 for --task t2i).")
    ev.add_argument("--image-guidance", type=float, help="Image guidance (default: the model's).")
    ev.add_argument("--seed", type=int, default=0, help="The sampling seed (default 0): others give the spread.")
    ev.add_argument("--no-cycle", action="store_true",
                    help="edit: skip the reverse edit (faster; no cycle_l1). transfer has none.")
    ev.add_argument("--frames", type=int, default=8, help="clip: frames a toy clip has (default 8).")
    ev.add_argument("--picture-editor", choices=("independent", "video-edit"), default="video-edit",
                    help="clip, with a picture editor: every frame edited as Edit Image edits a batch "
                         "(independent) or as Video Edit does (shared noise and anchor; the default).")
    ev.add_argument("--json", help="Also write the results to this JSON file.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "evaluate":
            return _evaluate(args)
        if args.command == "toy-data":
            print(write_toy_data(args.kind, Path(args.out), args.n, args.size, args.split, args.seed))
            return 0
        method_cls = METHODS[args.command]
        config, options = load_config(args.config, args.command, method_cls.Options)
        print(train(method_cls(config, options), resume=args.resume))
    except ConfigError as err:
        print(f"Config error: {err}", file=sys.stderr)
        return 2
    except EditError as err:
        print(err, file=sys.stderr)
        return 2
    return 0


def _evaluate(args) -> int:
    if args.task == "chance":
        result = evaluate_chance(args.n, args.size or 16, args.split)
        for name, table in result.items():
            print(f"{name}\n{format_table(table)}\n")
        run = {"task": "chance", "split": args.split, "size": args.size or 16, "strict_preservation": PRESERVED}
        return _write_json(args, run, result)
    if not args.model:
        raise EditError("evaluate › --model", f"--task {args.task} scores a model, and none was given.",
                        "Pass --model PATH (a model.safetensors a trainer wrote, or one in weights/).")
    model = load_model(args.model, where="evaluate › --model")
    info = model.info
    size = args.size or info.extra.get("image_size", 16)
    default_guidance = 4.0 if args.task == "t2i" else info.guidance
    settings = EditSettings(args.steps or info.steps, args.guidance or default_guidance,
                            args.image_guidance or info.image_guidance, seed=args.seed)
    if args.task == "t2i":
        result, _ = evaluate_captions(model, args.n, size, settings, args.split)
        print(f"caption accuracy {result['caption_accuracy']:.3f} on {result['n']} {args.split} captions")
    elif args.task == "transfer":
        hypernetwork = None
        if args.loc:
            loaded = load_hypernetwork(args.loc, "evaluate › --loc")
            hypernetwork = loaded.network
            check_made_for(loaded.meta, model, "evaluate › --model", "This LoC hypernetwork was made for",
                           "Evaluate with the edit model the hypernetwork was trained for.")
        result, _ = evaluate_transfer(model, args.n, size, settings, hypernetwork, args.strength, args.split)
        print(format_table(result))
    elif args.task == "clip":
        result, _ = evaluate_clip_edits(model, args.n, size, args.frames, settings, args.split,
                                        picture_editor=args.picture_editor)
        print(format_table(result))
    elif args.task == "inpaint":
        result, _ = evaluate_inpainting(model, args.n, size, settings, args.split)
        print(format_table(result))
    else:
        result, _ = evaluate_edits(model, args.n, size, settings, args.split, cycle=not args.no_cycle)
        print(format_table(result))
    run = {"model": str(args.model), "task": args.task, "split": args.split, "settings": vars(settings),
           "strict_preservation": PRESERVED}
    if args.loc:
        run |= {"loc": str(args.loc), "strength": args.strength}
    return _write_json(args, run, result)


def _write_json(args, run: dict, result: dict) -> int:
    if args.json:
        Path(args.json).write_text(json.dumps(run | {"results": result}, indent=2))
        print(args.json)
    return 0
