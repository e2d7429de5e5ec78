"""``python -m unpaired_edit demo``, the main job: cycle-edit a toy-world picture with the
bundled unpaired editor through workflows/toy_cycle_edit.json in the headless runner, and
write the pictures, a side-by-side sheet and the oracle's scores (the scene is known)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from PIL import Image

from .core.errors import EditError
from .core.images import comfy_to_pil, comfy_to_pixels
from .core.toy.edits import as_edit
from .core.toy.oracle import score_edit
from .nodes.toy import ToyScene
from .runner import load_workflow, run_workflow
from .runner.execute import default_input_dir
from .runner.registry import pack_node_classes
from .runner.sheet import side_by_side


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unpaired_edit demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", default="output/demo", help="Where to write (default: ./output/demo).")
    args = parser.parse_args(argv)
    try:
        return demo(Path(args.output_dir), pack_node_classes())
    except EditError as err:
        print(err, file=sys.stderr)
        return 2


def demo(output_dir: Path, node_classes: Mapping[str, type]) -> int:
    """Run workflows/toy_cycle_edit.json; put source, edit, reconstruction and error side by
    side, and score the edit with the toy world's oracle (the scene is known)."""
    workflow = Path(__file__).resolve().parent / "workflows" / "toy_cycle_edit.json"
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
