"""ByG: each loss term on hand-made tensors, the routed gradient, the bootstrap rollout, which
weights learn, the merged export, and short runs of the trainer on toy and flow models."""

import pytest
import torch
import yaml
from safetensors.torch import load_file

from unpaired_edit.core.model_files import load_model, save_model
from unpaired_edit.core.models import SourceCond
from unpaired_edit.core.models.tiny import tiny_flow
from unpaired_edit.core.models.toy import build_toy
from unpaired_edit.core.models.toy import sample_toy
from unpaired_edit.core.samplers import EditSettings, Hooks, initial_noise
from unpaired_edit.core.toy.datasets import EditDataset, stack
from unpaired_edit.training.cli import main
from unpaired_edit.training.methods.base import TrainState
from unpaired_edit.training.config import ConfigError, TrainConfig
from unpaired_edit.training.methods.byg import (ByG, BygOptions, adapters_off, by_kind, direction_loss, edit_magnitude,
                                                flow_matching_loss, merged_copy, prior_loss, rollout, route)


def test_direction_loss_sees_only_the_direction():
    start = torch.tensor([[1.0, 1.0, 0.0]])
    end = torch.tensor([[3.0, 1.0, 0.0]])  # end - start = (2, 0, 0)
    along = torch.tensor([[1.5, 1.0, 0.0]])  # (0.5, 0, 0): same direction, shorter
    against = torch.tensor([[0.0, 1.0, 0.0]])
    across = torch.tensor([[1.0, 4.0, 0.0]])
    assert direction_loss(along, start, end).item() == pytest.approx(0.0, abs=1e-6)
    assert direction_loss(against, start, end).item() == pytest.approx(2.0)
    assert direction_loss(across, start, end).item() == pytest.approx(1.0)
    diagonal = torch.tensor([[2.0, 2.0, 0.0]])  # (1, 1, 0): 45 degrees
    assert direction_loss(diagonal, start, end).item() == pytest.approx(1 - 2 ** -0.5)


def test_prior_loss_adds_the_magnitude_anchor_per_sample():
    start = torch.zeros(2, 1, 2, 2)
    end = torch.ones(2, 1, 2, 2)
    v = torch.stack([torch.full((1, 2, 2), 0.5), torch.full((1, 2, 2), 3.0)])  # both along the direction
    loss = prior_loss(v, start, end, alpha=0.1)
    assert loss.shape == (2,)
    assert loss.tolist() == pytest.approx([0.1 * 0.25, 0.1 * 4.0], abs=1e-6)


def test_route_has_the_ema_value_and_the_one_step_gradient():
    w = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    one_step = w * torch.tensor([2.0, 3.0, 4.0])
    ema_sample = torch.tensor([7.0, 8.0, 9.0])
    routed = route(ema_sample, one_step)
    assert torch.equal(routed, ema_sample)
    (routed * torch.tensor([1.0, 10.0, 100.0])).sum().backward()
    assert w.grad.tolist() == [2.0, 30.0, 400.0]  # d(one_step)/dw times the upstream gradient


def test_edit_magnitude_measures_the_velocity_along_the_caption_difference():
    v_src, v_tgt = torch.zeros(3, 1, 2, 2), torch.full((3, 1, 2, 2), 2.0)
    v = torch.stack([torch.zeros(1, 2, 2), torch.full((1, 2, 2), 1.0), torch.tensor([[[3.0, 3.0], [5.0, 5.0]]])])
    assert edit_magnitude(v, v_src, v_tgt).tolist() == pytest.approx([0.0, 0.5, 2.0])
    across = torch.tensor([[[[1.0, -1.0], [1.0, -1.0]]]])  # orthogonal to the difference: no edit
    assert edit_magnitude(across, v_src[:1], v_tgt[:1]).item() == pytest.approx(0.0)
    assert by_kind("lambda", torch.tensor([0.0, 1.0, 2.0]), ["colour", "shape", "colour"]) == {
        "lambda/all": 1.0, "lambda/colour": 1.0, "lambda/shape": 1.0}


