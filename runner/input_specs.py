"""A node class's declared inputs, read from its classic ``INPUT_TYPES()``.

Also the ComfyUI frontend's rules for which inputs are widgets and how many values each
widget stores in a UI workflow's ``widgets_values``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
SEED_NAMES = ("seed", "noise_seed")
_FALLBACK_DEFAULTS = {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}


@dataclass(frozen=True)
class InputSpec:
    name: str
    type: str  # "COMBO" for a list of choices
    required: bool
    opts: dict[str, Any] = field(default_factory=dict)
    choices: list[Any] | None = None

    @property
    def is_widget(self) -> bool:
        return self.type in WIDGET_TYPES and not self.opts.get("forceInput")

    @property
    def default(self) -> Any:
        if "default" in self.opts:
            return self.opts["default"]
        if self.choices:
            return self.choices[0]
        return _FALLBACK_DEFAULTS.get(self.type)

    def coerce(self, value: Any) -> Any:
        """Like ComfyUI, hand a FLOAT input given a whole number a float."""
        if self.type == "FLOAT" and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    @property
    def extra_widget_values(self) -> int:
        """Values the frontend saves after this widget's own: the control_after_generate
        mode, plus a filter text for combos."""
        control = self.opts.get(
            "control_after_generate", self.type == "INT" and self.name in SEED_NAMES
        )
        if not control:
            return 0
        return 2 if self.type == "COMBO" else 1


def type_name(declared: Any) -> str:
    """A declared input or output type as a name; a list of choices is a "COMBO"."""
    return "COMBO" if isinstance(declared, (list, tuple)) else str(declared)


def types_compatible(output_type: str, input_type: str) -> bool:
    """ComfyUI's link rule: "*" matches anything, and "A,B" matches A or B."""
    if "*" in (output_type, input_type) or output_type == input_type:
        return True
    outputs, inputs = ({part.strip() for part in t.split(",")} for t in (output_type, input_type))
    return not outputs.isdisjoint(inputs)


def _parse(name: str, entry: Any, required: bool) -> InputSpec:
    entry = tuple(entry) if isinstance(entry, (list, tuple)) else (entry,)
    kind = entry[0] if entry else "*"
    opts = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
    if isinstance(kind, (list, tuple)):
        return InputSpec(name, "COMBO", required, opts, list(kind))
    if kind == "COMBO":  # newer spelling: ("COMBO", {"options": [...]})
        return InputSpec(name, "COMBO", required, opts, list(opts.get("options", [])))
    return InputSpec(name, str(kind), required, opts)


def input_specs(cls: type) -> dict[str, InputSpec]:
    """Declared inputs in the order the frontend lays them out: required, then optional."""
    declared = cls.INPUT_TYPES()
    specs: dict[str, InputSpec] = {}
    for section, required in (("required", True), ("optional", False)):
        for name, entry in (declared.get(section) or {}).items():
            specs[name] = _parse(name, entry, required)
    return specs


def widget_slots(specs: dict[str, InputSpec]) -> list[str | None]:
    """What each position of a UI node's list ``widgets_values`` holds: an input name, or
    None for a value only the frontend uses (control modes, the upload button)."""
    slots: list[str | None] = []
    for required in (True, False):
        section = [spec for spec in specs.values() if spec.required is required]
        for spec in section:
            if spec.is_widget:
                slots += [spec.name] + [None] * spec.extra_widget_values
        if required and any(spec.opts.get("image_upload") for spec in section):
            slots.append(None)  # the frontend appends an upload button to the required inputs
    return slots


def hidden_inputs(cls: type) -> dict[str, str]:
    """Hidden inputs: argument name -> what it asks for (e.g. "UNIQUE_ID")."""
    hidden = cls.INPUT_TYPES().get("hidden") or {}
    return {name: entry[0] if isinstance(entry, (list, tuple)) else entry for name, entry in hidden.items()}
