"""``byg``: Bootstrap your Generator (Tewel et al., ICML 2026), unpaired editing with flow matching.

No edited image is ever seen. Per source ``x`` with instruction ``c``, reverse instruction
``c̄`` and captions ``p_src`` / ``p_tgt`` (the ByG paper; the time convention is ours: t=1 noise):

1. the EMA editor samples from noise towards the edit in ``rollout_steps`` Euler steps,
   giving the noisy state ``ỹ_t`` at the sampled time and the clean end ``ỹ_0`` (no grad);
2. the trainable editor predicts ``v`` at ``ỹ_t``; the frozen text-to-image model (adapters
   off, no source) gives ``v_src`` / ``v_tgt`` for the two captions; the forward prior matches
   the direction of ``v - v_src`` to ``v_tgt - v_src`` and anchors ``v`` to ``v_tgt`` by ``alpha``;
3. gradient routing: the reverse pass is conditioned on ``ỹ_0`` in value, while its gradient
   reaches ``v`` through the one-step estimate ``ŷ = ỹ_t - t·v`` (straight-through);
4. the reverse pass reconstructs ``x`` from the routed edit with ``c̄`` (cycle loss), with
   the mirrored prior (towards ``p_src``);
5. identity: ``x`` edited by ``c̄`` (already true of ``x``) must stay ``x``: every sample
   during the warm-up, then a ``identity_prob`` share of them.

Readings where the paper is unclear, all options here: ``t`` uniform on the rollout grid
(the snapshot then lies on the EMA trajectory itself), a fresh ``t'`` for the reverse pass,
identity chosen per sample (in expectation the paper's per-step choice), alpha 0.1.
Ablations: ``gradient_routing: false`` conditions the reverse pass on ``ŷ`` itself (value and
gradient from the one-step path); ``cycle: false`` drops the reverse pass and its prior.

Trainable: a LoRA on the denoiser (peft), which for the toy family includes ``conv_in`` and
with it the source channels that the base holds at zero, and, for the toy family, the small
text encoder (the base never read instruction words); the prior reads captions with a frozen
copy of it. The saved model has the LoRA merged: a plain editor of its family.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from peft.tuners.lora import LoraLayer
from torch import nn

from ...core.adapters import add_lora
from ...core.conventions import add_noise, velocity, x0_from_velocity
from ...core.models import EditModel, SourceCond, TextCond
from ..config import ConfigError
from ..data import Needs
from .base import logit_normal_weights, per_sample, per_sample_step
from .editor import EditorMethod, EditorOptions

ADAPTER = "byg"


@dataclass
class BygOptions(EditorOptions):
    lora_rank: int = 16
    rollout_steps: int = 10  # EMA Euler steps from noise to the clean pseudo-target
    alpha: float = 0.1  # weight of the magnitude anchor inside each prior
    lambda_prior: float = 1.0
    lambda_cycle: float = 1.0
    lambda_identity: float = 0.2
    identity_warmup: int = 200  # steps of identity only, before the edit losses start
    identity_prob: float = 0.15  # share of identity samples after the warm-up
    gradient_routing: bool = True
    cycle: bool = True
    # Which rollout steps the forward pass trains at: "uniform" over the grid (our reading of the
    # paper), or "logit_normal": the grid weighted by the density of the times the base was trained at.
    forward_time: str = "uniform"
    # Our departure, off by default: the cycle's weight rises linearly from 0 over this many steps
    # after the identity warm-up, so the forward edit forms before the cycle can pull it back.
    cycle_ramp: int = 0


def _mean_per_sample(x: torch.Tensor) -> torch.Tensor:
    return x.float().flatten(1).mean(1)


def direction_loss(v: torch.Tensor, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """Per sample, 1 - cos(v - start, end - start) over all its elements: 0 when ``v`` moves
    from ``start`` exactly towards ``end``, whatever the distance."""
    return 1 - F.cosine_similarity((v - start).float().flatten(1), (end - start).float().flatten(1), dim=1)


def prior_loss(v: torch.Tensor, start: torch.Tensor, end: torch.Tensor, alpha: float) -> torch.Tensor:
    """ByG's instruction cue from the frozen model (Eq. 2): direction plus ``alpha`` · MSE to ``end``."""
    return direction_loss(v, start, end) + alpha * _mean_per_sample((v - end) ** 2)


