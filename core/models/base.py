"""What every edit-model family exposes to samplers, trainers and nodes."""

from __future__ import annotations

import copy
import hashlib
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..conventions import add_noise, velocity
from ..generated_lora import LoraDelta
from .conditioning import SourceCond, TextCond

if TYPE_CHECKING:
    from ..samplers import EditSettings, Hooks


@dataclass
class ModelInfo:
    """Metadata that travels with a model file: what it is and how to sample it."""

    family: str
    name: str = ""
    method: str = ""
    base_hash: str = ""
    steps: int = 20
    guidance: float = 7.5
    image_guidance: float = 1.5
    extra: dict = field(default_factory=dict)  # family-specific settings (e.g. source_mode)

    def to_dict(self) -> dict:
        return asdict(self)


class TextCache:
    """Encodes each distinct prompt once; repeated prompts (the empty one above all) are free."""

    def __init__(self, encode, capacity: int = 64) -> None:
        self._encode, self._capacity = encode, capacity
        self._rows: OrderedDict[str, TextCond] = OrderedDict()

    def __call__(self, prompts: Sequence[str]) -> TextCond:
        missing = list(dict.fromkeys(p for p in prompts if p not in self._rows))
        if missing:
            self._rows.update(zip(missing, self._encode(missing).rows()))
        for p in prompts:
            self._rows.move_to_end(p)
        rows = [self._rows[p] for p in prompts]
        while len(self._rows) > self._capacity:
            self._rows.popitem(last=False)
        return TextCond.cat(rows)

    def clear(self) -> None:
        self._rows.clear()


