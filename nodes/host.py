"""The one place that talks to ComfyUI. Without ComfyUI (the headless runner, tests) every
function falls back to plain behaviour: a tqdm bar, no interrupts, a local models folder."""

from __future__ import annotations

import os
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Callable, Iterator

import torch

from ..core.errors import EditError

try:  # inside a running ComfyUI
    import comfy.model_management as mm
    import comfy.utils
    import folder_paths

    IN_COMFY = True
except ImportError:
    mm = folder_paths = None
    IN_COMFY = False

# Folder kinds, with ComfyUI's names, that the loaders list.
MODEL_FILE_KINDS = ("checkpoints", "diffusion_models")
MODELS_DIR_ENV = "UNPAIRED_EDIT_MODELS_DIR"
_dtype_override: ContextVar[torch.dtype | None] = ContextVar("unpaired_edit_dtype", default=None)


def _local_models_dir() -> Path:
    return Path(os.environ.get(MODELS_DIR_ENV, "models"))


def register_folder(kind: str) -> None:
    """Give ComfyUI a models/<kind> folder of the pack's own (LoC hypernetworks)."""
    if IN_COMFY:
        folder_paths.add_model_folder_path(kind, os.path.join(folder_paths.models_dir, kind), is_default=True)


def folders(kind: str) -> list[Path]:
    if IN_COMFY:
        return [Path(p) for p in folder_paths.get_folder_paths(kind)]
    return [_local_models_dir() / kind]


def list_files(kind: str, suffixes: tuple[str, ...] = (".safetensors",)) -> list[str]:
    if IN_COMFY:
        return [n for n in folder_paths.get_filename_list(kind) if n.lower().endswith(suffixes)]
    names = []
    for root in folders(kind):
        if root.is_dir():
            names += [p.relative_to(root).as_posix() for p in root.rglob("*")
                      if p.suffix.lower() in suffixes and p.is_file()]  # as ComfyUI: a folder is not a file
    return sorted(names)


def list_diffusers_folders() -> list[str]:
    """Sub-folders of models/diffusers that hold a diffusers pipeline."""
    names = []
    for root in folders("diffusers"):
        if root.is_dir():
            names += [p.parent.relative_to(root).as_posix() for p in root.rglob("model_index.json")]
    return sorted(names)


def full_path(kind: str, name: str) -> Path | None:
    if IN_COMFY and kind != "diffusers":
        found = folder_paths.get_full_path(kind, name)
        return Path(found) if found else None
    for root in folders(kind):
        path = root / name
        inside = path.resolve().is_relative_to(root.resolve())  # as ComfyUI: no "../" out of the folder
        if inside and (path.is_dir() if kind == "diffusers" else path.is_file()):
            return path
    return None


def find_file(kind: str, name: str, where: str) -> Path:
    """``name`` from a models/<kind> list, or an error that says how to make it appear."""
    path = full_path(kind, name)
    if path is None:
        raise EditError(where, f"'{name}' was not found in models/{kind}.",
                        f"Put the file in models/{kind} and refresh (press R in ComfyUI).")
    return path


def clip_tokenizer_dir() -> Path | None:
    """CLIP's tokenizer files, which original-layout SD checkpoints lack: ComfyUI ships them;
    without ComfyUI, models/tokenizers/clip may hold them."""
    if IN_COMFY:
        return Path(comfy.utils.__file__).parent / "sd1_tokenizer"
    local = _local_models_dir() / "tokenizers" / "clip"
    return local if local.is_dir() else None


def compute_device() -> torch.device:
    return mm.get_torch_device() if IN_COMFY else torch.device("cpu")


@contextmanager
def dtype_override(dtype: torch.dtype | None) -> Iterator[None]:
    """Edit models load in ``dtype`` meanwhile (the runner's --dtype); None keeps the usual choice."""
    token = _dtype_override.set(dtype)
    try:
        yield
    finally:
        _dtype_override.reset(token)


def compute_dtype(device: torch.device) -> torch.dtype:
    """float16 where ComfyUI would run a UNet in it, float32 otherwise (and always on the CPU),
    unless ``dtype_override`` says otherwise."""
    if (forced := _dtype_override.get()) is not None:
        return forced
    if IN_COMFY and device.type != "cpu":
        if mm.should_use_bf16(device):
            return torch.bfloat16
        if mm.should_use_fp16(device):
            return torch.float16
    return torch.float32


def offload_device() -> torch.device:
    return mm.unet_offload_device() if IN_COMFY else torch.device("cpu")


def make_room(num_bytes: int, device: torch.device) -> None:
    """Ask ComfyUI to unload its own models until ``num_bytes`` are free on ``device``."""
    if IN_COMFY and device.type != "cpu":
        mm.free_memory(num_bytes, device)


def should_stop() -> bool:
    """Raises ComfyUI's own interrupt exception after a Cancel; False otherwise."""
    if IN_COMFY:
        mm.throw_exception_if_processing_interrupted()
    return False


def progress(total: int) -> Callable[[int, int, "torch.Tensor | None"], None]:
    """A ``progress(step, total, preview_latents)`` callback for the samplers."""
    if IN_COMFY:
        bar = comfy.utils.ProgressBar(total)

        def report(step: int, total: int, preview: torch.Tensor | None) -> None:
            image = latent_preview(preview) if preview is not None else None
            bar.update_absolute(step, total, ("JPEG", image, 512) if image is not None else None)

        return report
    from tqdm.auto import tqdm

    bar = tqdm(total=total, leave=False, disable=os.environ.get("UNPAIRED_EDIT_QUIET") == "1")

    def report(step: int, total: int, preview: torch.Tensor | None) -> None:
        bar.total = total
        bar.update(step - bar.n)
        if step >= total:
            bar.close()

    return report


def latent_preview(latents: torch.Tensor):
    """A rough RGB picture of the first image's (or clip's first frame's) latents (its first three
    channels, stretched)."""
    from PIL import Image

    x = latents[0, :3].float()
    if x.dim() == 4:  # a clip's latents [C, F, h, w]: its first frame
        x = x[:, 0]
    lo, hi = x.amin(dim=(1, 2), keepdim=True), x.amax(dim=(1, 2), keepdim=True)
    x = ((x - lo) / (hi - lo + 1e-6) * 255).byte().movedim(0, -1).cpu().numpy()
    return Image.fromarray(x)
