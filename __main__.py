"""``python -m unpaired_edit run WORKFLOW.json``: run a workflow without ComfyUI (runner/cli.py);
``python -m unpaired_edit demo``: the main job (demo.py)."""

import sys

from . import demo
from .runner import cli

USAGE = """usage: python -m unpaired_edit run WORKFLOW.json [options]   run a workflow without ComfyUI (run -h: options)
       python -m unpaired_edit demo [--output-dir DIR]         the main job: cycle-edit a toy picture and score it"""

command = sys.argv[1:2]
if command == ["demo"]:
    raise SystemExit(demo.main(sys.argv[2:]))
if command == ["run"]:
    raise SystemExit(cli.main())
print(USAGE, file=sys.stdout if command in (["-h"], ["--help"]) else sys.stderr)
raise SystemExit(0 if command in (["-h"], ["--help"]) else 2)
