"""The supervised (paired) baseline: the InstructPix2Pix recipe, its dropout, short runs."""

import pytest
import torch
import torch.nn.functional as F
import yaml
from diffusers import DDPMScheduler

from unpaired_edit.core.model_files import load_model, save_model
from unpaired_edit.core.models.tiny import tiny_ip2p
from unpaired_edit.training.cli import main
from unpaired_edit.training.methods.supervised import dropout_masks


def test_conditioning_dropout_frequencies():
    r = torch.rand(200_000, generator=torch.Generator().manual_seed(0))
    drop_text, drop_image = dropout_masks(r, 0.05)
    text_only, both, image_only = (drop_text & ~drop_image), (drop_text & drop_image), (~drop_text & drop_image)
    for share in (text_only, both, image_only):
        assert share.float().mean().item() == pytest.approx(0.05, abs=0.003)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_ip2p_loss_equals_the_diffusers_recipe(prediction_type):
    """train_instruct_pix2pix.py, transcribed step by step, on the same batch, dropout, noise and
    times: the ip2p family's denoising loss, fed as the supervised trainer feeds it."""
    model = tiny_ip2p(prediction_type=prediction_type)
    model.scheduler = DDPMScheduler.from_config(model.scheduler.config)  # the recipe trains with DDPM
    g = torch.Generator().manual_seed(0)
    source, target = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1, torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
    prompts = ["make it red", "add a circle", "turn the square blue", "remove the cat"]
    r, p = torch.tensor([0.01, 0.07, 0.12, 0.5]), 0.05  # text dropped / both / image dropped / kept
    with torch.no_grad():
        drop_text, drop_image = dropout_masks(r, p)
        text = model.encode_text(["" if d else c for c, d in zip(prompts, drop_text.tolist())])
        cond = model.encode_source(source).kept(~drop_image)
        ours = model.denoising_loss(target, text, cond, [torch.Generator().manual_seed(i) for i in range(4)])
        # the same draws, in the family's order: each sample's noise and DDPM step, then the VAE's sample
        generators = [torch.Generator().manual_seed(i) for i in range(4)]
        noise = torch.stack([torch.randn(4, 16, 16, generator=g) for g in generators])
        timesteps = torch.stack([torch.randint(0, 1000, (), generator=g) for g in generators])

        # --- the recipe ---
        vae, unet, scheduler = model.vae, model.unet, model.scheduler
        latents = vae.encode(target).latent_dist.sample(generators)
        latents = latents * vae.config.scaling_factor
        noisy_latents = scheduler.add_noise(latents, noise, timesteps)

        def tokenize(texts):
            return model.tokenizer(texts, max_length=model.tokenizer.model_max_length, padding="max_length",
                                   truncation=True, return_tensors="pt").input_ids

        encoder_hidden_states = model.text_encoder(tokenize(prompts))[0]
        original_image_embeds = vae.encode(source).latent_dist.mode()
        null_conditioning = model.text_encoder(tokenize([""]))[0]
        prompt_mask = (r < 2 * p).reshape(4, 1, 1)
        encoder_hidden_states = torch.where(prompt_mask, null_conditioning, encoder_hidden_states)
        image_mask = (1 - ((r >= p).to(latents.dtype) * (r < 3 * p).to(latents.dtype))).reshape(4, 1, 1, 1)
        original_image_embeds = image_mask * original_image_embeds
        concatenated = torch.cat([noisy_latents, original_image_embeds], dim=1)
        target_out = noise if prediction_type == "epsilon" else scheduler.get_velocity(latents, noise, timesteps)
        model_pred = unet(concatenated, timesteps, encoder_hidden_states, return_dict=False)[0]
        recipe = F.mse_loss(model_pred.float(), target_out.float(), reduction="mean")
    assert torch.allclose(ours, recipe, rtol=1e-6, atol=1e-7)


def _run(tmp_path, name, **extra):
    cfg = {"output_dir": str(tmp_path / name), "steps": 2, "batch_size": 3, "log_every": 1, "validate_every": 2,
           "data": {"size": 16}, "supervised": {"validate_edits": 7, "validate_steps": 2}, **extra}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["supervised", "--config", str(path)]) == 0
    return tmp_path / name


def test_two_steps_on_a_toy_model(tmp_path):
    run = _run(tmp_path, "toy")
    model = load_model(run / "model.safetensors")
    assert model.family == "toy" and model.info.method == "supervised"
    rows = [yaml.safe_load(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    val = next(r for r in rows if "val/all/success" in r)
    assert 0 <= val["val/all/success"] <= 1 and "val/colour/preservation" in val
    assert (run / "samples" / "step-000002.png").is_file()


def test_two_steps_on_a_tiny_ip2p_model(tmp_path):
    base = save_model(tiny_ip2p(), tmp_path / "ip2p.safetensors")
    run = _run(tmp_path, "ip2p", model=str(base), data={"size": 16})
    trained = load_model(run / "model.safetensors")
    original = load_model(base)
    assert trained.family == "ip2p"
    changed = [k for k, v in trained.unet.state_dict().items() if not torch.equal(v, original.unet.state_dict()[k])]
    assert changed and all(torch.equal(v, original.text_encoder.state_dict()[k])
                           for k, v in trained.text_encoder.state_dict().items())  # the text encoder is frozen


def test_two_steps_on_a_tiny_flow_model(tmp_path):
    from unpaired_edit.core.models.tiny import tiny_flow

    base = save_model(tiny_flow(source_mode="same"), tmp_path / "flow.safetensors")
    run = _run(tmp_path, "flow", model=str(base))
    trained, original = load_model(run / "model.safetensors"), load_model(base)
    assert trained.family == "flow" and trained.source_mode == "same"
    assert any(not torch.equal(v, original.transformer.state_dict()[k])
               for k, v in trained.transformer.state_dict().items())
    assert all(torch.equal(v, original.text_encoder_2.state_dict()[k])
               for k, v in trained.text_encoder_2.state_dict().items())  # frozen
