"""The headless workflow runner: runs ComfyUI workflows with the pack's nodes, without ComfyUI."""

from .convert import load_workflow, ui_to_api
from .execute import RunResult, check_workflow, run_workflow

__all__ = ["RunResult", "check_workflow", "load_workflow", "run_workflow", "ui_to_api"]