def test_logit_normal_forward_times_weight_the_grid_like_the_base_s_training_times():
    from unpaired_edit.training.methods.base import logit_normal_weights, per_sample_step

    w = logit_normal_weights(10)
    assert w.shape == (10,) and w.sum().item() == pytest.approx(1.0) and w[-1] == 0  # never pure noise
    assert w.argmax().item() == 4 and w[4].item() == pytest.approx(w[5].item(), rel=0.2) and w[0] < w[4] / 2
    rngs = [torch.Generator().manual_seed(i) for i in range(2000)]
    k = per_sample_step(rngs, 10, w.float())
    assert k.min() >= 1 and k.max() <= 9
    counts = torch.bincount(k, minlength=11)[1:].double() / len(k)
    assert torch.allclose(counts, w, atol=0.03)


def test_the_cycle_weight_ramps_after_the_warm_up_when_asked(tmp_path, toy_base):
    ramped = _method(tmp_path, toy_base, identity_warmup=10, cycle_ramp=4, lambda_cycle=2.0)
    assert [ramped.cycle_weight(s) for s in (0, 9, 10, 11, 13, 50)] == [0.0, 0.0, 0.5, 1.0, 2.0, 2.0]
    assert _method(tmp_path, toy_base, lambda_cycle=2.0).cycle_weight(0) == 2.0
    with pytest.raises(ConfigError, match="forward_time"):
        _method(tmp_path, toy_base, forward_time="beta")


def test_flow_matching_loss_is_zero_on_the_true_velocity():
    x0, eps = torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4)
    assert flow_matching_loss(eps - x0, x0, eps).abs().max() == 0
    assert flow_matching_loss(eps - x0 + 1, x0, eps).tolist() == pytest.approx([1.0] * 3)


def test_rollout_ends_where_the_sampler_ends_and_snapshots_on_its_path():
    model = build_toy(seed=3)
    source = SourceCond(torch.rand(2, 3, 8, 8) * 2 - 1)
    text = model.encode_text(["make it red", "turn the circle into a square"])
    noise = initial_noise(source.shape, torch.Generator().manual_seed(5), source.latents)
    snapshot, end = rollout(model, noise, text, source, 4, torch.tensor([4, 2]))
    settings = EditSettings(steps=4, guidance=1.0, image_guidance=1.0, seed=5)
    sampled = sample_toy(model, source, text, model.encode_text([""]), settings, Hooks())
    assert torch.allclose(end, sampled, atol=1e-5)
    assert torch.equal(snapshot[0], noise[0])  # k = steps: t = 1, the noise itself
    two_steps = noise.clone()
    for t, t_next in ((1.0, 0.75), (0.75, 0.5)):
        two_steps = two_steps + (t_next - t) * model.predict(two_steps, torch.tensor(t), text, source)
    assert torch.allclose(snapshot[1], two_steps[1], atol=1e-5)  # k = 2 of 4: t = 0.5


def test_a_rollout_without_its_clean_end_stops_each_sample_at_its_snapshot():
    model = build_toy(seed=3)
    source = SourceCond(torch.rand(3, 3, 8, 8) * 2 - 1)
    text = model.encode_text(["make it red", "turn the circle into a square", "remove the circle"])
    noise = initial_noise(source.shape, torch.Generator().manual_seed(5), source.latents)
    k = torch.tensor([5, 2, 3])
    whole, _ = rollout(model, noise, text, source, 6, k)
    batches = []
    handle = model.unet.register_forward_hook(lambda module, args, out: batches.append(len(args[0])))
    stopped, end = rollout(model, noise, text, source, 6, k, end=False)
    handle.remove()
    assert end is None and torch.allclose(stopped, whole, atol=1e-6)
    assert batches == [3, 2, 2, 1]  # steps 6..3: every sample above its snapshot, none below k = 2


