"""The models that come with the pack, by name: toy-world models trained by
``scripts/train-defaults`` (files in ``weights/``) and random-weight tiny models built in code,
which prove a workflow runs but do not edit. Load Edit Model lists them; a training config's
``model`` may name them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the model classes import diffusers; the nodes list these names without it
    from .models import EditModel

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


@dataclass(frozen=True)
class Builtin:
    description: str
    file: str = ""  # in weights/, or else
    tiny: str = ""  # the builder in core/models/tiny.py

    def label(self, name: str) -> str:
        """What a node's list shows: the name and what the model is."""
        return f"{name} ({self.description})"


MODELS = {
    "builtin/toy-uip2p-16": Builtin("toy world editor, trained unpaired", file="toy-uip2p-16.safetensors"),
    "builtin/toy-supervised-16": Builtin("toy world editor, paired baseline", file="toy-supervised-16.safetensors"),
    "builtin/toy-base-16": Builtin("toy world text-to-image base, not an editor", file="toy-base-16.safetensors"),
    "builtin/toy-inpaint-16": Builtin("toy world inpainter: fill, erase, outpaint", file="toy-inpaint-16.safetensors"),
    "builtin/tiny-ip2p": Builtin("random weights, for testing", tiny="tiny_ip2p"),
    "builtin/tiny-flow": Builtin("random weights, for testing", tiny="tiny_flow"),
    "builtin/tiny-inpaint": Builtin("random weights, for testing", tiny="tiny_inpaint"),
}
LOC_HYPERNETWORKS = {"builtin/toy-loc-16": Builtin("for builtin/toy-uip2p-16", file="toy-loc-16.safetensors")}


def builtin_name(text: str) -> str | None:
    """The builtin model ``text`` names, by its name or by the label a node lists; else None."""
    name = text.split(" (", 1)[0].strip()
    return name if name in MODELS else None


def load_builtin(name: str, where: str, **load_options) -> EditModel:
    """Builtin model ``name`` (see ``MODELS``); ``load_options`` go to ``load_model``."""
    builtin = MODELS[name]
    if builtin.file:
        from .model_files import load_model

        return load_model(WEIGHTS / builtin.file, where, **load_options)
    from .models import tiny

    return getattr(tiny, builtin.tiny)()