def edit_magnitude(v: torch.Tensor, v_src: torch.Tensor, v_tgt: torch.Tensor) -> torch.Tensor:
    """Per sample, how far ``v`` goes along the captions' difference Δ = v_tgt - v_src:
    λ = <v - v_src, Δ> / |Δ|² (0: the source caption's velocity, no edit; 1: the target caption's)."""
    delta = (v_tgt - v_src).float().flatten(1)
    return ((v - v_src).float().flatten(1) * delta).sum(1) / delta.square().sum(1).clamp_min(1e-12)


def by_kind(name: str, values: torch.Tensor, kinds: list[str]) -> dict[str, float]:
    """``{name/kind: mean}`` for each kind in the batch, and ``name/all``."""
    groups = {"all": list(range(len(kinds)))}
    for i, kind in enumerate(kinds):
        groups.setdefault(kind, []).append(i)
    return {f"{name}/{kind}": values[rows].mean().item() for kind, rows in groups.items()}


def route(ema_sample: torch.Tensor, one_step: torch.Tensor) -> torch.Tensor:
    """Gradient routing (Eq. 4): the value of ``ema_sample``, the gradient of ``one_step``."""
    return ema_sample.detach() + (one_step - one_step.detach())


def flow_matching_loss(v: torch.Tensor, x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Per sample MSE to the flow-matching velocity ``eps - x0``."""
    return _mean_per_sample((v - velocity(x0, eps)) ** 2)


@torch.no_grad()
def rollout(model: EditModel, noise: torch.Tensor, text: TextCond, source: SourceCond, steps: int,
            k: torch.Tensor, end: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Euler from noise (t=1) on ``steps`` uniform steps; returns each sample's state at t = k/steps
    and, with ``end``, the clean end state (t=0). Without it each sample stops at its snapshot: only
    the samples still above theirs are stepped, and the rollout ends at the lowest one."""
    times = torch.linspace(1.0, 0.0, steps + 1)
    text = text.repeat_to(len(noise))
    y, snapshot = noise, noise
    last = steps if end else steps - int(k.min())
    for i in range(last):
        snapshot = torch.where((k == steps - i).reshape(-1, *[1] * (y.dim() - 1)), y, snapshot)
        moving = torch.arange(len(y), device=y.device) if end else (k < steps - i).nonzero().flatten()
        v = model.predict(y[moving], times[i], text[moving], source[moving])
        y = y.index_copy(0, moving, y[moving] + (times[i + 1] - times[i]) * v)
    snapshot = torch.where((k == steps - last).reshape(-1, *[1] * (y.dim() - 1)), y, snapshot)
    return snapshot, y if end else None


class MergedDenoiser:
    """The denoiser with the LoRA merged into plain layers, for passes without gradient (the rollout):
    each adapted layer becomes its base layer with its own weight, base plus the adapter's delta as
    ``refresh`` last found it; every other weight is shared with the training denoiser, so the copy
    costs only the adapted layers' weights, and its passes skip the LoRA branch."""

    def __init__(self, denoiser: nn.Module) -> None:
        self.layers = {name: m for name, m in denoiser.named_modules() if isinstance(m, LoraLayer)}
        own = {id(layer.base_layer.weight) for layer in self.layers.values()}
        shared = {id(t): t for t in (*denoiser.parameters(), *denoiser.buffers()) if id(t) not in own}
        self.module = copy.deepcopy(denoiser, shared)
        for name in self.layers:
            self.module.set_submodule(name, self.module.get_submodule(name).base_layer)

    @torch.no_grad()
    def refresh(self) -> nn.Module:
        """Merge the adapters' current weights (swap the EMA in first to merge the EMA's)."""
        for name, layer in self.layers.items():
            self.module.get_submodule(name).weight.copy_(layer.base_layer.weight + layer.get_delta_weight(ADAPTER))
        return self.module


@contextmanager
def adapters_off(model: EditModel):
    """The frozen text-to-image model: the same denoiser with its LoRA disabled."""
    model.denoiser.disable_adapters()
    try:
        yield
    finally:
        model.denoiser.enable_adapters()


class ByG(EditorMethod):
    name = "byg"
    Options = BygOptions
    needs = Needs("instructions", ("reverse", "source_caption", "target_caption"))

    def __init__(self, config, options: BygOptions) -> None:
        super().__init__(config, options)
        times = {"uniform": None, "logit_normal": logit_normal_weights}
        if self.options.forward_time not in times:
            raise ConfigError(f"byg.forward_time must be one of {sorted(times)}, not {self.options.forward_time!r}.")
        make = times[self.options.forward_time]
        self.step_weights = make(self.options.rollout_steps).float() if make else None

    def build_model(self) -> EditModel:
        model = super().build_model()
        if not model.lora_targets:
            raise ConfigError(f"byg trains models whose family names its LoRA layers (flow, toy), not {model.family}.")
        if self.trains_text_encoder(model):  # the prior reads captions as the base did
            self.caption_encoder = copy.deepcopy(model.text_encoder).requires_grad_(False).eval()
        add_lora(model, ADAPTER, self.options.lora_rank, list(model.lora_targets))
        self.merged: MergedDenoiser | None = None  # made by the first rollout, on the device the loop chose
        return model

    def cycle_weight(self, step: int) -> float:
        """lambda_cycle, ramped over ``cycle_ramp`` steps after the identity warm-up."""
        o = self.options
        if not o.cycle_ramp:
            return o.lambda_cycle
        return o.lambda_cycle * min(1.0, max(0, step - o.identity_warmup + 1) / o.cycle_ramp)

    def trains(self, name: str) -> bool:
        return name.startswith("text_encoder.") or ".lora_" in name

    @torch.no_grad()
    def captions(self, model, prompts: list[str]) -> TextCond:
        if not self.trains_text_encoder(model):
            return model.encode_text(prompts)
        return TextCond(self.caption_encoder.to(model.device)(model.token_ids(prompts))[0])

    def frozen(self, model, points: list[tuple[torch.Tensor, torch.Tensor]], first: list[str],
               second: list[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The frozen text-to-image velocities for both caption lists at each point (y, t), all in
        one pass with the captions encoded once: [(v_first, v_second) per point]."""
        captions = self.captions(model, first + second)
        with torch.no_grad(), adapters_off(model):
            v = model.predict(torch.cat([y for y, _ in points for _ in (first, second)]),
                              torch.cat([t for _, t in points for _ in (first, second)]),
                              TextCond.cat([captions] * len(points)), None)
        halves = v.chunk(2 * len(points))
        return list(zip(halves[::2], halves[1::2]))

    def loss(self, model, batch, rngs, state):
        o = self.options
        # The source latent both as the picture to reconstruct and as the condition: the toy
        # and flow families condition on the very latents they denoise.
        source = model.encode_source(batch["source"].to(model.device, model.dtype))
        x = source.latents
        shape = x.shape[1:]
        # Every sample draws the same numbers in the same order, whatever branch it takes.
        p_identity = 1.0 if state.step < o.identity_warmup else o.identity_prob
        identity = (per_sample(rngs, (), torch.rand) < p_identity).to(x.device)
        k = per_sample_step(rngs, o.rollout_steps, self.step_weights)
        noise, eps_rev, eps_id = (per_sample(rngs, shape).to(x) for _ in range(3))
        t_rev, t_id = (per_sample(rngs, (), torch.rand).to(x) for _ in range(2))
        edit = (~identity).nonzero().flatten()
        pick = _subset(batch, edit)
        # The rollout swaps the EMA weights in and out in place, so it runs before any pass
        # that keeps the weights for backward.
        if len(edit):
            y_t, y_0 = self.bootstrap(model, state.ema, source[edit], pick("instruction"), noise[edit],
                                      k[edit].to(x.device))
        per = torch.zeros(len(x), device=x.device)
        logs = {}
        if identity.any():
            i = identity.nonzero().flatten()
            l_id = self.identity_loss(model, source[i], _subset(batch, i)("reverse"), t_id[i], eps_id[i])
            per = per.index_put((i,), o.lambda_identity * l_id)
            logs["identity"] = l_id.mean().item()
        if len(edit):
            l_edit, parts, probes = self.edit_loss(model, source[edit], pick("instruction"), pick("reverse"),
                                                   pick("source_caption"), pick("target_caption"), y_t, y_0,
                                                   (k[edit] / o.rollout_steps).to(x), t_rev[edit], eps_rev[edit],
                                                   self.cycle_weight(state.step), self.logs_at(state.step))
            per = per.index_put((edit,), l_edit)
            logs |= {name: value.mean().item() for name, value in parts.items()}
            kinds = pick("kind") if "kind" in batch else ["all"] * len(edit)
            for name, values in probes.items():
                logs |= by_kind(name, values, kinds)
        loss = per.mean()
        return loss, {"loss": loss.item(), **logs}

    @torch.no_grad()
    def bootstrap(self, model, ema, source, instruction, noise, k):
        """The EMA editor's own edit of ``source``: (state at t = k/steps, clean end), no gradient,
        run on the EMA weights merged into plain layers."""
        if self.merged is None:
            self.merged = MergedDenoiser(model.denoiser)
        with ema.swapped_in() if ema is not None else nullcontext():
            editor = model.with_denoiser(self.merged.refresh())
            text = self.instructions(model, instruction)
        return rollout(editor, noise, text, source, self.options.rollout_steps, k, end=self.uses_clean_end())

    def uses_clean_end(self) -> bool:
        """Whether the loss reads the rollout's clean end: only the routed cycle does."""
        return self.options.cycle and self.options.gradient_routing

    def logs_at(self, step: int) -> bool:
        """Whether the loop writes this step's logs (the diagnostics cost a backward pass)."""
        return (step + 1) % self.config.log_every == 0 or step + 1 == self.config.steps

    def identity_loss(self, model, source, reverse, t, eps):
        """The source edited by an instruction it already satisfies must come back as itself."""
        x = source.latents
        v = model.predict(add_noise(x, t, eps), t, self.instructions(model, reverse), source)
        return flow_matching_loss(v, x, eps)

    def edit_loss(self, model, source, instruction, reverse, source_caption, target_caption, y_t, y_0, t, t_rev,
                  eps_rev, cycle_weight: float, probe: bool = False):
        """Forward prior, and with ``cycle`` the routed reverse pass, its prior and the cycle loss:
        (per-sample total, its terms, per-sample diagnostics). With ``probe`` the diagnostics are
        the edit magnitude ``lambda`` of the forward velocity and, with the cycle, ``cycle_pull``:
        the cosine between the cycle loss's descent direction on the forward velocity and Δ
        (negative: the cycle pushes the edit back)."""
        o = self.options
        x = source.latents
        v = model.predict(y_t, t, self.instructions(model, instruction), source)
        x_t = add_noise(x, t_rev, eps_rev)  # the reverse pass's point, drawn whether or not it runs
        points = [(y_t, t), (x_t, t_rev)] if o.cycle else [(y_t, t)]
        (v_src, v_tgt), *reverse_prior = self.frozen(model, points, source_caption, target_caption)
        parts = {"prior_forward": prior_loss(v, v_src, v_tgt, o.alpha)}
        total = o.lambda_prior * parts["prior_forward"]
        if o.cycle:
            y_hat = x0_from_velocity(y_t, t, v)
            edited = route(y_0, y_hat) if o.gradient_routing else y_hat
            v_rev = model.predict(x_t, t_rev, self.instructions(model, reverse), model.as_source(edited))
            (u_src, u_tgt), = reverse_prior
            parts["cycle"] = flow_matching_loss(v_rev, x, eps_rev)
            parts["prior_reverse"] = prior_loss(v_rev, u_tgt, u_src, o.alpha)
            total = total + cycle_weight * parts["cycle"] + o.lambda_prior * parts["prior_reverse"]
        probes = {}
        if probe:
            probes["lambda"] = edit_magnitude(v.detach(), v_src, v_tgt)
            if o.cycle and v.requires_grad:
                pull, = torch.autograd.grad(parts["cycle"].sum(), v, retain_graph=True)
                probes["cycle_pull"] = F.cosine_similarity(-pull.float().flatten(1), (v_tgt - v_src).float().flatten(1))
        return total, parts, probes

    def save(self, model, out):
        """A plain editor: a copy with the LoRA merged into the weights and removed."""
        return super().save(merged_copy(model), out)


def _subset(batch: dict, index: torch.Tensor):
    """``key -> the batch's strings under key at index``."""
    rows = index.tolist()
    return lambda key: [batch[key][j] for j in rows]


def merged_copy(model: EditModel) -> EditModel:
    merged = copy.deepcopy(model)
    merged.denoiser.fuse_lora(adapter_names=[ADAPTER])
    merged.denoiser.unload_lora()
    return merged
