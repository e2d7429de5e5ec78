"""Our samplers against diffusers' reference pipelines on the same tiny model, seed and settings."""

import pytest
import torch
from diffusers import FluxKontextPipeline, StableDiffusionInpaintPipeline, StableDiffusionInstructPix2PixPipeline

from unpaired_edit.core.editing import edit_pixels, inpaint_pixels
from unpaired_edit.core.models.tiny import tiny_flow, tiny_inpaint, tiny_ip2p
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


@pytest.mark.parametrize("scheduler, size", [("ddim", (32, 48)), ("euler_a", (48, 32)), ("ddim", (32, 32))])
def test_inpaint_matches_stable_diffusion_inpaint_pipeline(scheduler, size):
    """The same tiny 9-channel UNet, scheduler, seed and mask, non-square included. The pipeline is
    given the masked picture's latent as we encode it (the VAE's mode; it would draw a sample)."""
    model = tiny_inpaint(scheduler=scheduler)
    settings = EditSettings(steps=6, guidance=7.5, seed=5)
    h, w = size
    g = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, h, w, generator=g)
    mask = torch.zeros(1, 1, h, w)
    mask[..., h // 4: h // 2 + 5, w // 3: w - 3] = 1.0
    pipe = StableDiffusionInpaintPipeline(
        vae=model.vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer, unet=model.unet,
        scheduler=type(model.scheduler).from_config(model.scheduler.config),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    with torch.no_grad():
        masked_latents = model.encode_source(image * 2 - 1, mask).latents
    reference = pipe("a red square", image=image, mask_image=mask, masked_image_latents=masked_latents, height=h,
                     width=w, num_inference_steps=settings.steps, guidance_scale=settings.guidance,
                     generator=torch.Generator().manual_seed(settings.seed), output_type="pt").images
    ours = (inpaint_pixels(model, image * 2 - 1, mask, "a red square", settings) / 2 + 0.5).clamp(0, 1)
    assert ours.shape == reference.shape == (1, 3, h, w)
    assert (ours - reference).abs().max() <= 1e-4
    other = (inpaint_pixels(model, image * 2 - 1, mask, "a blue circle", settings) / 2 + 0.5).clamp(0, 1)
    assert (other - reference).abs().max() > 1e-3


def test_the_masked_latent_is_the_vae_mode_of_the_blanked_picture():
    """What the pipeline would encode itself (a VAE sample) differs only by the sample's noise."""
    model = tiny_inpaint()
    pixels = torch.rand(2, 3, 32, 32) * 2 - 1
    mask = (torch.rand(2, 1, 32, 32) > 0.6).float()
    with torch.no_grad():
        source = model.encode_source(pixels, mask)
        blanked = pixels * (mask < 0.5)
        expected = model.vae.encode(blanked).latent_dist.mode() * model.vae.config.scaling_factor
    assert torch.equal(source.latents, expected)
    assert torch.equal(source.mask, torch.nn.functional.interpolate(mask, size=(16, 16)))
