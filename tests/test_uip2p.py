"""UIP2P: each loss term on hand-made tensors, the attention probe, where the gradient goes,
and short runs of the trainer on toy and tiny ip2p models."""

import pytest
import torch
import yaml
from safetensors.torch import load_file

from unpaired_edit.core.model_files import load_model, save_model
from unpaired_edit.core.models import SourceCond
from unpaired_edit.core.models.tiny import tiny_ip2p
from unpaired_edit.core.models.toy import build_toy
from unpaired_edit.core.toy.datasets import EditDataset, stack
from unpaired_edit.training.cli import main
from unpaired_edit.training.methods.base import TrainState
from unpaired_edit.training.config import ConfigError, TrainConfig
from unpaired_edit.training.image_text import build_toy_clip
from unpaired_edit.training.methods.uip2p import (Uip2p, Uip2pOptions, attention_loss, clip_direction_loss,
                                                  content_tokens, probed, reconstruction_loss, similarity_loss)


def test_clip_direction_loss_compares_the_change_not_the_embeddings():
    source, source_text = torch.randn(3, 8), torch.randn(3, 8)
    change = torch.randn(3, 8)
    along = clip_direction_loss(source + 0.1 * change, source, source_text + 5 * change, source_text)
    against = clip_direction_loss(source - change, source, source_text + change, source_text)
    assert torch.allclose(along, torch.zeros(3), atol=1e-6)  # any length, same direction
    assert torch.allclose(against, torch.full((3,), 2.0), atol=1e-6)
    assert along.shape == (3,)


def test_similarity_and_reconstruction_losses_per_sample():
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    assert torch.allclose(similarity_loss(a, b), torch.tensor([0.0, 1.0]))
    x = torch.zeros(2, 3, 4, 4)
    y = x.clone()
    y[1] += 0.5
    assert torch.allclose(reconstruction_loss(y, x), torch.tensor([0.0, 0.5]))


def test_attention_loss_averages_layers():
    forward = [torch.ones(2, 4), torch.ones(2, 16)]
    reverse = [torch.ones(2, 4), torch.ones(2, 16)]
    assert torch.equal(attention_loss(forward, reverse), torch.zeros(2))
    reverse[1] = reverse[1].clone()
    reverse[1][0] += 2.0  # sample 0 differs by 2 everywhere in the second layer: MSE 4
    assert torch.allclose(attention_loss(forward, reverse), torch.tensor([2.0, 0.0]))


def test_content_tokens_leave_out_special_and_padding_tokens():
    model = build_toy()
    words = content_tokens(model, ["make it red", ""])
    assert words[0].sum() == 3 and words[1].sum() == 0


@pytest.mark.parametrize("family", ["toy", "ip2p"])
def test_the_probe_changes_nothing_and_maps_where_the_words_are_read(family):
    model = build_toy(seed=1) if family == "toy" else tiny_ip2p(seed=1)
    shape = (2, 3, 8, 8) if family == "toy" else (2, 4, 4, 4)
    x, t, source = torch.randn(shape), torch.tensor([0.3, 0.8]), SourceCond(torch.randn(shape))
    prompts = ["turn the circle into a square", "make the background red"]
    text = model.encode_text(prompts)
    processors = [m.processor for n, m in model.denoiser.named_modules() if n.endswith("attn2")]
    with torch.no_grad():
        plain = model.predict(x, t, text, source)
        with probed(model.denoiser, content_tokens(model, prompts)) as maps:
            probed_out = model.predict(x, t, text, source)
    assert torch.allclose(plain, probed_out, atol=1e-5)
    assert maps and all(m.shape[0] == 2 and torch.allclose(m.mean(1), torch.ones(2), atol=1e-5) for m in maps)
    assert processors == [m.processor for n, m in model.denoiser.named_modules() if n.endswith("attn2")]


def test_ddpm_timesteps_map_to_the_flow_times_the_bridge_reads_back():
    model = tiny_ip2p()
    steps = torch.tensor([0, 10, 500, 998])
    t = model.bridge.flow_time(steps)
    assert torch.all(t[1:] > t[:-1]) and 0 < t[0] and t[-1] < 1
    _, timestep, _ = model.bridge.to_native(torch.zeros(4, 4, 2, 2), t)
    assert torch.allclose(timestep.float(), steps.float(), atol=1e-3)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("uip2p")
    save_model(build_toy(seed=1), root / "toy.safetensors")
    save_model(tiny_ip2p(), root / "ip2p.safetensors")
    build_toy_clip(seed=0, size=8, width=32, layers=1).save(root / "clip")
    return root


def _batch(n=4):
    data = EditDataset(size=8, length=n)
    return stack([data[i] for i in range(n)]), [torch.Generator().manual_seed(i) for i in range(n)]


