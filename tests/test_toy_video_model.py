"""The toy video family: the toy UNet inflated with temporal layers that start silent, its exact
text-to-video mode, the LoRA layers ByG trains on it, and its files."""

import pytest
import torch
from peft.tuners.lora import LoraLayer

from unpaired_edit.core.adapters import add_lora
from unpaired_edit.core.model_files import load_model, save_model
from unpaired_edit.core.models import SourceCond
from unpaired_edit.core.models.toy import build_toy
from unpaired_edit.core.models.toy_video import ToyVideoModel


@pytest.fixture(scope="module")
def models():
    image = build_toy(seed=4)
    with torch.no_grad():
        image.unet.conv_in.weight[:, 3:].normal_(std=0.1)  # an editor: its source channels read the source
    return image, ToyVideoModel.from_toy(image)


def _per_frame(image, x, t, text, source):
    b, _, f = x.shape[:3]
    flat = lambda v: v.transpose(1, 2).reshape(b * f, *v.shape[1:2], *v.shape[3:])
    out = image.predict(flat(x), t.repeat_interleave(f), text, None if source is None else SourceCond(flat(source)))
    return out.reshape(b, f, *out.shape[1:]).transpose(1, 2)


def test_a_new_video_model_draws_every_frame_as_the_image_model(models):
    image, video = models
    x, source = torch.randn(2, 3, 6, 16, 16), torch.randn(2, 3, 6, 16, 16)
    t, text = torch.tensor([0.2, 0.7]), image.encode_text(["a small red circle at the left on a sky background"])
    with torch.no_grad():
        assert torch.allclose(video.predict(x, t, text, SourceCond(source)), _per_frame(image, x, t, text, source),
                              atol=1e-5)
        assert torch.allclose(video.predict(x, t, text), _per_frame(image, x, t, text, None), atol=1e-5)


def test_the_text_to_video_mode_is_exact_once_the_temporal_layers_learn():
    video = ToyVideoModel.from_toy(build_toy(seed=5))  # a base: source channels at zero
    with torch.no_grad():
        for name, p in video.unet.named_parameters():
            if "temp_" in name or name.startswith("transformer_in"):
                p.normal_(std=0.05)
    x, t = torch.randn(1, 3, 4, 16, 16), torch.tensor([0.5])
    text = video.encode_text(["a large blue square at the center on a grass background"])
    with torch.no_grad():
        plain = video.predict(x, t, text)
        assert torch.equal(plain, video.predict(x, t, text, SourceCond(torch.randn_like(x))))
        nudged = x.clone()
        nudged[:, :, 0] += 1.0  # change the first frame only
        later = video.predict(nudged, t, text)[:, :, 1:] - plain[:, :, 1:]
    assert later.abs().max() > 1e-4  # the frames now see each other


def test_byg_s_lora_reaches_the_temporal_layers(models):
    _, video = models
    video = ToyVideoModel.from_toy(build_toy(seed=6))
    add_lora(video, "byg", 4, list(video.lora_targets))
    adapted = [n for n, m in video.unet.named_modules() if isinstance(m, LoraLayer)]
    assert any(".temp_convs." in n for n in adapted) and any(".temp_attentions." in n for n in adapted)
    assert any(n.endswith("conv_in") for n in adapted) and any(".resnets.0.conv1" in n for n in adapted)


def test_a_toy_video_file_round_trips_and_refuses_a_still_picture(tmp_path, models):
    _, video = models
    loaded = load_model(save_model(video, tmp_path / "video.safetensors"))
    assert isinstance(loaded, ToyVideoModel) and loaded.frames
    x, t = torch.randn(1, 3, 3, 16, 16), torch.tensor([0.4])
    with torch.no_grad():
        text = video.encode_text(["make the circle blue"])
        assert torch.allclose(video.predict(x, t, text), loaded.predict(x, t, loaded.encode_text(["make the circle blue"])),
                              atol=1e-6)
    with pytest.raises(ValueError, match=r"clips \[B, 3, F, H, W\]"):
        loaded.encode_source(torch.zeros(1, 3, 16, 16))
