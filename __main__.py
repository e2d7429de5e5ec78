"""``python -m unpaired_edit run WORKFLOW.json``: run a workflow without ComfyUI."""

from .runner.cli import main

raise SystemExit(main())
