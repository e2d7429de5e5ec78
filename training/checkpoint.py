"""Training checkpoints: written atomically, read back exactly, never pickled.

A checkpoint is a folder ``step-000200/`` holding ``weights.safetensors`` (model, EMA and any
critic), ``optimizer.safetensors`` (every optimizer's tensors, keyed ``<optimizer>/<index>.<name>``)
and ``state.json`` (step, optimizer groups, LR-scheduler states, RNG states). It is written under a temporary name and renamed into
place, and ``latest`` names the newest complete one, so a run killed at any moment leaves
either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

LATEST = "latest"


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in [*tensors.items(), *meta["scalars"].items()]:
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors |= {f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    meta = {"python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
            "numpy": [kind, keys.tolist(), pos, has_gauss, gauss]}
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    if torch.cuda.is_available() and "cuda0" in tensors:
        torch.cuda.set_rng_state_all([tensors[f"cuda{i}"] for i in range(torch.cuda.device_count())])
    version, state, gauss = meta["python"]
    random.setstate((version, tuple(state), gauss))
    kind, keys, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))


def save(folder: Path, step: int, weights: dict[str, torch.Tensor], optimizers: dict[str, dict],
         schedulers: dict[str, dict], extra: dict, keep: int) -> Path:
    """Write a checkpoint of ``weights``, the named optimizers' and LR schedulers' states and the RNG states."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"step-{step:06d}"
    partial = folder / f".step-{step:06d}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    opt_tensors, opt_meta = {}, {}
    for name, optimizer in optimizers.items():
        tensors, opt_meta[name] = _flatten_optimizer(optimizer)
        opt_tensors |= {f"{name}/{k}": v for k, v in tensors.items()}
    rng_tensors, rng_meta = rng_state()
    save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()}, partial / "weights.safetensors")
    save_file(opt_tensors | {f"rng.{k}": v for k, v in rng_tensors.items()}, partial / "optimizer.safetensors")
    state = {"step": step, "optimizers": opt_meta, "schedulers": schedulers, "rng": rng_meta, "extra": extra}
    (partial / "state.json").write_text(json.dumps(state))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    _write_atomic(folder / LATEST, final.name)
    for old in sorted(folder.glob("step-*"))[:-keep]:  # zero-padded names sort by step
        shutil.rmtree(old, ignore_errors=True)
    return final


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def latest(folder: Path) -> Path | None:
    pointer = folder / LATEST
    if not pointer.is_file():
        return None
    found = folder / pointer.read_text().strip()
    return found if found.is_dir() else None


def load(path: Path) -> tuple[int, dict[str, torch.Tensor], dict[str, dict], dict[str, dict], dict]:
    """(step, weights, optimizer states, scheduler states, extra) and restores the RNG states."""
    state = json.loads((path / "state.json").read_text())
    weights = load_file(path / "weights.safetensors")
    opt = load_file(path / "optimizer.safetensors")
    rng = {k[4:]: v for k, v in opt.items() if k.startswith("rng.")}
    set_rng_state(rng, state["rng"])
    optimizers = {}
    for name, meta in state["optimizers"].items():
        tensors = {k[len(name) + 1:]: v for k, v in opt.items() if k.startswith(f"{name}/")}
        optimizers[name] = _unflatten_optimizer(tensors, meta)
    return state["step"], weights, optimizers, state["schedulers"], state["extra"]
