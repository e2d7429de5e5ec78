"""``loc``: LoRA of Change. A hypernetwork learns to turn one before/after pair (A, A') into a
LoRA for a frozen editor, from pairs alone.

Per pair (the LoRA of Change paper):
- random exchange: with probability ``exchange`` the pair is read as (A', A);
- the query is the horizontally flipped pair (B, B') = (flip A, flip A') with probability
  ``flip`` (the paper always flips: a query that differs from what H sees);
- Δ = H(A, A'); the editor with +Δ must turn B into B' (forward) and, with -Δ, B' into B
  (LoRA Reverse, the term that stops Δ from simply encoding the picture A').
The editor gets the empty instruction and stays frozen (its text encoder too); only H learns.
Both terms are the family's denoising loss in the one flow-time convention (velocity MSE;
for ``ip2p`` a reweighting of its ε loss, times drawn uniformly over its DDPM steps), run as
one batch of 2B with the per-sample LoRAs [Δ; -Δ].

In the toy world a flip turns "move left" into "move right", so for move edits the flipped
query contradicts the pair; ``flip`` is an option so its effect can be measured. Validation
uses quads the oracle can score: Δ from a validation-split pair, applied to another scene the same
instruction fits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ...core.conventions import add_noise, velocity
from ...core.generated_lora import ATTENTION_PROJECTIONS, LoraDelta, applied, target_layers
from ...core.loc import LocConfig, LocHypernetwork, build_hypernetwork, save_hypernetwork
from ...core.models import EditModel
from ...core.samplers import EditSettings
from ..config import ConfigError
from ..data import Needs
from ..evaluate import edit_rows, evaluate_transfer
from .base import Method, TrainState, per_sample


@dataclass
class LocOptions:
    rank: int = 4
    width: int = 128
    blocks: int = 6  # the paper's M
    heads: int = 4
    targets: list[str] = field(default_factory=lambda: list(ATTENTION_PROJECTIONS))
    encoder_size: int = 16  # the hypernetwork's encoder sees both pictures at this size
    patch: int = 4
    encoder_blocks: int = 2
    vision_tower: str | None = None  # a CLIP vision folder to encode with (frozen) instead of the small ViT
    reverse: bool = True  # the LoRA Reverse term
    flip: float = 1.0
    exchange: float = 0.5
    validate_edits: int = 35  # validation-split pairs, each applied to another scene (5 of each kind)
    validate_steps: int = 20


class LocSystem:
    """What the loop trains: the frozen editor and the hypernetwork beside it."""

    def __init__(self, editor: EditModel, hypernetwork: LocHypernetwork) -> None:
        self.editor, self.hypernetwork = editor, hypernetwork

    def modules(self) -> dict[str, nn.Module]:
        return {**self.editor.modules(), "hypernetwork": self.hypernetwork}

    @property
    def device(self) -> torch.device:
        return self.editor.device


class Loc(Method):
    name = "loc"
    Options = LocOptions
    needs = Needs("pairs")

    def build_model(self) -> LocSystem:
        if self.config.model == "new":
            raise ConfigError("loc needs a trained editor to generate LoRAs for: set 'model'.")
        editor = super().build_model()
        o = self.options
        try:
            layers = target_layers(editor.denoiser, o.targets)
        except ValueError:
            raise ConfigError(f"loc makes LoRAs for the layers 'loc.targets' names ({', '.join(o.targets)}), which "
                              f"this {editor.family} model's denoiser lacks; ip2p and toy UNets have them.") from None
        targets = {name: [layer.in_features, layer.out_features] for name, layer in layers.items()}
        config = LocConfig(targets, o.rank, o.width, o.blocks, o.heads, o.encoder_size, o.patch, o.encoder_blocks)
        return LocSystem(editor, build_hypernetwork(config, o.vision_tower).to(editor.device))

    def trainable(self, system: LocSystem) -> dict[str, nn.Module]:
        return {"hypernetwork": system.hypernetwork}

    def trains(self, name: str) -> bool:
        return not name.startswith("hypernetwork.encoder.tower.")  # a CLIP vision tower stays frozen

    def loss(self, system: LocSystem, batch: dict, rngs: list[torch.Generator], state: TrainState):
        o, model = self.options, system.editor
        a, a2 = batch["source"].to(model.device, model.dtype), batch["target"].to(model.device, model.dtype)
        swap = _column(per_sample(rngs, (), torch.rand) < o.exchange)
        before, after = torch.where(swap, a2, a), torch.where(swap, a, a2)
        flip = _column(per_sample(rngs, (), torch.rand) < o.flip)
        query, answer = torch.where(flip, before.flip(-1), before), torch.where(flip, after.flip(-1), after)
        delta = system.hypernetwork(before, after)
        if o.reverse:  # forward B -> B' with +Δ and LoRA Reverse B' -> B with -Δ, in one batch
            delta, clean, source = LoraDelta.cat([delta, -delta]), torch.cat([answer, query]), torch.cat([query, answer])
        else:
            clean, source = answer, query
        z = model.encode_image(clean, rngs + rngs if o.reverse else rngs)
        draws = 2 if o.reverse else 1
        t = torch.cat([model.training_times(rngs) for _ in range(draws)]).to(z)
        eps = torch.cat([per_sample(rngs, z.shape[1:]) for _ in range(draws)]).to(z)
        text = model.encode_text([""]).repeat_to(len(z))
        with applied(model.denoiser, delta):
            v = model.predict(add_noise(z, t, eps), t, text, model.encode_source(source))
        per_pair = F.mse_loss(v.float(), velocity(z, eps).float(), reduction="none").flatten(1).mean(1)
        loss = per_pair.mean()
        logs = {"loss": loss.item()}
        if o.reverse:
            forward, reverse = per_pair.chunk(2)
            logs |= {"forward": forward.mean().item(), "reverse": reverse.mean().item()}
        return loss, logs

    @torch.no_grad()
    def validate(self, system: LocSystem, rows) -> tuple[torch.Tensor, dict[str, float]]:
        """Δ from each validation-split pair, applied to another scene the same instruction fits, scored
        by the oracle: a grid of (before, after, new scene, its edit, true edit) and metrics. With
        held-out rows, Δ from each row's pair remakes its after picture (``edit_rows``)."""
        settings = EditSettings(self.options.validate_steps, 1.0, 1.0, seed=0)
        if rows is not None:
            metrics, grid = edit_rows(system.editor, rows, self.options.validate_edits, settings, system.hypernetwork)
            return grid, metrics
        table, pictures = evaluate_transfer(system.editor, self.options.validate_edits, self.config.data.size,
                                            settings, system.hypernetwork, split="validation")
        metrics = {f"{kind}/{m}": v for kind, scores in table.items() for m, v in scores.items() if m != "n"}
        return pictures, metrics

    def save(self, system: LocSystem, out: Path) -> Path:
        return save_hypernetwork(system.hypernetwork, system.editor, out / "hypernetwork.safetensors",
                                 image_size=self.config.data.size)


def _column(mask: torch.Tensor) -> torch.Tensor:
    return mask.reshape(-1, 1, 1, 1)
