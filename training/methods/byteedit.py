"""``byteedit``: ByteEdit's perceptual feedback learning (PeFL) with its adversarial coherence term,
for inpainting models (methods.md §4.3, §4.4).

Each step, on the T-step time grid of the phase (``steps``; in the one flow convention,
step k is time k/T):
1. the masked input x·(1-m) is noised to step ``start`` (T1; the heaviest noise is skipped);
2. it is sampled without gradient, by Euler, down to a step t' drawn per sample from 1..``last`` (T2);
3. one prediction at t', with gradient, gives x0', decoded to pixels.

The losses on it: each reward's ``-log sigmoid(score)`` on the composite the user would get
(x0' in the hole, the input elsewhere), weighted (the paper's 0.01 for alignment and quality, 0.05
for the adversarial coherence term); and the regularisers L1(x, x0') and the perceptual distance,
both over the whole picture as the paper prints them, weighted by ``l1_weight`` and
``perceptual_weight`` (the paper's eta is not given). The coherence discriminator learns online
beside the editor (a loop critic with its own optimizer), from the same unrolled fills.

Progressive step compression is phase after phase, each a run of this trainer from the last
one's weights: T=20 (T1 15, T2 10), T=8 (6, 3) and, our extension, T=4 (3, 2)
(training/configs/byteedit_toy16*.yaml). The model file records its phase's T as its steps.
With every reward weight at 0 the same loop is the plain few-step fine-tune the results compare with.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from ...core.conventions import add_noise, x0_from_velocity
from ...core.models import EditModel
from ...core.samplers import EditSettings
from ..config import ConfigError
from ..data import Needs
from ..image_text import ImageTextEncoder
from ..rewards import AlignmentReward, CoherenceReward, PixelDiscriminator, QualityReward, perceptual_distance
from .base import Critic, per_sample, per_sample_step
from .inpaint import Inpaint


@dataclass
class ByteEditOptions:
    clip: str = ""  # a CLIP-like folder: the alignment reward and the perceptual features
    quality: str = ""  # the quality reward file the `reward` trainer writes
    steps: int = 20  # T: the phase's sampling steps
    start: int = 15  # T1: the step the masked input is noised to
    last: int = 10  # T2: t' is drawn from steps 1..T2
    alignment_weight: float = 0.01
    quality_weight: float = 0.01
    adversarial_weight: float = 0.05
    l1_weight: float = 1.0
    perceptual_weight: float = 1.0
    critic_lr: float = 1e-4
    critic_updates: int = 1
    critic_width: int = 32
    train_text_encoder: bool = False  # PeFL tunes the denoiser, as the paper tunes the UNet
    validate_tasks: int = 30
    validate_guidance: float = 1.0


class ByteEdit(Inpaint):
    name = "byteedit"
    Options = ByteEditOptions
    needs = Needs("inpaint")

    def __init__(self, config, options: ByteEditOptions) -> None:
        super().__init__(config, options)
        o = options
        if not 1 <= o.last < o.start <= o.steps:
            raise ConfigError(f"'byteedit' needs 1 <= last < start <= steps, not last {o.last}, start {o.start}, "
                              f"steps {o.steps}.")
        for key in ("alignment_weight", "quality_weight", "adversarial_weight", "l1_weight", "perceptual_weight"):
            if getattr(o, key) < 0:
                raise ConfigError(f"'byteedit.{key}' must be 0 or more, not {getattr(o, key)}.")
        if (o.alignment_weight or o.perceptual_weight) and not o.clip:
            raise ConfigError("'byteedit.clip' is needed for the alignment reward and the perceptual regulariser: "
                              "a CLIP-like folder (the toy world's: `python -m unpaired_edit.training clip`), "
                              "or set their weights to 0.")
        if o.quality_weight and not o.quality:
            raise ConfigError("'byteedit.quality' is needed for the quality reward: the file the `reward` trainer "
                              "writes, or set 'quality_weight' to 0.")
        self.clip = ImageTextEncoder.load(o.clip, "training config › byteedit.clip") if o.clip else None
        self.alignment = AlignmentReward(self.clip) if o.alignment_weight else None
        self.quality = QualityReward.load(o.quality) if o.quality_weight else None
        self.coherence = None
        self._placed = None  # the device the frozen encoders are on, once moved there

    def critics(self, model: EditModel) -> dict[str, Critic]:
        if not self.options.adversarial_weight:
            return {}
        self.coherence = CoherenceReward(PixelDiscriminator(self.options.critic_width))
        return {"coherence": Critic(self.coherence.discriminator, self.options.critic_updates, self.options.critic_lr)}

    def loss(self, model, batch, rngs, state):
        o = self.options
        pixels, regenerate, prompts = self._inputs(model, batch)
        painted, composite = self._fill(model, pixels, regenerate, self.instructions(model, prompts), rngs)
        terms = {"l1": (o.l1_weight, (pixels - painted).abs().mean())}
        if o.perceptual_weight:
            terms["perceptual"] = (o.perceptual_weight, perceptual_distance(self.clip, pixels, painted))
        for name, reward, weight in self._rewards():
            terms[name] = (weight, -F.logsigmoid(reward.score(composite, prompts, regenerate)).mean())
        loss = sum(weight * value for weight, value in terms.values())
        return loss, {"loss": loss.item(), **{name: value.item() for name, (_, value) in terms.items()}}

    def critic_loss(self, name, model, batch, rngs, state):
        pixels, regenerate, prompts = self._inputs(model, batch)
        with torch.no_grad():
            _, composite = self._fill(model, pixels, regenerate, self.instructions(model, prompts), rngs)
        loss = self.coherence.loss(pixels, composite, regenerate)
        return loss, {"loss": loss.item()}

    def _fill(self, model, pixels, regenerate, text, rngs) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoded one-step prediction and the composite the user would get (it in the hole)."""
        painted = model.decode(self.feedback_prediction(model, pixels, regenerate, text, rngs)).to(pixels)
        return painted, pixels * (1 - regenerate) + painted * regenerate

    def feedback_prediction(self, model: EditModel, pixels: torch.Tensor, regenerate: torch.Tensor, text,
                            rngs: list[torch.Generator]) -> torch.Tensor:
        """PeFL's three stages: the masked input noised to T1, Euler without gradient down to each
        sample's t' in 1..T2, then the one-step clean latents at t' (with gradient)."""
        o = self.options
        source = model.encode_source(pixels, regenerate)
        masked = model.encode_image(pixels * (1 - regenerate))
        eps = per_sample(rngs, masked.shape[1:]).to(masked)
        stop = per_sample_step(rngs, o.last).to(masked.device)
        x = add_noise(masked, o.start / o.steps, eps)
        with torch.no_grad():
            for k in range(o.start, int(stop.min()), -1):  # step k -> k - 1, for the samples still above t'
                t = torch.full((len(x),), k / o.steps, device=x.device)
                moved = x - model.predict(x, t, text, source) / o.steps
                x = torch.where((stop < k).reshape(-1, *[1] * (x.ndim - 1)), moved, x)
        t = (stop / o.steps).to(x)
        return x0_from_velocity(x, t, model.predict(x, t, text, source))

    def _inputs(self, model, batch) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        pixels = batch["image"].to(model.device, model.dtype)
        regenerate = (batch["mask"].to(pixels) >= 0.5).to(pixels)  # as encode_source binarises it
        if self._placed != model.device:  # the loop places the editor and critics; these are ours
            for frozen in (self.clip and self.clip.model, self.quality and self.quality.net):
                if frozen is not None:
                    frozen.to(model.device)
            self._placed = model.device
        return pixels, regenerate, list(batch["prompt"])

    def _rewards(self):
        o = self.options
        if o.alignment_weight:
            yield "alignment", self.alignment, o.alignment_weight
        if o.quality_weight:
            yield "quality", self.quality, o.quality_weight
        if o.adversarial_weight:
            yield "coherence", self.coherence, o.adversarial_weight

    def validation_settings(self) -> EditSettings:
        """The phase's own step count: what the model is made for."""
        return EditSettings(self.options.steps, self.options.validate_guidance, 1.0, seed=0)

    def save(self, model, out: Path) -> Path:
        model.info = replace(model.info, steps=self.options.steps)
        return super().save(model, out)
