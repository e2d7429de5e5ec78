"""``python -m unpaired_edit run WORKFLOW.json [--set NODE_ID.INPUT=VALUE ...]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from collections.abc import Mapping, Sequence

import torch
from PIL import Image

from ..core.errors import EditError
from ..core.images import comfy_to_pil, comfy_to_pixels
from ..core.toy.edits import as_edit
from ..core.toy.oracle import score_edit
from ..nodes import host
from ..nodes.toy import ToyScene
from .convert import load_workflow
from .execute import default_input_dir, run_workflow
from .registry import pack_node_classes
from .sheet import side_by_side

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m unpaired_edit", description="Unpaired Edit tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="Run a ComfyUI workflow (UI or API format) without ComfyUI.")
    run.add_argument("workflow", help="The workflow JSON file.")
    run.add_argument("--set", action="append", default=[], metavar="NODE_ID.INPUT=VALUE",
                     help="Override an input; VALUE is read as JSON if it parses, else as text. Repeatable.")
    run.add_argument("--input-dir", help="Folder LoadImage reads (default: 'input' beside the workflow, "
                                         "else the workflow's folder).")
    run.add_argument("--output-dir", default="output", help="Folder for saved images (default: ./output).")
    run.add_argument("--dtype", choices=list(DTYPES), help="Precision Load Edit Model casts its model to "
                                                          "(default: fp32 on the CPU).")
    demo = commands.add_parser("demo", help="Cycle-edit a toy-world picture with the bundled unpaired toy editor "
                                            "and write the images, a sheet and the oracle's scores.")
    demo.add_argument("--output-dir", default="output/demo", help="Where to write (default: ./output/demo).")
    return parser


def main(argv: Sequence[str] | None = None, node_classes: Mapping[str, type] | None = None) -> int:
    """Run the command line; ``node_classes`` defaults to the pack's nodes. Returns the exit
    status: 0, or 2 for a problem in the workflow or its inputs."""
    args = _parser().parse_args(argv)
    classes = pack_node_classes() if node_classes is None else node_classes
    try:
        if args.command == "demo":
            return demo(Path(args.output_dir), classes)
        with host.dtype_override(DTYPES.get(args.dtype)):
            result = run_workflow(args.workflow, classes, overrides=args.set,
                                  input_dir=args.input_dir, output_dir=args.output_dir)
    except EditError as err:
        print(err, file=sys.stderr)
        return 2
    for path in result.files:
        print(path)
    print(f"Ran {len(result.outputs)} node(s); wrote {len(result.files)} file(s).", file=sys.stderr)
    return 0


def demo(output_dir: Path, node_classes: Mapping[str, type]) -> int:
    """Run workflows/toy_cycle_edit.json; put source, edit, reconstruction and error side by
    side, and score the edit with the toy world's oracle (the scene is known)."""
    workflow = Path(__file__).resolve().parents[1] / "workflows" / "toy_cycle_edit.json"
    api = load_workflow(workflow, node_classes)
    result = run_workflow(api, node_classes, output_dir=output_dir, input_dir=default_input_dir(workflow))
    cycle = next(i for i, node in api.items() if node["class_type"] == "UnpairedEdit_CycleEdit")
    edited, reconstruction, _, score = result.outputs[cycle]
    feeder, slot = api[cycle]["inputs"]["image"]
    source = result.outputs[str(feeder)][slot]
    pictures = [comfy_to_pil(source[0])]
    pictures += [Image.open(p) for p in result.files]
    sheet = side_by_side(pictures, ["source", "edited", "reconstruction", "cycle error"])
    sheet_path = output_dir / "sheet.png"
    sheet.save(sheet_path)
    inputs = api[cycle]["inputs"]
    scores = oracle_scores(api[str(feeder)]["inputs"], inputs["instruction"], inputs["reverse_instruction"],
                           source, edited, reconstruction)
    scores_path = output_dir / "scores.json"
    scores_path.write_text(json.dumps({"cycle_score": score, **scores}, indent=1))
    for path in [*result.files, sheet_path, scores_path]:
        print(path)
    print(f"'{inputs['instruction']}', then '{inputs['reverse_instruction']}': cycle score {score:.3f} "
          "(1 = the reverse edit restored the source exactly)")
    verdict = ("wrong" if not scores["success"] else
               "right, the rest preserved" if scores["strict"] else "right, the rest not preserved")
    print(f"oracle: edit {verdict}, preservation error "
          f"{scores['preservation']:.3f}, L1 to the true edit {scores['l1']:.3f}, "
          f"reconstruction L1 {scores['cycle_l1']:.3f} (pixel units 0..1)")
    return 0


def oracle_scores(scene_inputs: dict, instruction: str, reverse: str, source: torch.Tensor, edited: torch.Tensor,
                  reconstruction: torch.Tensor) -> dict[str, float]:
    """The oracle's scores of a Toy Scene picture's cycle edit (ComfyUI IMAGE tensors)."""
    edit = as_edit(ToyScene.scene(**scene_inputs), instruction, reverse)
    scores = score_edit(comfy_to_pixels(edited)[0], edit)
    scores["cycle_l1"] = float((comfy_to_pixels(reconstruction) - comfy_to_pixels(source)).abs().mean() / 2)
    return scores
