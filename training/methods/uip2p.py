"""``uip2p``: Unsupervised InstructPix2Pix (Simsar et al., ICCV 2025), editing learnt from
(source, instruction, reverse instruction, captions) with no edited image.

One shared editor makes both edits of a step, each read off as a one-step clean estimate at
its own diffusion time ("unified prediction with varying diffusion steps"):

- forward: the source, noised to ``t_f``, conditioned on the source and instruction ``c_f``,
  gives the edit ``x_edit``;
- reverse: the source, noised to an independent ``t_r``, conditioned on ``x_edit`` (re-encoded
  as a source, with gradients) and the reverse instruction ``c_r``, gives ``x_rec``.

Losses (the UIP2P paper's method section could not be read, so every form is our
most faithful reading and every weight is an option):

- ``L_clip = 1 - cos(E_I(x_edit) - E_I(x), E_T(T_out) - E_T(T_in))``: the picture changes
  the way the captions do (CLIP direction);
- ``L_recon = |x_rec - x|``, mean L1 on pixels: the reverse edit undoes the forward one;
- ``L_sim = 1 - cos(E_I(x_rec), E_I(x))``: the semantic half of reconstruction (the
  reading we hold likelier). ``similarity: edited_caption`` selects the other reading,
  ``1 - cos(E_I(x_edit), E_T(T_out))``;
- ``L_attn``: the forward and reverse passes attend to their instructions in the same place.
  Per cross-attention layer, the attention every position pays to the instruction's words
  (special and padding tokens left out), averaged over heads and normalised to mean 1 over
  positions; MSE between the two passes, averaged over layers.

``E_I`` / ``E_T`` is any CLIP-like encoder pair from a local folder (``clip:``), frozen; the
picture path to it stays differentiable. The VAE (ip2p) is frozen and differentiable too.
Conditioning dropout (InstructPix2Pix's, for two-way guidance) applies to the reverse pass
only: its target is a real picture, so a dropped condition still leaves a true denoising
target, whereas the forward losses are defined by the forward instruction. Samples whose
reverse instruction was dropped are left out of ``L_attn``.

Times: ip2p models draw a DDPM timestep uniformly, as they were trained; toy models draw
``t = sigmoid(n)``, the base's own logit-normal. Trainable: the whole denoiser (the toy
family's small text encoder too), as InstructPix2Pix fine-tunes it.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...core.conventions import add_noise, x0_from_velocity
from ...core.models import EditModel
from ..config import ConfigError
from ..data import Needs
from ..image_text import ImageTextEncoder
from .base import per_sample
from .editor import EditorMethod, EditorOptions
from .supervised import dropout_masks

READINGS = ("reconstruction", "edited_caption")


@dataclass
class Uip2pOptions(EditorOptions):
    clip: str = "runs/toy-clip-16/clip"  # a CLIPModel folder (the clip trainer writes one for the toy world)
    lambda_clip: float = 1.0
    lambda_recon: float = 1.0
    lambda_sim: float = 1.0
    lambda_attn: float = 0.1
    similarity: str = "reconstruction"  # the L_sim reading: reconstruction | edited_caption
    conditioning_dropout: float = 0.05  # on the reverse pass, as InstructPix2Pix

    def __post_init__(self) -> None:
        if self.similarity not in READINGS:
            raise ConfigError(f"'uip2p.similarity' must be {' or '.join(READINGS)}, not {self.similarity!r}.")


def clip_direction_loss(edited: torch.Tensor, source: torch.Tensor, target_text: torch.Tensor,
                        source_text: torch.Tensor) -> torch.Tensor:
    """Per sample, 1 - cos between the change in image embedding and the change in caption embedding."""
    return similarity_loss(edited - source, target_text - source_text)


def similarity_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per sample, 1 - cos between two embeddings."""
    return 1 - F.cosine_similarity(a, b, dim=-1)


def reconstruction_loss(reconstructed: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Per sample mean absolute error."""
    return (reconstructed.float() - source.float()).abs().flatten(1).mean(1)


def attention_loss(forward: list[torch.Tensor], reverse: list[torch.Tensor]) -> torch.Tensor:
    """Per sample MSE between two passes' spatial attention maps, averaged over layers."""
    return torch.stack([((f - r) ** 2).mean(1) for f, r in zip(forward, reverse)]).mean(0)


class AttentionProbe:
    """A cross-attention processor that computes the attention explicitly and keeps, per call,
    the map of attention paid to the content tokens ``words`` ([B, K] bool): [B, positions],
    mean 1 over positions."""

    def __init__(self, words: torch.Tensor) -> None:
        self.words, self.maps = words, []

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **_):
        if hidden_states.ndim != 3 or encoder_hidden_states is None or attention_mask is not None or attn.norm_cross:
            raise ValueError("The attention probe handles unmasked cross-attention on token sequences only.")
        residual = hidden_states
        b = hidden_states.shape[0]
        q = attn.head_to_batch_dim(attn.to_q(hidden_states))
        k = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
        v = attn.head_to_batch_dim(attn.to_v(encoder_hidden_states))
        probs = (q @ k.transpose(1, 2) * attn.scale).softmax(-1)  # [B*heads, Q, K]
        out = attn.batch_to_head_dim(probs @ v)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + residual
        words = self.words.to(probs).reshape(b, 1, 1, -1)
        mass = (probs.reshape(b, attn.heads, *probs.shape[1:]) * words).sum(-1).mean(1)  # [B, Q]
        self.maps.append(mass / mass.mean(1, keepdim=True).clamp_min(1e-8))
        return out / attn.rescale_output_factor


