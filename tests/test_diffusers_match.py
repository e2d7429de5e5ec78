"""Our samplers against diffusers' reference pipelines on the same tiny model, seed and settings."""

import pytest
import torch
from diffusers import FluxKontextPipeline, StableDiffusionInstructPix2PixPipeline

from unpaired_edit.core.editing import edit_pixels
from unpaired_edit.core.models.tiny import tiny_flow, tiny_ip2p
from unpaired_edit.core.samplers import EditSettings


def _ours(model, image, prompt, settings):
    return (edit_pixels(model, image * 2 - 1, prompt, settings) / 2 + 0.5).clamp(0, 1)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_ip2p_matches_instruct_pix2pix_pipeline(source_image, prediction_type):
    model = tiny_ip2p(prediction_type=prediction_type)
    settings = EditSettings(steps=6, guidance=7.5, image_guidance=1.5, seed=11)
    pipe = StableDiffusionInstructPix2PixPipeline(
        vae=model.vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer, unet=model.unet,
        scheduler=type(model.scheduler).from_config(model.scheduler.config),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    reference = pipe("turn the circle red", image=source_image, num_inference_steps=settings.steps,
                     guidance_scale=settings.guidance, image_guidance_scale=settings.image_guidance,
                     generator=torch.Generator().manual_seed(settings.seed), output_type="pt").images
    ours = _ours(model, source_image, "turn the circle red", settings)
    assert ours.shape == reference.shape
    assert (ours - reference).abs().max() <= 1e-4
    # The comparison is not vacuous: another seed gives another image.
    other = _ours(model, source_image, "turn the circle red", EditSettings(6, 7.5, 1.5, seed=12))
    assert (other - reference).abs().max() > 1e-3


def test_flow_matches_flux_kontext_pipeline(source_image):
    model = tiny_flow(source_mode="offset")
    settings = EditSettings(steps=5, guidance=3.5, seed=3)
    pipe = FluxKontextPipeline(
        scheduler=type(model.scheduler).from_config(model.scheduler.config), vae=model.vae,
        text_encoder=model.text_encoder, tokenizer=model.tokenizer, text_encoder_2=model.text_encoder_2,
        tokenizer_2=model.tokenizer_2, transformer=model.transformer)
    pipe.set_progress_bar_config(disable=True)
    h, w = source_image.shape[-2:]
    reference = pipe(image=source_image, prompt="add a red square", height=h, width=w,
                     num_inference_steps=settings.steps, guidance_scale=settings.guidance,
                     generator=torch.Generator().manual_seed(settings.seed), output_type="pt",
                     max_sequence_length=model.info.extra["max_sequence_length"], max_area=h * w,
                     _auto_resize=False).images
    ours = _ours(model, source_image, "add a red square", settings)
    assert ours.shape == reference.shape
    assert (ours - reference).abs().max() <= 1e-4
    other = _ours(model, source_image, "add a blue circle", settings)
    assert (other - reference).abs().max() > 1e-3
