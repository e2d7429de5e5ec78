"""Original-layout (CompVis) InstructPix2Pix checkpoints load into the same model.

The test writes a tiny diffusers model out in the original layout with its own inverse key
mapping, loads it back through diffusers' converters, and checks the predictions agree.
"""

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import load_file, save_file
from transformers import CLIPTextConfig, CLIPTextModel

from unpaired_edit.core.errors import EditError
from unpaired_edit.core.ldm_checkpoints import CLIP, UNET, VAE
from unpaired_edit.core.model_files import load_model
from unpaired_edit.core.models import FAMILIES
from unpaired_edit.core.tokenizers import word_tokenizer

LAYERS = 2  # resnets per UNet level, as in SD 1.x
RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
          "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out": "proj_out"}


class Mapper:
    """Moves tensors from diffusers names to original names, and checks none is left over."""

    def __init__(self, state):
        self.state, self.out = dict(state), {}

    def put(self, new, old, rename=None, reshape=False):
        for key in [k for k in self.state if k.startswith(old + ".")]:
            rest = key[len(old) + 1:]
            if rename:
                head, _, tail = rest.partition(".")
                rest = f"{rename[head]}.{tail}"
                rest = rest.replace("proj_out.0.", "proj_out.")  # attention's to_out.0 -> proj_out
            value = self.state.pop(key)
            self.out[f"{new}.{rest}"] = value[..., None, None] if reshape and value.ndim == 2 else value

    def done(self):
        assert not self.state, f"unmapped: {sorted(self.state)[:5]}"
        return self.out


def unet_to_original(unet):
    m, n = Mapper(unet.state_dict()), len(unet.config.block_out_channels)
    m.put("input_blocks.0.0", "conv_in")
    m.put("time_embed.0", "time_embedding.linear_1")
    m.put("time_embed.2", "time_embedding.linear_2")
    m.put("out.0", "conv_norm_out")
    m.put("out.2", "conv_out")
    for d in range(n):
        for i in range(LAYERS):
            m.put(f"input_blocks.{1 + d * (LAYERS + 1) + i}.0", f"down_blocks.{d}.resnets.{i}", RESNET)
            m.put(f"input_blocks.{1 + d * (LAYERS + 1) + i}.1", f"down_blocks.{d}.attentions.{i}")
        if d < n - 1:
            m.put(f"input_blocks.{(d + 1) * (LAYERS + 1)}.0.op", f"down_blocks.{d}.downsamplers.0.conv")
    m.put("middle_block.0", "mid_block.resnets.0", RESNET)
    m.put("middle_block.1", "mid_block.attentions.0")
    m.put("middle_block.2", "mid_block.resnets.1", RESNET)
    for u in range(n):
        attention = any(k.startswith(f"up_blocks.{u}.attentions.") for k in m.state)
        for i in range(LAYERS + 1):
            m.put(f"output_blocks.{u * (LAYERS + 1) + i}.0", f"up_blocks.{u}.resnets.{i}", RESNET)
            m.put(f"output_blocks.{u * (LAYERS + 1) + i}.1", f"up_blocks.{u}.attentions.{i}")
        if u < n - 1:
            m.put(f"output_blocks.{u * (LAYERS + 1) + LAYERS}.{2 if attention else 1}.conv",
                  f"up_blocks.{u}.upsamplers.0.conv")
    return {UNET + k: v for k, v in m.done().items()}


def vae_to_original(vae):
    m, n = Mapper(vae.state_dict()), len(vae.config.block_out_channels)
    same = {"norm1": "norm1", "conv1": "conv1", "norm2": "norm2", "conv2": "conv2", "conv_shortcut": "nin_shortcut"}
    for part in ("encoder", "decoder"):
        for name in ("conv_in", "conv_out"):
            m.put(f"{part}.{name}", f"{part}.{name}")
        m.put(f"{part}.norm_out", f"{part}.conv_norm_out")
        m.put(f"{part}.mid.block_1", f"{part}.mid_block.resnets.0", same)
        m.put(f"{part}.mid.block_2", f"{part}.mid_block.resnets.1", same)
        m.put(f"{part}.mid.attn_1", f"{part}.mid_block.attentions.0", VAE_ATTN, reshape=True)
    for d in range(n):
        for i in range(vae.config.layers_per_block):
            m.put(f"encoder.down.{d}.block.{i}", f"encoder.down_blocks.{d}.resnets.{i}", same)
        m.put(f"encoder.down.{d}.downsample.conv", f"encoder.down_blocks.{d}.downsamplers.0.conv")
        for i in range(vae.config.layers_per_block + 1):
            m.put(f"decoder.up.{n - 1 - d}.block.{i}", f"decoder.up_blocks.{d}.resnets.{i}", same)
        m.put(f"decoder.up.{n - 1 - d}.upsample.conv", f"decoder.up_blocks.{d}.upsamplers.0.conv")
    for name in ("quant_conv", "post_quant_conv"):
        m.put(name, name)
    return {VAE + k: v for k, v in m.done().items()}


