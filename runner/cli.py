"""``python -m unpaired_edit run WORKFLOW.json [--set NODE_ID.INPUT=VALUE ...]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

import torch

from ..core.errors import EditError
from ..nodes import host
from .execute import run_workflow
from .registry import pack_node_classes

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m unpaired_edit", description="Run workflows without ComfyUI.")
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
    return parser


def main(argv: Sequence[str] | None = None, node_classes: Mapping[str, type] | None = None) -> int:
    """Run the command line; ``node_classes`` defaults to the pack's nodes. Returns the exit
    status: 0, or 2 for a problem in the workflow or its inputs."""
    args = _parser().parse_args(argv)
    classes = pack_node_classes() if node_classes is None else node_classes
    try:
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
