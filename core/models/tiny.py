"""Tiny, randomly initialised models of each family, built from configs in code.

They exist for tests, examples and benchmarks: nothing is downloaded, and every build with
the same seed gives the same weights.
"""

from __future__ import annotations

import torch
from diffusers import (AutoencoderKL, AutoencoderKLWan, DDIMScheduler, EulerAncestralDiscreteScheduler,
                       FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel, UNet2DConditionModel,
                       UniPCMultistepScheduler, WanTransformer3DModel)
from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

from ..tokenizers import word_tokenizer
from .base import ModelInfo
from .flow import FlowModel
from .inpaint import InpaintModel
from .ip2p import Ip2pModel
from .video import VideoModel, add_source_channels

TEXT_LENGTH = 16


def _clip_text(seed: int, width: int = 32) -> CLIPTextModel:
    tok = word_tokenizer(max_length=TEXT_LENGTH)
    torch.manual_seed(seed)
    cfg = CLIPTextConfig(vocab_size=len(tok), hidden_size=width, intermediate_size=2 * width,
                         num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=TEXT_LENGTH,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, projection_dim=width)
    return CLIPTextModel(cfg).eval()


def _vae(seed: int, channels: tuple[int, ...], latent: int, **kw) -> AutoencoderKL:
    torch.manual_seed(seed)
    n = len(channels)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=latent, block_out_channels=channels,
                         down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
                         layers_per_block=1, norm_num_groups=min(8, channels[0]), sample_size=32, **kw).eval()


def _unet(seed: int, in_channels: int, width: int) -> UNet2DConditionModel:
    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=16, in_channels=in_channels, out_channels=4, layers_per_block=1,
        block_out_channels=(width, 2 * width), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
        attention_head_dim=8, norm_num_groups=8).eval()


def tiny_ip2p(seed: int = 0, prediction_type: str = "epsilon", width: int = 32,
              vae_channels: tuple[int, ...] = (16, 32)) -> Ip2pModel:
    """An ip2p model of ~0.5 M parameters (``width`` scales the UNet for benchmarks)."""
    unet = _unet(seed, 8, width)
    scheduler = EulerAncestralDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                                prediction_type=prediction_type, steps_offset=1)
    info = ModelInfo(family="ip2p", name="tiny-ip2p", steps=8, guidance=7.5, image_guidance=1.5)
    return Ip2pModel(unet, _vae(seed + 1, vae_channels, 4), _clip_text(seed + 2),
                     word_tokenizer(max_length=TEXT_LENGTH), scheduler, info)


def tiny_inpaint(seed: int = 0, width: int = 32, vae_channels: tuple[int, ...] = (16, 32),
                 scheduler: str = "ddim") -> InpaintModel:
    """An SD-style inpainting model (9-channel UNet) of ~0.5 M parameters; ``scheduler`` "ddim" or
    "euler_a" (stochastic: its steps draw from the seed too)."""
    unet = _unet(seed, 9, width)
    betas = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1)
    sampler = DDIMScheduler(clip_sample=False, set_alpha_to_one=False, **betas) if scheduler == "ddim" \
        else EulerAncestralDiscreteScheduler(**betas)
    info = ModelInfo(family="inpaint", name="tiny-inpaint", steps=8, guidance=7.5, image_guidance=1.0)
    return InpaintModel(unet, _vae(seed + 1, vae_channels, 4), _clip_text(seed + 2),
                        word_tokenizer(max_length=TEXT_LENGTH), sampler, info)


def tiny_flow(seed: int = 0, source_mode: str = "offset", guidance_embeds: bool = True) -> FlowModel:
    """A flow model: two double and two single FLUX blocks of width 32."""
    latent = 4
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=4 * latent * (2 if source_mode == "channel" else 1), out_channels=4 * latent,
        num_layers=2, num_single_layers=2, attention_head_dim=8, num_attention_heads=4,
        joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=guidance_embeds,
        axes_dims_rope=(2, 2, 4)).eval()
    torch.manual_seed(seed + 3)
    t5 = T5EncoderModel(T5Config(vocab_size=len(word_tokenizer()), d_model=32, d_kv=8, d_ff=64, num_layers=2,
                                 num_heads=4, relative_attention_num_buckets=8, dropout_rate=0.0)).eval()
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                                base_image_seq_len=256, max_image_seq_len=4096)
    info = ModelInfo(family="flow", name="tiny-flow", steps=8, guidance=2.5, image_guidance=1.0,
                     extra={"source_mode": source_mode, "max_sequence_length": TEXT_LENGTH})
    vae = _vae(seed + 1, (16, 32), latent, scaling_factor=0.3611, shift_factor=0.1159)
    return FlowModel(transformer, vae, _clip_text(seed + 2), word_tokenizer(max_length=TEXT_LENGTH),
                     t5, word_tokenizer(max_length=TEXT_LENGTH), scheduler, info)


VIDEO_LATENT = 4


def tiny_wan(seed: int = 0) -> WanTransformer3DModel:
    """A text-to-video Wan transformer: two blocks of width 16 (two heads of 8)."""
    torch.manual_seed(seed)
    return WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8,
                                 in_channels=VIDEO_LATENT, out_channels=VIDEO_LATENT, text_dim=32, freq_dim=32,
                                 ffn_dim=32, num_layers=2, rope_max_seq_len=32).eval()


def tiny_video_parts(seed: int = 0) -> dict:
    """The Wan VAE (8x in space, 4x in time after the first frame), a UMT5 encoder, tokenizer and
    Wan 2.1's scheduler: the parts a video model shares with the text-to-video pipeline."""
    torch.manual_seed(seed + 1)
    vae = AutoencoderKLWan(base_dim=8, z_dim=VIDEO_LATENT, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True], latents_mean=[0.1, -0.2, 0.3, 0.0],
                           latents_std=[1.5, 0.8, 1.2, 1.0]).eval()
    torch.manual_seed(seed + 2)
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(word_tokenizer()), d_model=32, d_kv=8, d_ff=64,
                                               num_layers=2, num_heads=4, relative_attention_num_buckets=8,
                                               dropout_rate=0.0)).eval()
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0,
                                        num_train_timesteps=1000)
    return {"vae": vae, "text_encoder": text_encoder, "tokenizer": word_tokenizer(max_length=TEXT_LENGTH),
            "scheduler": scheduler}


def tiny_video(seed: int = 0) -> VideoModel:
    """A video editor made from ``tiny_wan`` (source channels added, reading nothing yet)."""
    info = ModelInfo(family="video", name="tiny-video", steps=8, guidance=5.0, image_guidance=1.0,
                     extra={"max_sequence_length": TEXT_LENGTH})
    return VideoModel(add_source_channels(tiny_wan(seed)), **tiny_video_parts(seed), info=info)
