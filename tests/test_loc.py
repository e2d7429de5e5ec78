"""LoRA of Change: the hypernetwork and the generated LoRA, applied per sample and merged."""

import json

import pytest
import torch
import yaml
from safetensors.torch import load_file
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel

from unpaired_edit.core.edit_lora import EditLora, load_edit_lora, save_edit_lora
from unpaired_edit.core.errors import EditError
from unpaired_edit.core.generated_lora import LoraDelta, applied, merged, target_layers
from unpaired_edit.core.loc import LocConfig, LocHypernetwork, build_hypernetwork, load_hypernetwork
from unpaired_edit.core.model_files import load_model, save_model
from unpaired_edit.core.models import SourceCond, TextCond
from unpaired_edit.core.models.tiny import tiny_ip2p
from unpaired_edit.core.models.toy import build_toy
from unpaired_edit.core.toy.datasets import EditDataset, stack
from unpaired_edit.training.cli import main
from unpaired_edit.training.config import ConfigError, TrainConfig
from unpaired_edit.training.methods.base import TrainState
from unpaired_edit.training.methods.loc import Loc, LocOptions


@pytest.fixture(scope="module")
def toy():
    model = build_toy(seed=0)
    model.unet.requires_grad_(False)
    return model


def _hypernetwork(model, seed=0, **overrides) -> LocHypernetwork:
    torch.manual_seed(seed)
    targets = {name: [layer.in_features, layer.out_features] for name, layer in target_layers(model.unet).items()}
    return LocHypernetwork(LocConfig(targets, width=32, blocks=2, heads=2, **overrides))


def _wake(hyper: LocHypernetwork) -> LocHypernetwork:
    """Give the zero-initialised up heads values, as training would."""
    with torch.no_grad():
        for head in hyper.up:
            head.weight.normal_(0, 0.2)
    return hyper


def _inputs(b=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    x, source = torch.randn(b, 3, 16, 16, generator=g), torch.rand(b, 3, 16, 16, generator=g) * 2 - 1
    return x, SourceCond(source), torch.rand(b, generator=g), TextCond(torch.randn(b, 24, 64, generator=g))


def _pairs(b=2, seed=2):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, 16, 16, generator=g) * 2 - 1, torch.rand(b, 3, 16, 16, generator=g) * 2 - 1


def test_targets_are_the_attention_projections(toy):
    names = list(target_layers(toy.unet))
    assert {n.split(".attn")[-1] for n in names} == {f"{a}.{p}" for a in "12" for p in ("to_q", "to_k", "to_v", "to_out.0")}
    assert len(names) == 8 * 4  # transformer blocks: one down, the middle, two up
    with pytest.raises(ValueError, match="No Linear layer"):
        target_layers(toy.unet, ("no_such_layer",))


def test_an_untrained_hypernetwork_changes_nothing(toy):
    x, source, t, text = _inputs()
    delta = _hypernetwork(toy)(*_pairs())
    assert all(torch.count_nonzero(up) == 0 for up in delta.up.values())
    assert any(torch.count_nonzero(down) > 0 for down in delta.down.values())
    plain = toy.predict(x, t, text, source)
    with applied(toy.unet, delta):
        assert torch.equal(toy.predict(x, t, text, source), plain)
    with merged(toy.unet, [(delta.select(0), 1.0)]):
        assert torch.equal(toy.predict(x, t, text, source), plain)