def fingerprint(module: nn.Module) -> str:
    """A stable hash of a base model's weights, used to match adapters to their base.

    It hashes every parameter's name and shape plus a strided sample of its values in float32,
    which separates real checkpoints as surely as a full hash at a fraction of the cost.
    Adapter (LoRA) weights are left out so a base keeps its fingerprint with adapters loaded.
    A model's dtype is not part of it: ``EditModel.to`` keeps the fingerprint taken before
    its first cast (rounding to half precision changes the values).
    """
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        if "lora_" in name:
            continue
        name = name.replace(".base_layer", "")
        flat = tensor.detach().reshape(-1)
        sample = flat[:: max(1, flat.numel() // 1024)].float().cpu().contiguous()
        # "torch.float32" names the hashed values; it is the dtype earlier versions hashed here
        h.update(f"{name}:{tuple(tensor.shape)}:torch.float32".encode())
        h.update(sample.numpy().tobytes())
    return h.hexdigest()[:16]


class EditModel:
    """Base of the family wrappers.

    Latents at this interface are ``[B, C, h, w]`` (``[B, C, F, h, w]`` for a family with a time
    axis); ``predict`` takes and returns the flow convention of ``core.conventions`` whatever the
    family's native parameterisation, conditioned on a ``SourceCond`` from ``encode_source``.
    ``source=None`` asks for the frozen text-to-image behaviour.
    """

    family: ClassVar[str]
    COMPONENTS: ClassVar[tuple[str, ...]]  # constructor argument names, also the saved part names
    # The denoiser layers an edit LoRA trains (ByG), by name suffix; () for a family it does not train.
    lora_targets: ClassVar[tuple[str, ...]] = ()
    # The side of the pictures its family samples best, when a model does not say what it was trained at.
    default_size: ClassVar[int] = 512
    # Whether it fills a masked region (``encode_source`` takes a mask) instead of editing whole pictures.
    inpaints: ClassVar[bool] = False
    # Whether its latents (and pictures) carry a time axis: [B, C, F, h, w], clips rather than pictures.
    frames: ClassVar[bool] = False
    # Whether the text encoder learns with the denoiser (a toy model's small one learns the words).
    text_encoder_trains: ClassVar[bool] = False
    # The diffusers pipelines (model_index.json's _class_name) a folder of this family holds, each
    # with the info.extra settings a folder of it implies.
    pipelines: ClassVar[dict[str, dict]] = {}
    # The original-layout single files (as ComfyUI keeps them in models/checkpoints) this family
    # reads, for messages; "" for none. ``reads_original_layout`` tells them by their tensors.
    original_layout: ClassVar[str] = ""
    info: ModelInfo
    denoiser: nn.Module

    def __init__(self, info: ModelInfo) -> None:
        self.info = info
        self.text_cache = TextCache(self._encode_text)
        self.edit_loras: tuple[tuple[LoraDelta, float], ...] = ()  # merged into the weights while sampling
        self._fingerprint: str | None = None  # taken before the first cast, which rounds the weights

    def with_edit_lora(self, delta: LoraDelta, strength: float) -> "EditModel":
        """The same model (weights shared, this one unchanged) sampling with ``delta`` merged at ``strength``."""
        view = copy.copy(self)
        view.edit_loras = self.edit_loras + ((delta, strength),)
        return view

    def with_denoiser(self, denoiser: nn.Module) -> "EditModel":
        """The same model (every other part shared, this one unchanged) running ``denoiser``."""
        view = copy.copy(self)
        name = next(name for name, module in self.modules().items() if module is self.denoiser)
        setattr(view, name, denoiser)
        view.denoiser = denoiser
        return view

    # -- what a family implements ---------------------------------------------------------
    @property
    def factor(self) -> int:
        """Image sides must be a multiple of this many pixels."""
        raise NotImplementedError

    @classmethod
    def default_info(cls) -> ModelInfo:
        """Sampling defaults for a model of this family that carries none of its own."""
        raise NotImplementedError

    @classmethod
    def reads_original_layout(cls, shapes: dict[str, tuple[int, ...]]) -> bool:
        """Whether a bare safetensors file of these tensor shapes is one of ``original_layout``."""
        return False

    @classmethod
    def from_original_layout(cls, state: dict[str, torch.Tensor], tokenizer, name: str) -> "EditModel":
        """A model from such a file's tensors and a CLIP tokenizer (the file carries none)."""
        raise NotImplementedError

    def _encode_text(self, prompts: list[str]) -> TextCond:
        raise NotImplementedError

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels [B,3,H,W] in -1..1 -> latents in the space the model denoises."""
        raise NotImplementedError

    def source_latents(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels -> the source latents the denoiser reads (may differ from ``encode_image``)."""
        raise NotImplementedError

    def masked_source(self, blanked: torch.Tensor, regenerate: torch.Tensor) -> SourceCond:
        """An inpainter's condition: the picture ``blanked`` (zero) where ``regenerate`` [B,1,H,W] is 1."""
        raise NotImplementedError

    def encode_source(self, pixels: torch.Tensor, mask: torch.Tensor | None = None) -> SourceCond:
        """Pixels [B,3,H,W] in -1..1 (and, for a family that inpaints, a mask [B,1,H,W], 1 where
        the picture is regenerated, read as yes from 0.5 as diffusers binarises it) -> what the
        denoiser is conditioned on."""
        if self.inpaints and mask is None:
            raise ValueError(f"A {self.family} model fills a masked region: it needs a mask (1 where to paint).")
        if mask is None:
            return SourceCond(self.source_latents(pixels))
        if not self.inpaints:
            raise ValueError(f"A {self.family} model edits whole pictures and takes no mask; "
                             "crop to the masked region and composite instead.")
        regenerate = (mask.to(pixels.device) >= 0.5).to(pixels.dtype)
        return self.masked_source(pixels * (1 - regenerate), regenerate)

    def as_video(self) -> "EditModel":
        """A video model made from this one's weights (a copy), for a text-to-video trainer to start
        from; a family that has no such form says so."""
        if self.frames:
            return self
        raise ValueError(f"This {self.family} model has no video form; start from a video model.")

    def as_inpainter(self) -> "EditModel":
        """An inpainting model made from this one's weights (a copy), for an inpainting trainer to start
        from; a family that has no such form says so."""
        if self.inpaints:
            return self
        raise ValueError(f"This {self.family} model cannot be made an inpainter; start from an inpainting model.")

    def as_source(self, latents: torch.Tensor) -> SourceCond:
        """Latents in ``encode_image``'s space (a sampled edit) as a source to condition on; for
        families whose source is those very latents, they themselves."""
        if self.inpaints:
            raise ValueError("An inpainting model's source carries its mask: encode the picture with its mask "
                             "(encode_source).")
        return SourceCond(latents)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def predict(self, x_t: torch.Tensor, t: torch.Tensor, text: TextCond,
                source: SourceCond | None = None) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, source: SourceCond, text: TextCond, negative: TextCond, settings: "EditSettings",
               hooks: "Hooks") -> torch.Tensor:
        """The family's sampling loop: seeded noise to the edited latents of ``source``. Families with a
        text-to-image (or -video) mode also take ``source=None`` and the latents' ``shape``."""
        raise NotImplementedError

    def denoising_loss(self, target: torch.Tensor, text: TextCond, source: SourceCond,
                       generators: list[torch.Generator]) -> torch.Tensor:
        """The family's training loss for denoising ``target`` pixels [B,3,H,W] read with ``text``
        and ``source`` (``encode_source``, ``kept`` where not dropped), every draw from the sample's own
        generator: flow matching in the one time convention, at ``training_times``."""
        x0 = self.encode_image(target)
        eps = torch.stack([torch.randn(x0.shape[1:], generator=g) for g in generators]).to(x0)
        t = self.training_times(generators).to(x0)
        prediction = self.predict(add_noise(x0, t, eps), t, text, source)
        return F.mse_loss(prediction.float(), velocity(x0, eps).float())

    def training_times(self, generators: list[torch.Generator]) -> torch.Tensor:
        """One flow time per sample, drawn as the family trains: logit-normal (most samples mid-way)."""
        return torch.sigmoid(torch.stack([torch.randn((), generator=g) for g in generators]))

    # -- shared ---------------------------------------------------------------------------
    def components(self) -> dict[str, object]:
        """Named parts (modules, tokenizers, scheduler) for saving and device moves."""
        return {name: getattr(self, name) for name in self.COMPONENTS}

    def encode_text(self, prompts: Sequence[str]) -> TextCond:
        return self.text_cache(list(prompts))

    def modules(self) -> dict[str, nn.Module]:
        return {k: v for k, v in self.components().items() if isinstance(v, nn.Module)}

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.denoiser.parameters()).dtype

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "EditModel":
        if (device is None or torch.device(device) == self.device) and (dtype is None or dtype == self.dtype):
            return self
        if dtype is not None and dtype != self.dtype and self._fingerprint is None:
            self._fingerprint = fingerprint(self.denoiser)
        for module in self.modules().values():
            module.to(device=device, dtype=dtype)
        self.text_cache.clear()
        return self

    @property
    def working_size(self) -> int:
        """The side of the pictures it samples best: the size it was trained at, else its family's."""
        return int(self.info.extra.get("image_size") or self.default_size)

    def base_hash(self) -> str:
        """The fingerprint of the weights as loaded, the same in every dtype and on every device,
        so what was made for a model fits it in half precision on a GPU."""
        return self._fingerprint or fingerprint(self.denoiser)
