"""The video family: a Wan-style editor whose text-to-video mode is diffusers' WanPipeline, its
source channels, its files and the clips it refuses."""

import pytest
import torch
from diffusers import WanPipeline

from unpaired_edit.core.model_files import load_model, save_model
from unpaired_edit.core.models.tiny import tiny_video, tiny_video_parts, tiny_wan
from unpaired_edit.core.models.video import VideoModel, add_source_channels
from unpaired_edit.core.samplers import EditSettings, Hooks


def _t2v(model: VideoModel, prompt: str, negative: str, settings: EditSettings, frames: int, size: int):
    text, uncond = model.encode_text([prompt, negative]).rows()
    shape = (1, 4, (frames - 1) // model.frame_stride + 1, size // 8, size // 8)
    with torch.no_grad():
        pixels = model.decode(model.sample(None, text, uncond, settings, Hooks(), shape=shape))
    return (pixels / 2 + 0.5).clamp(0, 1).permute(0, 2, 1, 3, 4)  # as WanPipeline's "pt" frames: [B, F, 3, H, W]


@pytest.mark.parametrize("guidance, frames, size", [(3.0, 5, 32), (1.0, 9, 16)])
def test_text_to_video_mode_is_wan_pipeline(guidance, frames, size):
    parts = tiny_video_parts(seed=0)
    pipe = WanPipeline(transformer=tiny_wan(seed=0), **parts)
    prompt, negative = "a red circle moving to the left", "a blue square"
    expected = pipe(prompt, negative_prompt=negative, height=size, width=size, num_frames=frames,
                    num_inference_steps=4, guidance_scale=guidance, generator=torch.Generator().manual_seed(7),
                    output_type="pt", max_sequence_length=16).frames
    model = tiny_video(seed=0)
    ours = _t2v(model, prompt, negative, EditSettings(4, guidance, seed=7), frames, size)
    assert ours.shape == expected.shape == (1, frames, 3, size, size)
    assert torch.allclose(ours, expected, atol=1e-4)
    assert expected.std() > 1e-3  # a picture, not a constant that any sampler would match
    other = _t2v(model, prompt, negative, EditSettings(4, guidance, seed=8), frames, size)
    assert (other - expected).abs().max() > 1e-3


def test_the_source_channels_start_silent_and_then_carry_the_source():
    t2v = tiny_wan(seed=1)
    editor = add_source_channels(t2v)
    assert editor.config.in_channels == 2 * t2v.config.in_channels
    x, t = torch.randn(2, 4, 2, 4, 4), torch.tensor([0.3, 0.9])
    text = torch.randn(2, 16, 32)
    source = torch.randn(2, 4, 2, 4, 4)
    with torch.no_grad():
        alone = t2v(hidden_states=x, timestep=t * 1000, encoder_hidden_states=text).sample
        with_source = editor(hidden_states=torch.cat([x, source], 1), timestep=t * 1000,
                             encoder_hidden_states=text).sample
        assert torch.allclose(alone, with_source, atol=1e-6)
        editor.patch_embedding.weight[:, 4:].normal_(std=0.1)
        moved = editor(hidden_states=torch.cat([x, source], 1), timestep=t * 1000, encoder_hidden_states=text).sample
    assert (moved - alone).abs().max() > 1e-3


def test_a_video_model_file_round_trips(tmp_path):
    model = tiny_video(seed=2)
    with torch.no_grad():
        model.transformer.patch_embedding.weight.normal_(std=0.1)
    path = save_model(model, tmp_path / "video.safetensors")
    loaded = load_model(path)
    assert isinstance(loaded, VideoModel) and loaded.frames and loaded.info.steps == 8
    clip = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    x, t = torch.randn(1, 4, 2, 2, 2), torch.tensor([0.5])
    with torch.no_grad():
        source, text = model.encode_source(clip), model.encode_text(["make the circle blue"])
        expected = model.predict(x, t, text, source)
        got = loaded.predict(x, t, loaded.encode_text(["make the circle blue"]), loaded.encode_source(clip))
    assert source.latents.shape == (1, 4, 2, 2, 2)
    assert torch.allclose(expected, got, atol=1e-6)


def test_a_video_model_refuses_a_still_picture_and_a_clip_of_the_wrong_length():
    model = tiny_video()
    with pytest.raises(ValueError, match=r"clips \[B, 3, F, H, W\]"):
        model.encode_source(torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="1 \\+ a multiple of 4 frames"):
        model.encode_source(torch.zeros(1, 3, 4, 16, 16))


def test_an_editor_transformer_must_read_the_source_channels():
    parts = tiny_video_parts()
    with pytest.raises(ValueError, match="add_source_channels"):
        VideoModel(tiny_wan(), **parts)