def _method(tmp_path, model_path, **options):
    config = TrainConfig(output_dir=str(tmp_path / "run"), model=str(model_path))
    return ByG(config, BygOptions(**{"lora_rank": 4, "rollout_steps": 2, **options}))


@pytest.fixture(scope="module")
def toy_base(tmp_path_factory):
    path = tmp_path_factory.mktemp("base") / "toy.safetensors"
    save_model(build_toy(seed=1), path)
    return path


def _batch(n=4):
    data = EditDataset(size=8, length=n)
    return stack([data[i] for i in range(n)]), [torch.Generator().manual_seed(i) for i in range(n)]


def test_gradient_reaches_the_lora_and_text_encoder_only(tmp_path, toy_base):
    method = _method(tmp_path, toy_base, identity_warmup=0, identity_prob=0.5)
    model = method.build_model()
    trainable = method.trainable(model)
    for name, module in trainable.items():
        for key, p in module.named_parameters():
            p.requires_grad_(method.trains(f"{name}.{key}"))
    batch, rngs = _batch()
    loss, logs = method.loss(model, batch, rngs, TrainState())
    assert {"identity", "prior_forward", "cycle", "prior_reverse"} <= logs.keys()  # both branches ran
    loss.backward()
    lora = {k: p for k, p in model.unet.named_parameters() if ".lora_" in k}
    assert lora and all(p.grad is not None for p in lora.values())
    assert any(p.grad.abs().sum() > 0 for k, p in lora.items() if "lora_B" in k)
    assert any(k.startswith("conv_in.lora_") for k in lora)  # the source channels can learn
    assert all(p.grad is not None for p in model.text_encoder.parameters())
    frozen = [p for k, p in model.unet.named_parameters() if ".lora_" not in k]
    assert frozen and all(not p.requires_grad and p.grad is None for p in frozen)
    assert all(p.grad is None for p in method.caption_encoder.parameters())


@pytest.mark.parametrize("ablation", [{"cycle": False}, {"gradient_routing": False}])
def test_without_the_clean_end_the_loss_and_gradients_are_as_with_it(tmp_path, toy_base, ablation):
    """The ablations that never read the rollout's clean end skip it, and nothing else changes."""
    results = []
    for skip in (False, True):
        method = _method(tmp_path, toy_base, identity_warmup=0, identity_prob=0.25, **ablation)
        assert not method.uses_clean_end()
        if not skip:
            method.uses_clean_end = lambda: True
        torch.manual_seed(0)  # the LoRA's initial weights, as the loop seeds them
        model = method.build_model()
        for name, module in method.trainable(model).items():
            for key, p in module.named_parameters():
                p.requires_grad_(method.trains(f"{name}.{key}"))
        batch, rngs = _batch()
        loss, _ = method.loss(model, batch, rngs, TrainState())
        loss.backward()
        results.append((loss, {k: p.grad for k, p in model.unet.named_parameters() if p.grad is not None}))
    (loss, grads), (skipped, skipped_grads) = results
    assert torch.allclose(loss, skipped, atol=1e-6) and grads.keys() == skipped_grads.keys()
    assert all(torch.allclose(grads[k], skipped_grads[k], atol=1e-6) for k in grads)


def test_the_diagnostics_are_logged_per_kind_and_leave_the_loss_and_gradients_alone(tmp_path, toy_base):
    results = []
    for probe in (False, True):
        method = _method(tmp_path, toy_base, identity_warmup=0, identity_prob=0.25)
        method.logs_at = lambda step: probe
        torch.manual_seed(0)
        model = method.build_model()
        for name, module in method.trainable(model).items():
            for key, p in module.named_parameters():
                p.requires_grad_(method.trains(f"{name}.{key}"))
        batch, rngs = _batch(6)
        loss, logs = method.loss(model, batch, rngs, TrainState())
        loss.backward()
        results.append((loss, logs, {k: p.grad for k, p in model.unet.named_parameters() if p.grad is not None}))
    (loss, logs, grads), (probed, probe_logs, probe_grads) = results
    assert not any(k.startswith(("lambda/", "cycle_pull/")) for k in logs)
    kinds = {f"lambda/{kind}" for kind in batch["kind"]}
    assert "lambda/all" in probe_logs and "cycle_pull/all" in probe_logs
    assert {k for k in probe_logs if k.startswith("lambda/")} <= kinds | {"lambda/all"}
    assert -1.0 <= probe_logs["cycle_pull/all"] <= 1.0
    assert torch.equal(loss, probed) and all(torch.equal(grads[k], probe_grads[k]) for k in grads)


