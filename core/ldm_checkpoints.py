"""The parts of an original-layout (CompVis / LDM) Stable Diffusion 1.x single file, as ComfyUI
users keep them in models/checkpoints (e.g. ``instruct-pix2pix-00-22000.safetensors``).

Such a file holds the UNet (``model.diffusion_model.*``), the VAE (``first_stage_model.*``) and
the CLIP text encoder (``cond_stage_model.transformer.*``), but no configs and no tokenizer. The
configs are read off the tensor shapes, the key names are converted with diffusers' own
converters, and the tokenizer comes from the caller (ComfyUI ships CLIP's). Which family a file
is (InstructPix2Pix: 8 UNet input channels) is the family's to say (``EditModel.reads_original_layout``).
"""

from __future__ import annotations

import re

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint
from transformers import CLIPTextConfig, CLIPTextModel

UNET, VAE, CLIP = "model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer."
SD_SCALING_FACTOR = 0.18215


def unet_input_channels(shapes: dict[str, tuple[int, ...]]) -> int | None:
    """The UNet's input channels when ``shapes`` (key -> shape) are an SD 1.x original-layout file's,
    else None."""
    conv_in = shapes.get(f"{UNET}input_blocks.0.0.weight")
    if conv_in is None or len(conv_in) != 4 or not any(k.startswith(VAE) for k in shapes):
        return None
    return conv_in[1]


def sd_parts(state: dict[str, torch.Tensor], tokenizer) -> dict[str, object]:
    """The UNet, VAE, text encoder and (resized) tokenizer of an original-layout state dict."""
    unet_config = unet_config_from(state)
    unet = UNet2DConditionModel.from_config(unet_config)
    unet.load_state_dict(convert_ldm_unet_checkpoint(state, unet_config), strict=True)
    vae_config = vae_config_from(state)
    vae = AutoencoderKL.from_config(vae_config)
    vae.load_state_dict(convert_ldm_vae_checkpoint(state, vae_config), strict=True)
    text_encoder = CLIPTextModel(clip_config_from(state, tokenizer))
    # Prompts are padded to the tokenizer's length; ComfyUI's CLIP tokenizer says 8192.
    tokenizer.model_max_length = text_encoder.config.max_position_embeddings
    text_encoder.load_state_dict(_clip_state(state, text_encoder), strict=True)
    return {"unet": unet.eval(), "vae": vae.eval(), "text_encoder": text_encoder.eval(), "tokenizer": tokenizer}


def _clip_state(state: dict[str, torch.Tensor], text_encoder: CLIPTextModel) -> dict[str, torch.Tensor]:
    """The text tower's weights under the names this transformers version uses (files say
    ``text_model.…``; transformers 5 dropped that level)."""
    nested = any(k.startswith("text_model.") for k in text_encoder.state_dict())
    clip = {}
    for key, value in state.items():
        if key.startswith(CLIP) and not key.endswith("position_ids"):  # an old buffer, not a weight
            name = key[len(CLIP):]
            clip[name if nested else name.removeprefix("text_model.")] = value
    return clip


def _count(state: dict, pattern: str) -> int:
    """How many distinct integers fill the ``(\\d+)`` in ``pattern`` across the keys."""
    regex = re.compile(pattern)
    return len({m.group(1) for k in state if (m := regex.match(k))})


def unet_config_from(state: dict[str, torch.Tensor]) -> dict:
    conv_in = state[f"{UNET}input_blocks.0.0.weight"]
    n_input = _count(state, rf"{re.escape(UNET)}input_blocks\.(\d+)\.")
    downsamples = sorted(int(m.group(1)) for k in state
                         if (m := re.match(rf"{re.escape(UNET)}input_blocks\.(\d+)\.0\.op\.weight", k)))
    layers = downsamples[0] - 1 if downsamples else n_input - 1
    levels = len(downsamples) + 1
    channels, attention = [], []
    for level in range(levels):
        first = 1 + level * (layers + 1)
        channels.append(state[f"{UNET}input_blocks.{first}.0.out_layers.3.weight"].shape[0])
        attention.append(f"{UNET}input_blocks.{first}.1.proj_in.weight" in state)
    to_k = next(v for k, v in state.items() if k.startswith(UNET) and k.endswith("attn2.to_k.weight"))
    context = to_k.shape[1]
    proj_in = next(v for k, v in state.items() if k.startswith(UNET) and k.endswith("proj_in.weight"))
    heads = 8 if context != 1024 else [c // 64 for c in channels]  # SD 1.x: 8 heads; SD 2.x: 64-wide heads
    return {
        "sample_size": 64, "in_channels": conv_in.shape[1], "out_channels": state[f"{UNET}out.2.weight"].shape[0],
        "block_out_channels": channels, "layers_per_block": layers, "cross_attention_dim": context,
        "attention_head_dim": heads, "use_linear_projection": proj_in.ndim == 2,
        "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attention],
        "up_block_types": ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)],
        "transformer_layers_per_block": _count(state, rf"{re.escape(UNET)}input_blocks\.1\.1\.transformer_blocks\.(\d+)\.") or 1,
        "norm_num_groups": 32,  # not stored in the weights; every SD-family UNet uses 32
    }


def vae_config_from(state: dict[str, torch.Tensor]) -> dict:
    levels = _count(state, rf"{re.escape(VAE)}encoder\.down\.(\d+)\.")
    channels = [state[f"{VAE}encoder.down.{i}.block.0.conv1.weight"].shape[0] for i in range(levels)]
    return {
        "in_channels": state[f"{VAE}encoder.conv_in.weight"].shape[1],
        "out_channels": state[f"{VAE}decoder.conv_out.weight"].shape[0],
        "latent_channels": state[f"{VAE}post_quant_conv.weight"].shape[0],
        "block_out_channels": channels,
        "layers_per_block": _count(state, rf"{re.escape(VAE)}encoder\.down\.0\.block\.(\d+)\."),
        "down_block_types": ["DownEncoderBlock2D"] * levels, "up_block_types": ["UpDecoderBlock2D"] * levels,
        "norm_num_groups": 32,
        "scaling_factor": SD_SCALING_FACTOR, "sample_size": 256,
    }


def clip_config_from(state: dict[str, torch.Tensor], tokenizer) -> CLIPTextConfig:
    prefix = f"{CLIP}text_model."  # the layout of SD 1.x files
    tokens = state[f"{prefix}embeddings.token_embedding.weight"]
    hidden = tokens.shape[1]
    return CLIPTextConfig(
        vocab_size=tokens.shape[0], hidden_size=hidden,
        intermediate_size=state[f"{prefix}encoder.layers.0.mlp.fc1.weight"].shape[0],
        num_hidden_layers=_count(state, rf"{re.escape(prefix)}encoder\.layers\.(\d+)\."),
        num_attention_heads=max(1, hidden // 64),  # OpenAI CLIP text towers use 64-wide heads
        max_position_embeddings=state[f"{prefix}embeddings.position_embedding.weight"].shape[0],
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)
