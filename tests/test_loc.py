"""LoRA of Change: the hypernetwork and the generated LoRA, applied per sample and merged."""

import pytest
import torch
from torch import nn

from unpaired_edit.core.generated_lora import LoraDelta, applied, merged, target_layers
from unpaired_edit.core.loc import LocConfig, LocHypernetwork
from unpaired_edit.core.models.base import TextCond
from unpaired_edit.core.models.toy import build_toy


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
    return x, source, torch.rand(b, generator=g), TextCond(torch.randn(b, 24, 64, generator=g))


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
                                  source.repeat(2, 1, 1, 1))
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
