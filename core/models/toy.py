"""The ``toy`` family: a small pixel-space flow-matching UNet for the synthetic toy world.

Pixels are the latents (``encode_image`` and ``decode`` are the identity on -1..1), the
source image is concatenated on channels, and the word-level text encoder is small enough
to train jointly with the UNet on a CPU. The source channels of ``conv_in`` start at zero,
so with ``source=None`` (zeros there) the model is exactly its text-to-image self.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ..prompt_length import token_ids
from ..samplers import EditSettings, Hooks, initial_noise
from ..toy.world import vocabulary
from .base import EditModel, ModelInfo
from .conditioning import SourceCond, TextCond

TEXT_LENGTH = 24  # the longest toy caption is 21 tokens with <bos> and <eos>
TIME_SCALE = 1000.0  # the UNet's sinusoidal time embedding expects timesteps in 0..1000


class ToyModel(EditModel):
    family = "toy"
    default_size = 16
    # every layer that carries the edit; conv_in reads the source
    lora_targets = ("conv_in", "conv1", "conv2", "time_emb_proj", "proj_in", "proj_out", "to_q", "to_k", "to_v",
                    "to_out.0", "ff.net.0.proj", "ff.net.2")
    text_encoder_trains = True
    COMPONENTS = ("unet", "text_encoder", "tokenizer")
    reads = "the noisy image and the source"  # what its UNet takes, for the message that refuses another

    def __init__(self, unet, text_encoder, tokenizer, info: ModelInfo | None = None) -> None:
        super().__init__(info or self.default_info())
        self.unet, self.text_encoder, self.tokenizer = unet, text_encoder, tokenizer
        self.denoiser = unet
        expected = unet.config.out_channels + self.source_channels(unet.config.out_channels)
        if unet.config.in_channels != expected:
            raise ValueError(f"A {self.family} UNet takes {self.reads} on channels ({expected}); this one takes "
                             f"{unet.config.in_channels}.")

    @staticmethod
    def source_channels(image_channels: int) -> int:
        """The UNet's input channels after the noisy image."""
        return image_channels

    @classmethod
    def default_info(cls) -> ModelInfo:
        # Measured on the prototype: text guidance hurts editing; 20 Euler steps suffice.
        return ModelInfo(family=cls.family, steps=20, guidance=1.0, image_guidance=1.0)

    @property
    def factor(self) -> int:
        return 2 ** (len(self.unet.config.block_out_channels) - 1)

    def token_ids(self, prompts: list[str]) -> torch.Tensor:
        """Padded token ids on the model's device."""
        return token_ids(self.tokenizer, prompts).to(self.text_encoder.device)

    def text_embeddings(self, prompts: list[str]) -> TextCond:
        """Encode with gradients (the text encoder trains with the UNet); no cache."""
        return TextCond(self.text_encoder(self.token_ids(prompts))[0])

    @torch.no_grad()
    def _encode_text(self, prompts: list[str]) -> TextCond:
        return self.text_embeddings(prompts)

    def encode_image(self, pixels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return pixels.to(self.device, self.dtype)

    def source_latents(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels.to(self.device, self.dtype)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return latents

    def sample(self, source: SourceCond | None, text: TextCond, negative: TextCond, settings: EditSettings,
               hooks: Hooks, shape: tuple[int, ...] | None = None) -> torch.Tensor:
        return sample_toy(self, source, text, negative, settings, hooks, shape)

    def as_inpainter(self) -> EditModel:
        if self.inpaints:
            return self
        from .toy_inpaint import ToyInpaintModel  # which imports this module

        return ToyInpaintModel.from_toy(self)

    def as_video(self) -> EditModel:
        if self.frames or self.inpaints:
            return super().as_video()
        from .toy_video import ToyVideoModel  # which imports this module

        return ToyVideoModel.from_toy(self)

    def unet_input(self, x_t: torch.Tensor, source: SourceCond) -> torch.Tensor:
        return torch.cat([x_t, source.latents], dim=1)

    def no_source(self, like: torch.Tensor) -> SourceCond:
        """The text-to-image condition for latents shaped like ``like``: a zero source."""
        return SourceCond(torch.zeros_like(like))

    def predict(self, x_t: torch.Tensor, t: torch.Tensor, text: TextCond,
                source: SourceCond | None = None) -> torch.Tensor:
        b = x_t.shape[0]
        source = self.no_source(x_t) if source is None else source
        timestep = torch.as_tensor(t, device=x_t.device, dtype=x_t.dtype).reshape(-1).expand(b) * TIME_SCALE
        return self.unet(self.unet_input(x_t, source), timestep, encoder_hidden_states=text.repeat_to(b).embeds).sample


def build_toy(seed: int = 0, channels: tuple[int, ...] = (16, 32, 64), text_width: int = 64) -> ToyModel:
    """An untrained toy model (~1 M parameters, cross-attention only at the
    lowest resolution and in the middle block, where it is cheap)."""
    from diffusers import UNet2DConditionModel  # building needs the stack; running a built model does not
    from transformers import CLIPTextConfig, CLIPTextModel

    from ..tokenizers import word_tokenizer

    tokenizer = word_tokenizer(vocabulary(), max_length=TEXT_LENGTH)
    torch.manual_seed(seed)
    n = len(channels)
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=6, out_channels=3, layers_per_block=1, block_out_channels=channels,
        down_block_types=("DownBlock2D",) * (n - 1) + ("CrossAttnDownBlock2D",),
        up_block_types=("CrossAttnUpBlock2D",) + ("UpBlock2D",) * (n - 1),
        cross_attention_dim=text_width, attention_head_dim=8, norm_num_groups=8)
    with torch.no_grad():
        unet.conv_in.weight[:, 3:] = 0  # the source has no effect until editing is trained
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=text_width, intermediate_size=2 * text_width, num_hidden_layers=1,
        num_attention_heads=4, max_position_embeddings=TEXT_LENGTH, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    info = replace(ToyModel.default_info(), name="toy-untrained")
    return ToyModel(unet.eval(), text_encoder.eval(), tokenizer, info)


@torch.no_grad()
def sample_toy(model: "ToyModel", source: SourceCond | None, text: TextCond, negative: TextCond,
               settings: EditSettings, hooks: Hooks, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """Euler on uniform times with up to three guidance branches, each only when its scale
    asks for it: (text, source), (empty, source) and (empty, no source). ``source=None`` is
    text-to-image sampling of ``shape``."""
    like = source.latents if source is not None else torch.zeros(shape, device=model.device, dtype=model.dtype)
    b = like.shape[0]
    image_guidance = settings.image_guidance if source is not None else 1.0
    text_only = settings.guidance != 1.0 or image_guidance != 1.0
    no_source = image_guidance != 1.0
    src = model.no_source(like) if source is None else source
    conds, sources = [text.repeat_to(b)], [src]
    if text_only:
        conds, sources = conds + [negative.repeat_to(b)], sources + [src]
    if no_source:
        conds, sources = conds + [negative.repeat_to(b)], sources + [src.zeros()]
    cond, sources = TextCond.cat(conds), SourceCond.cat(sources)
    generator = torch.Generator("cpu").manual_seed(settings.seed)
    x = initial_noise(like.shape, generator, like, settings.shared_noise)
    times = torch.linspace(1.0, 0.0, settings.steps + 1)
    for i in range(settings.steps):
        hooks.check()
        t, t_next = times[i].item(), times[i + 1].item()
        v = model.predict(torch.cat([x] * len(conds)), torch.tensor(t), cond, sources).chunk(len(conds))
        if no_source:
            v = v[2] + settings.guidance * (v[0] - v[1]) + image_guidance * (v[1] - v[2])
        elif text_only:
            v = v[1] + settings.guidance * (v[0] - v[1])
        else:
            v = v[0]
        preview = x - t * v
        x = x + (t_next - t) * v
        hooks.step(i, settings.steps, preview)
    return x