def test_the_rollout_on_merged_ema_weights_is_the_rollout_with_the_lora(tmp_path, toy_base):
    from unpaired_edit.training.ema import EMA

    method = _method(tmp_path, toy_base, rollout_steps=4)
    model = method.build_model()
    params = {k: p for k, p in model.unet.named_parameters() if ".lora_" in k}
    ema = EMA(params, decay=0.5)
    with torch.no_grad():
        for p in params.values():
            p.normal_(std=0.1)
    ema.update()  # the EMA is now half-way between the zero-effect start and the random LoRA
    with torch.no_grad():
        for p in params.values():
            p.normal_(std=0.1)  # and the live weights differ from it
    live = {k: p.clone() for k, p in params.items()}
    source = model.encode_source(torch.rand(3, 3, 8, 8))
    noise, k = torch.randn(3, 3, 8, 8), torch.tensor([1, 2, 4])
    instruction = ["make the circle red", "turn the square into a triangle", "remove the star"]
    y_t, y_0 = method.bootstrap(model, ema, source, instruction, noise, k)
    with ema.swapped_in():
        expected = rollout(model, noise, model.text_embeddings(instruction), source, 4, k)
    assert torch.allclose(y_t, expected[0], atol=1e-5) and torch.allclose(y_0, expected[1], atol=1e-5)
    assert all(torch.equal(p, live[k]) for k, p in params.items())  # the training weights are untouched
    assert not any(".lora_" in k for k in method.merged.module.state_dict())
    shared = {id(p) for p in model.unet.parameters()}
    merged = [p for k, p in method.merged.module.named_parameters() if id(p) not in shared]
    assert merged and all(k.endswith("weight") for k, p in method.merged.module.named_parameters() if id(p) not in shared)
    assert len(merged) == len(method.merged.layers)  # only the adapted layers' weights are copies


def test_the_prior_is_the_untouched_base_whatever_the_lora_learnt(tmp_path, toy_base):
    method = _method(tmp_path, toy_base)
    model = method.build_model()
    base = load_model(toy_base)
    with torch.no_grad():
        for k, p in model.unet.named_parameters():
            if "lora_B" in k:
                p.normal_()
        for p in model.text_encoder.parameters():
            p.add_(1.0)
    y, t = torch.randn(2, 3, 8, 8), torch.tensor([0.3, 0.8])
    captions = ["a red circle on a blue background", "a green square on a white background"]
    [(v_a, v_b)] = method.frozen(model, [(y, t)], captions[:1] * 2, captions[1:] * 2)
    with torch.no_grad():
        expected = base.predict(torch.cat([y, y]), torch.cat([t, t]), base.encode_text(captions[:1] * 2 + captions[1:] * 2))
    assert torch.allclose(torch.cat([v_a, v_b]), expected, atol=1e-5)
    with torch.no_grad():
        edited = model.predict(y, t, base.encode_text(captions[:1] * 2), None)
    assert not torch.allclose(edited, v_a, atol=1e-3)  # with the adapters on, the LoRA acts
    with adapters_off(model), torch.no_grad():
        assert torch.allclose(model.predict(y, t, base.encode_text(captions[:1] * 2), None), v_a, atol=1e-5)


