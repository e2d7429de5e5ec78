"""Where the headless runner reads input files and writes results.

ComfyUI's nodes ask `folder_paths` for these folders; outside ComfyUI the runner sets a
`RunContext` for the duration of a run and the I/O nodes (or a host fallback) read it here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunContext:
    """Folders of one run. ``temp_dir`` (previews) defaults to ``output_dir/temp``."""

    input_dir: Path
    output_dir: Path
    temp_dir: Path | None = None

    @property
    def preview_dir(self) -> Path:
        return self.temp_dir if self.temp_dir is not None else self.output_dir / "temp"

    @property
    def folders(self) -> dict[str, Path]:
        """The folder for each ComfyUI file ``type``."""
        return {"input": self.input_dir, "output": self.output_dir, "temp": self.preview_dir}


# Outside a run, behave like a ComfyUI started in the current directory.
_current: ContextVar[RunContext] = ContextVar(
    "unpaired_edit_run_context", default=RunContext(Path("input"), Path("output"))
)


def current_context() -> RunContext:
    return _current.get()


@contextmanager
def use_context(ctx: RunContext) -> Iterator[RunContext]:
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