FAMILY_CHANNELS = {"ip2p": 8, "inpaint": 9}


@pytest.fixture(scope="module", params=["ip2p", "inpaint"])
def original(tmp_path_factory, request):
    """A tiny diffusers model of a family, and the same weights as an original-layout file."""
    family = FAMILIES[request.param]
    tok = word_tokenizer(max_length=16)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(in_channels=FAMILY_CHANNELS[request.param], out_channels=4, layers_per_block=LAYERS, block_out_channels=(32, 64),
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=64,
                                attention_head_dim=8, norm_num_groups=32).eval()
    vae = AutoencoderKL(block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=32).eval()
    clip = CLIPTextModel(CLIPTextConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                                        num_hidden_layers=2, num_attention_heads=1, max_position_embeddings=16,
                                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                        pad_token_id=tok.pad_token_id)).eval()
    folder = tmp_path_factory.mktemp("ldm")
    state = {**unet_to_original(unet), **vae_to_original(vae),
             **{CLIP + "text_model." + k.removeprefix("text_model."): v for k, v in clip.state_dict().items()}}
    save_file({k: v.contiguous() for k, v in state.items()}, folder / "ip2p.safetensors")
    tok.model_max_length = 8192  # as ComfyUI's CLIP tokenizer declares; the loader must fix it
    tok.save_pretrained(folder / "clip_tokenizer")
    tok.model_max_length = 16
    return family(unet, vae, clip, tok, family._original_scheduler()), folder


def test_original_layout_loads_to_the_same_model(original):
    reference, folder = original
    model = load_model(folder / "ip2p.safetensors", clip_tokenizer=folder / "clip_tokenizer")
    assert model.family == reference.family and model.info.name == "ip2p" and model.info.steps == 20
    assert model.scheduler.config == reference.scheduler.config
    assert model.tokenizer.model_max_length == 16  # the text encoder's positions, not the file's 8192
    assert model.unet.config.layers_per_block == LAYERS and list(model.unet.config.block_out_channels) == [32, 64]
    pixels = torch.rand(1, 3, 32, 32) * 2 - 1
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:20, 4:30] = 1
    x, t = torch.randn(1, 4, 16, 16), torch.tensor([0.6])
    with torch.no_grad():
        for m in (model, reference):
            m.text_cache.clear()
        outs = [m.predict(x, t, m.encode_text(["make it red"]), m.encode_source(pixels, mask if m.inpaints else None))
                for m in (model, reference)]
        assert torch.equal(model.decode(x), reference.decode(x))
    assert torch.equal(outs[0], outs[1])


def test_original_layout_without_a_tokenizer_says_where_to_get_one(original):
    _, folder = original
    with pytest.raises(EditError, match="no tokenizer.*Fix: Load it inside ComfyUI"):
        load_model(folder / "ip2p.safetensors")


def test_a_plain_sd_checkpoint_is_told_apart_from_the_families_it_is_not(original, tmp_path):
    """The same file with a 4-channel UNet (a text-to-image SD 1.x checkpoint) is no family's original
    layout: the message says which ones the pack reads, before anything is converted."""
    _, folder = original
    state = load_file(folder / "ip2p.safetensors")
    state[UNET + "input_blocks.0.0.weight"] = state[UNET + "input_blocks.0.0.weight"][:, :4].contiguous()
    save_file(state, tmp_path / "sd15.safetensors")
    with pytest.raises(EditError, match=r"neither an Unpaired Edit model nor an original-layout checkpoint the pack "
                                        r"reads \(InstructPix2Pix \(SD 1.x, 8 UNet input channels\); SD 1.x "
                                        r"inpainting \(9 UNet input channels\)\)"):
        load_model(tmp_path / "sd15.safetensors", clip_tokenizer=folder / "clip_tokenizer")
