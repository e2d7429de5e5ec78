"""The one time convention, and each family's conversion into it."""

import pytest
import torch
from diffusers import DDPMScheduler

from unpaired_edit.core.conventions import DdpmBridge, add_noise, velocity, x0_from_velocity
from unpaired_edit.core.models import SourceCond
from unpaired_edit.core.models.tiny import tiny_flow, tiny_ip2p

torch.manual_seed(0)
X0, EPS = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8)


def test_flow_round_trip_and_endpoints():
    t = torch.tensor([0.0, 0.3, 1.0])
    x_t = add_noise(X0, t, EPS)
    assert torch.allclose(x_t[0], X0[0]) and torch.allclose(x_t[2], EPS[2])  # t=1 is noise
    assert torch.allclose(x0_from_velocity(x_t, t, velocity(X0, EPS)), X0, atol=1e-6)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_ddpm_bridge_matches_ddpm_noising_and_recovers_x0(prediction_type):
    sched = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    bridge = DdpmBridge(sched.alphas_cumprod, prediction_type)
    k = torch.tensor([10, 500, 990])
    a = sched.alphas_cumprod[k].double()
    sigma = ((1 - a) / a).sqrt()
    t = (sigma / (1 + sigma)).float()
    x_native, timestep, a_out = bridge.to_native(add_noise(X0, t, EPS), t)
    assert torch.allclose(timestep, k.float(), atol=1e-3)
    assert torch.allclose(x_native, sched.add_noise(X0, EPS, k), atol=1e-5)
    sa, sb = a_out.sqrt().float().view(-1, 1, 1, 1), (1 - a_out).sqrt().float().view(-1, 1, 1, 1)
    ideal = EPS if prediction_type == "epsilon" else sa * EPS - sb * X0  # the model's perfect output
    v = bridge.velocity_from_native(ideal, x_native, a_out)
    assert torch.allclose(x0_from_velocity(add_noise(X0, t, EPS), t, v), X0, atol=1e-4)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_ip2p_predict_is_the_unet_seen_through_the_bridge(prediction_type):
    model = tiny_ip2p(prediction_type=prediction_type)
    x0, eps, src = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8), SourceCond(torch.randn(2, 4, 8, 8))
    t = torch.tensor([0.2, 0.7])
    text = model.encode_text(["make it red"])
    x_t = add_noise(x0, t, eps)
    with torch.no_grad():
        v = model.predict(x_t, t, text, src)
        x_native, timestep, a = model.bridge.to_native(x_t, t)
        out = model.unet(torch.cat([x_native, src.latents], 1), timestep, encoder_hidden_states=text.embeds.expand(2, -1, -1)).sample
    assert torch.allclose(v, model.bridge.velocity_from_native(out, x_native, a), atol=1e-5)
    # x0 from the prediction is the same as the DDPM model's own clean estimate
    sa, sb = a.sqrt().float().view(-1, 1, 1, 1), (1 - a).sqrt().float().view(-1, 1, 1, 1)
    own_x0 = (x_native - sb * out) / sa if prediction_type == "epsilon" else sa * x_native - sb * out
    assert torch.allclose(x0_from_velocity(x_t, t, v), own_x0, atol=1e-4)


@pytest.mark.parametrize("mode", ["offset", "same", "channel"])
def test_flow_predict_shapes_and_source_modes(mode):
    model = tiny_flow(source_mode=mode, guidance_embeds=mode != "channel")
    x_t, src = torch.randn(2, 4, 8, 8), SourceCond(torch.randn(2, 4, 8, 8))
    text = model.encode_text(["make it red"])
    with torch.no_grad():
        with_source = model.predict(x_t, torch.tensor([0.5, 0.5]), text, src)
        without = model.predict(x_t, torch.tensor([0.5, 0.5]), text, None)
    assert with_source.shape == x_t.shape
    assert (with_source - without).abs().max() > 1e-4  # the source reaches the output


def test_flow_source_positions():
    model = tiny_flow(source_mode="same")
    x_t, src = torch.randn(1, 4, 8, 8), SourceCond(torch.randn(1, 4, 8, 8))
    text = model.encode_text(["make it red"])
    seen = {}
    hook = model.transformer.register_forward_pre_hook(lambda m, a, kw: seen.update(kw), with_kwargs=True)
    with torch.no_grad():
        model.predict(x_t, torch.tensor([0.5]), text, src)
    hook.remove()
    ids = seen["img_ids"]
    assert ids.shape[0] == 2 * 16 and torch.equal(ids[:16], ids[16:])  # ByG: same positions
    model.info.extra["source_mode"] = "offset"
    hook = model.transformer.register_forward_pre_hook(lambda m, a, kw: seen.update(kw), with_kwargs=True)
    with torch.no_grad():
        model.predict(x_t, torch.tensor([0.5]), text, src)
    hook.remove()
    ids = seen["img_ids"]
    assert torch.equal(ids[16:, 1:], ids[:16, 1:]) and (ids[16:, 0] == 1).all() and (ids[:16, 0] == 0).all()