def test_per_sample_and_merged_loras_agree(toy):
    """Sample i under the batched hooks equals sample i alone with its LoRA merged, also when
    the model batch stacks the samples twice (guidance branches)."""
    x, source, t, text = _inputs()
    with torch.no_grad():
        delta = _wake(_hypernetwork(toy))(*_pairs())
        plain = toy.predict(x, t, text, source)
        with applied(toy.unet, delta):
            batched = toy.predict(x, t, text, source)
            doubled = toy.predict(x.repeat(2, 1, 1, 1), t.repeat(2), TextCond(text.embeds.repeat(2, 1, 1)),
                                  SourceCond.cat([source, source]))
        for i in range(2):
            with merged(toy.unet, [(delta.select(i), 1.0)]):
                alone = toy.predict(x[i : i + 1], t[i : i + 1], TextCond(text.embeds[i : i + 1]), source[i : i + 1])
            torch.testing.assert_close(batched[i : i + 1], alone, atol=1e-5, rtol=1e-4)
    assert (batched - plain).abs().max() > 1e-3  # the LoRA did something
    torch.testing.assert_close(doubled, batched.repeat(2, 1, 1, 1))


def test_gradient_reaches_every_hypernetwork_weight_and_nothing_frozen(toy):
    hyper = _wake(_hypernetwork(toy))
    x, source, t, text = _inputs()
    with applied(toy.unet, hyper(*_pairs())):
        toy.predict(x, t, text, source).square().mean().backward()
    for name, p in hyper.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in toy.unet.parameters())


def test_at_initialisation_the_up_heads_learn_first(toy):
    hyper = _hypernetwork(toy)
    x, source, t, text = _inputs()
    with applied(toy.unet, hyper(*_pairs())):
        toy.predict(x, t, text, source).square().mean().backward()
    assert all(head.weight.grad.abs().sum() > 0 for head in hyper.up)


def test_negated_lora_inverts_on_a_linear_layer():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 6))
    original = net[0].weight.detach().clone()
    delta = LoraDelta({"0": torch.randn(1, 2, 8)}, {"0": torch.randn(1, 6, 2)})
    x = torch.randn(3, 5, 8)
    with applied(net, delta):
        forward = net(x)
        with applied(net, -delta):
            torch.testing.assert_close(net(x), x @ original.T + net[0].bias)
    torch.testing.assert_close(forward, x @ (original + delta.weight("0")[0]).T + net[0].bias)
    with merged(net, [(delta, 1.0), (-delta, 1.0)]):
        torch.testing.assert_close(net[0].weight, original)
    with merged(net, [(delta, 0.5)]):
        torch.testing.assert_close(net[0].weight, original + 0.5 * delta.weight("0")[0])
    assert torch.equal(net[0].weight, original)


def test_merged_puts_the_exact_weights_back_after_an_error():
    net = nn.Sequential(nn.Linear(4, 4))
    original = net[0].weight.detach().clone()
    delta = LoraDelta({"0": torch.randn(1, 1, 4)}, {"0": torch.randn(1, 4, 1)})
    with pytest.raises(RuntimeError, match="boom"):
        with merged(net, [(delta, 0.3)]):
            raise RuntimeError("boom")
    assert torch.equal(net[0].weight, original)
    with pytest.raises(ValueError, match="single LoRA"):
        with merged(net, [(LoraDelta({"0": torch.randn(2, 1, 4)}, {"0": torch.randn(2, 4, 1)}), 1.0)]):
            pass


def test_pictures_of_any_size_give_a_lora(toy):
    hyper = _wake(_hypernetwork(toy))
    big = hyper(*(p.repeat(1, 1, 4, 4) for p in _pairs(1)))
    assert big.batch == 1 and all(big.down[n].shape == (1, 4, f) for n, (f, _) in hyper.config.targets.items())


# -- the loc trainer ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("loc")
    save_model(build_toy(seed=1), root / "toy.safetensors")
    save_model(tiny_ip2p(), root / "ip2p.safetensors")
    return root


def _config(tmp_path, assets, name, model, **overrides):
    data = {"output_dir": str(tmp_path / name), "model": str(assets / model), "batch_size": 3, "log_every": 1,
            "validate_every": 100, "ema_decay": 0.9, "data": {"size": 8}, "optim": {"warmup_steps": 2},
            "loc": {"width": 32, "blocks": 2, "heads": 2, "encoder_size": 8, "validate_edits": 7,
                    "validate_steps": 2}, **overrides}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize("family", ["toy", "ip2p"])