def cross_attention(denoiser: nn.Module) -> dict[str, nn.Module]:
    """The denoiser's cross-attention layers (diffusers' ``attn2``), whose maps L_attn compares."""
    return {name: m for name, m in denoiser.named_modules() if name.endswith("attn2") and hasattr(m, "processor")}


@contextmanager
def probed(denoiser: nn.Module, words: torch.Tensor):
    """Record the cross-attention (``attn2``) maps of every pass inside the block."""
    layers = cross_attention(denoiser)
    if not layers:
        raise ValueError("The denoiser has no cross-attention layers (attn2) to compare.")
    probe, saved = AttentionProbe(words), {name: m.processor for name, m in layers.items()}
    for m in layers.values():
        m.set_processor(probe)
    try:
        yield probe.maps
    finally:
        for name, m in layers.items():
            m.set_processor(saved[name])


def content_tokens(model: EditModel, prompts: list[str]) -> torch.Tensor:
    """[B, K] True where a prompt's token is a word (not a special or padding token)."""
    tok = model.tokenizer
    ids = tok(prompts, padding="max_length", max_length=tok.model_max_length, truncation=True,
              return_tensors="pt").input_ids
    return ~torch.isin(ids, torch.tensor(tok.all_special_ids))


class Uip2p(EditorMethod):
    name = "uip2p"
    Options = Uip2pOptions
    needs = Needs("instructions", ("reverse", "source_caption", "target_caption"))  # captions: the CLIP direction

    def build_model(self) -> EditModel:
        model = super().build_model()
        if not cross_attention(model.denoiser):
            raise ConfigError(f"uip2p compares cross-attention maps (attn2 layers), which this {model.family} "
                              "model's denoiser lacks; ip2p and toy models have them.")
        self.clip = ImageTextEncoder.load(self.options.clip, where="training config › uip2p.clip")
        self.clip.model.to(model.device)
        return model

    def edit(self, model, clean, t, eps, text, source, words):
        """One pass: the one-step clean estimate from ``clean`` noised to ``t``, with its attention maps."""
        x_t = add_noise(clean, t, eps)
        with probed(model.denoiser, words) as maps:
            v = model.predict(x_t, t, text, source)
        return x0_from_velocity(x_t, t, v), maps

    def loss(self, model, batch, rngs, state):
        o = self.options
        x = batch["source"].to(model.device, model.dtype)
        z = model.encode_image(x, rngs)
        t_f, t_r = model.training_times(rngs).to(z), model.training_times(rngs).to(z)
        eps_f, eps_r = per_sample(rngs, z.shape[1:]).to(z), per_sample(rngs, z.shape[1:]).to(z)
        drop_text, drop_image = dropout_masks(per_sample(rngs, (), torch.rand), o.conditioning_dropout)
        forward, reverse = list(batch["instruction"]), list(batch["reverse"])
        reverse_kept = ["" if d else c for c, d in zip(reverse, drop_text.tolist())]

        z_edit, maps_f = self.edit(model, z, t_f, eps_f, self.instructions(model, forward), model.encode_source(x),
                                   content_tokens(model, forward))
        x_edit = model.decode(z_edit)
        source = model.encode_source(x_edit).kept(~drop_image)
        z_rec, maps_r = self.edit(model, z, t_r, eps_r, self.instructions(model, reverse_kept), source,
                                  content_tokens(model, reverse))
        x_rec = model.decode(z_rec)

        image = self.clip.images(torch.cat([x, x_edit, x_rec]))
        e_x, e_edit, e_rec = image.chunk(3)
        with torch.no_grad():
            e_in, e_out = self.clip.texts(list(batch["source_caption"]) + list(batch["target_caption"])).chunk(2)
        parts = {
            "clip": clip_direction_loss(e_edit, e_x, e_out, e_in),
            "recon": reconstruction_loss(x_rec, x),
            "sim": similarity_loss(e_rec, e_x) if o.similarity == "reconstruction" else similarity_loss(e_edit, e_out),
            "attn": attention_loss(maps_f, maps_r) * (~drop_text).to(z),
        }
        weights = {"clip": o.lambda_clip, "recon": o.lambda_recon, "sim": o.lambda_sim, "attn": o.lambda_attn}
        loss = sum(weights[k] * v.mean() for k, v in parts.items())
        return loss, {"loss": loss.item(), **{k: v.mean().item() for k, v in parts.items()}}