def test_the_frozen_velocities_of_several_points_in_one_pass_equal_one_pass_each(tmp_path, toy_base):
    method = _method(tmp_path, toy_base)
    model = method.build_model()
    points = [(torch.randn(2, 3, 8, 8), torch.tensor([0.3, 0.8])), (torch.randn(2, 3, 8, 8), torch.tensor([0.5, 0.1]))]
    first, second = ["a red circle on a blue background"] * 2, ["a green square at the left on a sand background"] * 2
    together = method.frozen(model, points, first, second)
    for point, pair in zip(points, together):
        [alone] = method.frozen(model, [point], first, second)
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(pair, alone))


def test_export_merges_the_lora_into_a_plain_editor(tmp_path, toy_base):
    method = _method(tmp_path, toy_base)
    model = method.build_model()
    with torch.no_grad():
        for k, p in model.unet.named_parameters():
            if "lora_B" in k:
                p.normal_(std=0.1)
    merged = merged_copy(model)
    assert not any("lora" in k for k in merged.unet.state_dict())
    assert any("lora" in k for k in model.unet.state_dict())  # the training model is untouched
    x, t, source = torch.randn(2, 3, 8, 8), torch.tensor([0.2, 0.7]), SourceCond(torch.randn(2, 3, 8, 8))
    text = model.encode_text(["turn the circle into a square"])
    with torch.no_grad():
        assert torch.allclose(merged.predict(x, t, text, source), model.predict(x, t, text, source), atol=1e-5)
    path = tmp_path / "merged.safetensors"
    save_model(merged, path)
    assert load_model(path).family == "toy"


TINY = {"batch_size": 4, "log_every": 1, "validate_every": 100, "ema_decay": 0.9, "optim": {"warmup_steps": 2},
        "byg": {"lora_rank": 4, "rollout_steps": 2, "identity_warmup": 1, "identity_prob": 0.25,
                "validate_edits": 7, "validate_steps": 2}}


def _config(tmp_path, name, model, **overrides):
    data = {**TINY, "output_dir": str(tmp_path / name), "model": str(model), **overrides}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_two_steps_on_a_toy_model_write_a_merged_editor(tmp_path, toy_base):
    assert main(["byg", "--config", _config(tmp_path, "run", toy_base, steps=2)]) == 0
    model = load_model(tmp_path / "run" / "model.safetensors")
    assert model.family == "toy" and model.info.method == "byg"
    rows = [yaml.safe_load(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert "cycle" in rows[1]  # after the one warm-up step, edit samples train too


@pytest.mark.parametrize("ablation", [{"gradient_routing": False}, {"cycle": False}])
def test_ablations_train(tmp_path, toy_base, ablation):
    byg = {**TINY["byg"], **ablation}
    assert main(["byg", "--config", _config(tmp_path, "run", toy_base, steps=2, byg=byg)]) == 0
    rows = [yaml.safe_load(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert ("cycle" in rows[1]) == ablation.get("cycle", True)


def test_two_steps_on_a_tiny_flow_model(tmp_path):
    path = tmp_path / "flow.safetensors"
    save_model(tiny_flow(seed=0, source_mode="same"), path)
    byg = {**TINY["byg"], "validate_edits": 1}
    assert main(["byg", "--config", _config(tmp_path, "run", path, steps=2, byg=byg, data={"size": 16})]) == 0
    model = load_model(tmp_path / "run" / "model.safetensors")
    assert model.family == "flow" and not any("lora" in k for k in load_file(tmp_path / "run" / "model.safetensors"))


def test_resume_is_exact(tmp_path, toy_base):
    main(["byg", "--config", _config(tmp_path, "straight", toy_base, steps=4, checkpoint_every=2)])
    main(["byg", "--config", _config(tmp_path, "split", toy_base, steps=2, checkpoint_every=2)])
    main(["byg", "--config", _config(tmp_path, "split", toy_base, steps=4, checkpoint_every=2), "--resume"])
    straight = load_file(tmp_path / "straight" / "model.safetensors")
    split = load_file(tmp_path / "split" / "model.safetensors")
    assert all(torch.equal(straight[k], split[k]) for k in straight)
    start = load_file(toy_base)
    assert any(not torch.equal(start[k], straight[k]) for k in straight if k.startswith("unet."))
