"""Training configuration: typed dataclasses read from YAML, checked before anything trains.

Every problem names its key (``optim.lr``) and says what was expected, so a typo costs a
second, not a run.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..core.builtin import MODELS, builtin_name


class ConfigError(ValueError):
    """A bad configuration; the message names the key."""


DATA_SOURCES = ("toy", "captions", "instructions", "pairs")
SCHEDULES = ("constant", "cosine", "linear")


@dataclass
class DataConfig:
    source: str = "toy"  # toy (the generator) | captions | instructions | pairs (the user's files)
    path: str = ""  # the file sources: a JSONL file (pictures relative to it), or for captions a folder
    size: int = 16  # pictures are size x size pixels (files: short side resized, centre-cropped)
    validation: str = ""  # held-out rows of the same kind (a JSONL file or caption folder) to validate on;
    # empty: the toy world's validation split
    seed: int = 0  # which toy data set (item i is the same for every run with this seed)
    frames: int = 0  # 0: pictures; N: the toy world's clips of N frames (a video model trains on clips)
    # Processes rendering batches ahead of the model. 0 renders in the training process: on
    # 2 cores a worker only competes with the model (benchmarks/toy_train_speed.py).
    workers: int = 0


@dataclass
class OptimConfig:
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 100
    schedule: str = "constant"  # after the linear warm-up: constant | cosine | linear (decaying to 0 at the end)
    grad_clip: float = 1.0  # 0 turns clipping off
    # Parameter groups: the rate of every trainable parameter whose name ("unet.conv_in.weight",
    # "text_encoder.…") starts with a key; the schedule scales each group alike.
    group_lr: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainConfig:
    output_dir: str
    model: str = "new"  # "new": an untrained toy model; a model file or diffusers folder; or a builtin name
    steps: int = 1000
    batch_size: int = 32  # per process
    grad_accum: int = 1
    mixed_precision: str = "no"  # no | fp16 | bf16 (fp16 needs a GPU)
    gradient_checkpointing: bool = False
    seed: int = 0
    ema_decay: float = 0.0  # 0 keeps no EMA
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    validate_every: int = 500
    log_every: int = 10
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def check(self) -> None:
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ConfigError(f"'mixed_precision' must be no, fp16 or bf16, not {self.mixed_precision!r}.")
        for key in ("steps", "batch_size", "grad_accum", "checkpoint_every", "keep_checkpoints", "validate_every",
                    "log_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"'{key}' must be at least 1, not {getattr(self, key)}.")
        if self.data.source not in DATA_SOURCES:
            raise ConfigError(f"'data.source' must be {', '.join(DATA_SOURCES)}, not {self.data.source!r}.")
        if self.data.source != "toy" and not self.data.path:
            raise ConfigError(f"'data.source: {self.data.source}' needs 'data.path': the JSONL file (or folder) "
                              "to read.")
        if self.data.size < 1:
            raise ConfigError(f"'data.size' must be at least 1, not {self.data.size}.")
        if self.data.frames < 0 or self.data.frames == 1:
            raise ConfigError(f"'data.frames' is 0 (pictures) or the frames of a clip (2 or more), not "
                              f"{self.data.frames}.")
        if self.data.workers < 0:
            raise ConfigError(f"'data.workers' must be 0 or more, not {self.data.workers}.")
        if self.optim.schedule not in SCHEDULES:
            raise ConfigError(f"'optim.schedule' must be {', '.join(SCHEDULES)}, not {self.optim.schedule!r}.")
        for prefix, rate in self.optim.group_lr.items():
            if not prefix or rate <= 0:
                raise ConfigError(f"'optim.group_lr' maps parameter-name prefixes to rates above 0, not "
                                  f"{prefix!r}: {rate}.")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"'ema_decay' must be in [0, 1), not {self.ema_decay}.")
        if self.model != "new" and not builtin_name(self.model) and not Path(self.model).exists():
            raise ConfigError(f"'model' points at {self.model!r}, which does not exist (nor is it one of the "
                              f"builtin models: {', '.join(MODELS)}).")


def load_config(path: str | Path, method: str, options_type: type) -> tuple[TrainConfig, Any]:
    """Read ``path`` and return the common config and the method's options (from the section
    named after the method)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"The config file {path} does not exist.")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path.name} must hold a mapping of keys to values.")
    sections = {k for k in raw if k not in {f.name for f in dataclasses.fields(TrainConfig)}}
    if sections - {method}:
        raise ConfigError(f"Unknown key '{sorted(sections - {method})[0]}' in {path.name} "
                          f"(method sections: only '{method}' here).")
    method_raw = raw.pop(method, None) or {}
    config = from_dict(TrainConfig, raw, "")
    config.check()
    return config, from_dict(options_type, method_raw, f"{method}.")


def from_dict(cls: type, raw: Any, prefix: str):
    """Build dataclass ``cls`` from ``raw``, checking keys and types recursively."""
    if not isinstance(raw, dict):
        raise ConfigError(f"'{prefix.rstrip('.') or 'config'}' must be a mapping, got {raw!r}.")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"Unknown key '{prefix}{unknown[0]}' (known: {', '.join(sorted(fields))}).")
    values = {}
    for name, f in fields.items():
        key = f"{prefix}{name}"
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"The key '{key}' is required.")
            continue
        values[name] = _convert(hints[name], raw[name], key)
    return cls(**values)


def _convert(hint, value, key: str):
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, key + ".")
    origin = typing.get_origin(hint)
    if origin is tuple:
        items = typing.get_args(hint)
        if not isinstance(value, (list, tuple)) or len(value) != len(items):
            raise ConfigError(f"'{key}' must be a list of {len(items)} values, got {value!r}.")
        return tuple(_convert(h, v, f"{key}[{i}]") for i, (h, v) in enumerate(zip(items, value)))
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            if option is type(None) and value is None:
                return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"'{key}' must be a mapping, got {value!r}.")
        if origin is None:
            return value
        key_hint, value_hint = typing.get_args(hint)
        return {_convert(key_hint, k, key): _convert(value_hint, v, f"{key}.{k}") for k, v in value.items()}
    if hint is float and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:  # YAML reads 1e-3 (no dot) as a string
            return float(value)
        except ValueError:
            raise ConfigError(f"'{key}' must be a number, got {value!r}.") from None
    if hint in (int, float, str, bool) and (type(value) is not hint):
        raise ConfigError(f"'{key}' must be {hint.__name__}, got {value!r} ({type(value).__name__}).")
    return value