@pytest.mark.parametrize("term", ["clip", "recon", "sim", "attn"])
def test_each_term_trains_the_editor_and_nothing_frozen(tmp_path, assets, term):
    weights = {f"lambda_{k}": float(k == term) for k in ("clip", "recon", "sim", "attn")}
    config = TrainConfig(output_dir=str(tmp_path), model=str(assets / "toy.safetensors"))
    method = Uip2p(config, Uip2pOptions(clip=str(assets / "clip"), conditioning_dropout=0.0, **weights))
    model = method.build_model()
    batch, rngs = _batch()
    loss, logs = method.loss(model, batch, rngs, TrainState())
    assert {"clip", "recon", "sim", "attn"} <= logs.keys() and loss.item() > 0
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.unet.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.text_encoder.parameters())
    assert all(p.grad is None for p in method.clip.model.parameters())


def test_the_reverse_pass_reads_the_forward_edit(tmp_path, assets):
    """The cycle: the reconstruction's gradient reaches the forward pass through x_edit (once
    the source channels, zero in a text-to-image base, have learnt anything)."""
    config = TrainConfig(output_dir=str(tmp_path), model=str(assets / "toy.safetensors"))
    method = Uip2p(config, Uip2pOptions(clip=str(assets / "clip"), conditioning_dropout=0.0))
    model = method.build_model()
    with torch.no_grad():
        model.unet.conv_in.weight[:, 3:].normal_(std=0.1)
    batch, rngs = _batch(2)
    x = batch["source"]
    x_edit = x.clone().requires_grad_(True)
    z_rec, _ = method.edit(model, x, torch.tensor([0.9, 0.9]), torch.randn_like(x),
                           model.encode_text(list(batch["reverse"])), model.encode_source(x_edit), content_tokens(model, batch["reverse"]))
    reconstruction_loss(z_rec, x).sum().backward()
    assert x_edit.grad is not None and x_edit.grad.abs().sum() > 0


def test_options_name_the_bad_key(tmp_path, assets):
    with pytest.raises(ConfigError, match="uip2p.similarity"):
        Uip2pOptions(similarity="captions")
    config = TrainConfig(output_dir=str(tmp_path), model=str(assets / "toy.safetensors"))
    with pytest.raises(Exception, match="uip2p.clip"):
        Uip2p(config, Uip2pOptions(clip=str(tmp_path / "nowhere"))).build_model()


def _config(tmp_path, assets, name, model, **overrides):
    data = {"output_dir": str(tmp_path / name), "model": str(assets / model), "batch_size": 3, "log_every": 1,
            "validate_every": 100, "ema_decay": 0.9, "data": {"size": 8}, "optim": {"warmup_steps": 2},
            "uip2p": {"clip": str(assets / "clip"), "validate_edits": 7, "validate_steps": 2}, **overrides}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize("family", ["toy", "ip2p"])
def test_two_steps_write_an_editor_of_the_same_family(tmp_path, assets, family):
    size = {"size": 8 if family == "toy" else 16}
    assert main(["uip2p", "--config", _config(tmp_path, assets, "run", f"{family}.safetensors", steps=2,
                                              data=size)]) == 0
    model = load_model(tmp_path / "run" / "model.safetensors")
    assert model.family == family and model.info.method == "uip2p"
    rows = [yaml.safe_load(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {"clip", "recon", "sim", "attn"} <= rows[0].keys()
    start = load_model(assets / f"{family}.safetensors")
    assert any(not torch.equal(v, start.denoiser.state_dict()[k]) for k, v in model.denoiser.state_dict().items())


def test_the_other_similarity_reading_trains(tmp_path, assets):
    uip2p = {"clip": str(assets / "clip"), "similarity": "edited_caption", "validate_edits": 7, "validate_steps": 2}
    assert main(["uip2p", "--config", _config(tmp_path, assets, "run", "toy.safetensors", steps=1, uip2p=uip2p)]) == 0


def test_resume_is_exact(tmp_path, assets):
    def run(name, steps, *extra):
        main(["uip2p", "--config", _config(tmp_path, assets, name, "toy.safetensors", steps=steps,
                                           checkpoint_every=2), *extra])

    run("straight", 4)
    run("split", 2)
    run("split", 4, "--resume")
    straight = load_file(tmp_path / "straight" / "model.safetensors")
    split = load_file(tmp_path / "split" / "model.safetensors")
    assert all(torch.equal(straight[k], split[k]) for k in straight)


def test_a_model_without_cross_attention_is_refused_by_what_it_lacks(tmp_path, assets):
    from unpaired_edit.core.models.tiny import tiny_flow

    save_model(tiny_flow(), tmp_path / "flow.safetensors")
    config = TrainConfig(output_dir=str(tmp_path), model=str(tmp_path / "flow.safetensors"))
    with pytest.raises(ConfigError, match="cross-attention maps \\(attn2 layers\\), which this flow model's"):
        Uip2p(config, Uip2pOptions(clip=str(assets / "clip"))).build_model()