def test_two_steps_write_a_hypernetwork_for_that_editor(tmp_path, assets, family):
    size = {"size": 8 if family == "toy" else 16}
    assert main(["loc", "--config", _config(tmp_path, assets, "run", f"{family}.safetensors", steps=2,
                                            data=size)]) == 0
    loaded = load_hypernetwork(tmp_path / "run" / "hypernetwork.safetensors")
    hyper, meta = loaded.network, loaded.meta
    editor = load_model(assets / f"{family}.safetensors")
    assert meta["family"] == family and meta["base_hash"] == editor.base_hash()
    rows = [yaml.safe_load(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {"forward", "reverse"} <= rows[0].keys() and "val/all/success" in rows[-1]
    delta = hyper(*(p.repeat(1, 1, 2, 2) for p in _pairs(1)))
    assert any(torch.count_nonzero(up) > 0 for up in delta.up.values())  # the up heads have learnt
    assert set(delta.down) == set(target_layers(editor.denoiser))


def test_only_the_hypernetwork_learns(tmp_path, assets):
    config = TrainConfig(output_dir=str(tmp_path), model=str(assets / "toy.safetensors"))
    method = Loc(config, LocOptions(width=32, blocks=2, heads=2, encoder_size=8))
    system = method.build_model()
    system.editor.unet.requires_grad_(False)
    system.editor.text_encoder.requires_grad_(False)
    _wake(system.hypernetwork)
    data = EditDataset(size=8, length=2, with_target=True)
    loss, logs = method.loss(system, stack([data[0], data[1]]), [torch.Generator().manual_seed(i) for i in range(2)],
                               TrainState())
    loss.backward()
    assert all(p.grad is not None for p in system.hypernetwork.parameters())
    assert logs["forward"] > 0 and logs["reverse"] > 0


def test_without_lora_reverse_only_the_forward_term(tmp_path, assets):
    loc = {"width": 32, "blocks": 2, "heads": 2, "encoder_size": 8, "reverse": False, "validate_edits": 7,
           "validate_steps": 2}
    assert main(["loc", "--config", _config(tmp_path, assets, "run", "toy.safetensors", steps=1, loc=loc)]) == 0
    row = yaml.safe_load((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert "reverse" not in row


def test_resume_is_exact(tmp_path, assets):
    def run(name, steps, *extra):
        main(["loc", "--config", _config(tmp_path, assets, name, "toy.safetensors", steps=steps,
                                         checkpoint_every=2), *extra])

    run("straight", 4)
    run("split", 2)
    run("split", 4, "--resume")
    straight = load_file(tmp_path / "straight" / "hypernetwork.safetensors")
    split = load_file(tmp_path / "split" / "hypernetwork.safetensors")
    assert all(torch.equal(straight[k], split[k]) for k in straight)


def test_evaluate_transfer_makes_the_pairs_edit_on_other_scenes(tmp_path, assets, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["loc", "--config", _config(tmp_path, assets, "run", "toy.safetensors", steps=1)]) == 0
    hyper, toy = str(tmp_path / "run" / "hypernetwork.safetensors"), str(assets / "toy.safetensors")
    assert main(["evaluate", "--model", toy, "--task", "transfer", "--loc", hyper, "--n", "7", "--steps", "2",
                 "--size", "8", "--strength", "1.5", "--json", "loc.json"]) == 0
    run = json.loads((tmp_path / "loc.json").read_text())
    assert (run["loc"], run["strength"]) == (hyper, 1.5)
    assert run["results"]["all"]["n"] == 7 and 0 <= run["results"]["all"]["success"] <= 1
    assert main(["evaluate", "--model", toy, "--task", "transfer", "--n", "7", "--steps", "2",
                 "--size", "8", "--json", "text.json"]) == 0  # the same cases, by instruction
    run = json.loads((tmp_path / "text.json").read_text())
    assert "loc" not in run and run["results"]["all"]["n"] == 7
    capsys.readouterr()
    assert main(["evaluate", "--model", str(assets / "ip2p.safetensors"), "--task", "transfer", "--loc", hyper]) == 2
    assert "evaluate › --model" in capsys.readouterr().err


def test_a_clip_vision_tower_encodes_frozen_and_travels_in_the_file(tmp_path, assets):
    torch.manual_seed(0)
    tower = CLIPVisionModel(CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                             num_attention_heads=2, image_size=12, patch_size=4))
    tower.save_pretrained(tmp_path / "clip_vision")
    (tmp_path / "clip_vision" / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": [0.48, 0.46, 0.41], "image_std": [0.27, 0.26, 0.28]}))
    loc = {"width": 32, "blocks": 2, "heads": 2, "vision_tower": str(tmp_path / "clip_vision"),
           "validate_edits": 7, "validate_steps": 2}
    assert main(["loc", "--config", _config(tmp_path, assets, "run", "toy.safetensors", steps=2, loc=loc)]) == 0
    loaded = load_hypernetwork(tmp_path / "run" / "hypernetwork.safetensors")
    hyper, meta = loaded.network, loaded.meta
    assert meta["loc"]["vision"]["hidden_size"] == 32 and meta["loc"]["image_mean"] == [0.48, 0.46, 0.41]
    for name, weight in tower.state_dict().items():  # frozen, and saved with the hypernetwork
        assert torch.equal(hyper.encoder.tower.state_dict()[name], weight), name
    delta = hyper(*_pairs(1))  # 16-pixel pictures for a 12-pixel tower: resized
    assert any(torch.count_nonzero(up) > 0 for up in delta.up.values())
    with pytest.raises(EditError, match="not a CLIP model folder"):
        build_hypernetwork(hyper.config, tmp_path / "run")


def test_an_editor_without_the_target_layers_is_refused_by_what_it_lacks(tmp_path):
    from unpaired_edit.core.models.tiny import tiny_flow

    save_model(tiny_flow(), tmp_path / "flow.safetensors")
    config = TrainConfig(output_dir=str(tmp_path), model=str(tmp_path / "flow.safetensors"))
    with pytest.raises(ConfigError, match="'loc.targets' names \\(attn1.to_q, .*\\), which this flow model's"):
        Loc(config, LocOptions()).build_model()


def test_loc_needs_an_editor(tmp_path, assets):
    with pytest.raises(ValueError, match="needs a trained editor"):
        Loc(TrainConfig(output_dir=str(tmp_path)), LocOptions()).build_model()
    with pytest.raises(EditError, match="not a LoC hypernetwork"):
        load_hypernetwork(assets / "toy.safetensors")


# -- edit LoRA files ---------------------------------------------------------------------------

def test_an_edit_lora_file_round_trips_in_comfyui_key_names(tmp_path, toy):
    delta = _wake(_hypernetwork(toy))(*_pairs(1))
    lora = EditLora(delta.detach(), "toy", toy.base_hash(), toy.info.name)
    path = save_edit_lora(lora, tmp_path / "edit.safetensors")
    keys = set(load_file(path))
    name = next(iter(delta.down))
    assert f"lora_unet_{name.replace('.', '_')}.lora_down.weight" in keys
    assert len(keys) == 3 * len(delta.down)  # down, up, alpha per layer
    back = load_edit_lora(path)
    assert (back.family, back.base_hash) == ("toy", toy.base_hash())
    for n in delta.down:
        torch.testing.assert_close(back.delta.weight(n), delta.weight(n).detach())


def test_an_edit_lora_for_another_editor_is_refused(toy):
    lora = EditLora(_hypernetwork(toy)(*_pairs(1)).detach(), "toy", toy.base_hash(), toy.info.name)
    lora.check_fits(toy, "Apply Edit LoRA")
    with pytest.raises(EditError, match=r"Apply Edit LoRA.*made for"):
        lora.check_fits(build_toy(seed=5), "Apply Edit LoRA")
