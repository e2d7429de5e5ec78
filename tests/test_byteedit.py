"""ByteEdit: the reward models behind one interface, the quality reward's preference training, PeFL's
unrolled prediction and losses, 2-step runs on the toy and the tiny SD inpainter, exact resume."""

import json
import shutil

import pytest
import torch
import torch.nn.functional as F
import yaml
from safetensors.torch import load_file

from unpaired_edit.core.containers import atomic_save
from unpaired_edit.core.conventions import add_noise, x0_from_velocity
from unpaired_edit.core.errors import EditError
from unpaired_edit.core.model_files import load_model
from unpaired_edit.core.toy.datasets import InpaintDataset, stack
from unpaired_edit.training.cli import main
from unpaired_edit.training.config import ConfigError, load_config
from unpaired_edit.training.image_text import build_toy_clip
from unpaired_edit.training.methods.byteedit import ByteEdit, ByteEditOptions
from unpaired_edit.training.preferences import DEFECTS, degrade
from unpaired_edit.training.rewards import (AlignmentReward, CoherenceReward, PixelDiscriminator, QualityNet,
                                            QualityReward, perceptual_distance)


@pytest.fixture(scope="module")
def rewards(tmp_path_factory):
    """A toy CLIP folder and a quality reward file (untrained: the tests check plumbing, not taste)."""
    folder = tmp_path_factory.mktemp("rewards")
    clip = build_toy_clip(seed=0).save(folder / "clip")
    quality = QualityReward(QualityNet(8)).save(folder / "quality.safetensors")
    return {"clip": str(clip), "quality": str(quality)}


def _config(tmp_path, name, rewards, model="builtin/toy-inpaint-16", **byteedit):
    data = {"output_dir": str(tmp_path / name), "model": model, "steps": 2, "batch_size": 3, "log_every": 1,
            "validate_every": 2, "checkpoint_every": 2, "data": {"size": 16}, "optim": {"warmup_steps": 1},
            "byteedit": {"validate_tasks": 3, "steps": 4, "start": 3, "last": 2, **rewards, **byteedit}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _batch(n=3, size=16):
    return stack([InpaintDataset(size=size)[i] for i in range(n)])


def test_every_defect_stays_in_a_box_and_is_the_same_for_a_seed():
    picture = torch.rand(3, 16, 16) * 2 - 1
    for defect in DEFECTS:
        for seed in range(5):
            out = degrade(picture, torch.Generator().manual_seed(seed), defect)
            assert torch.equal(out, degrade(picture, torch.Generator().manual_seed(seed), defect))
            changed = (out != picture).any(0).nonzero()
            assert out.min() >= -1 and out.max() <= 1
            if len(changed):
                rows, cols = changed[:, 0], changed[:, 1]
                box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
                assert box <= 10 * 10  # within one box of at most 60 % of the side
    with pytest.raises(ValueError, match="defect must be one of"):
        degrade(picture, torch.Generator(), "melt")


def test_alignment_scores_what_the_hole_adds_with_gradients_to_the_picture():
    reward = AlignmentReward(build_toy_clip(seed=0))
    picture = (torch.rand(2, 3, 16, 16) * 2 - 1).requires_grad_(True)
    nothing = torch.zeros(2, 1, 16, 16)
    assert torch.allclose(reward.score(picture, ["a red square", "a grass background"], nothing), torch.zeros(2),
                          atol=1e-5)  # nothing painted: no gain over the blanked picture
    hole = nothing.clone()
    hole[:, :, 4:12, 4:12] = 1
    score = reward.score(picture, ["a red square", "a grass background"], hole)
    score.sum().backward()
    assert score.shape == (2,) and picture.grad.abs().sum() > 0


def test_the_quality_reward_round_trips_its_file_and_calibrates_to_the_middle(tmp_path):
    reward = QualityReward(QualityNet(8))
    better, worse = torch.rand(6, 3, 16, 16) * 2 - 1, torch.zeros(6, 3, 16, 16)
    reward.calibrate(better, worse)
    mask = torch.ones(6, 1, 16, 16)
    middle = (reward.score(better, [""] * 6, mask).mean() + reward.score(worse, [""] * 6, mask).mean()) / 2
    assert abs(middle.item()) < 1e-5
    loaded = QualityReward.load(reward.save(tmp_path / "quality.safetensors"))
    assert torch.equal(loaded.score(better, [""] * 6, mask), reward.score(better, [""] * 6, mask))
    other = tmp_path / "other.safetensors"  # another file of ours is refused by name
    atomic_save({"w": torch.zeros(1)}, {"format_version": 1, "kind": "loc_hypernetwork"}, other)
    with pytest.raises(EditError, match="is not a quality reward model"):
        QualityReward.load(other)


def test_coherence_averages_the_painted_pixels_and_its_loss_labels_them_generated():
    reward = CoherenceReward(PixelDiscriminator(8))
    picture, mask = torch.rand(2, 3, 16, 16) * 2 - 1, torch.zeros(2, 1, 16, 16)
    mask[0, :, :8] = 1
    logits = reward.discriminator(picture)
    assert torch.allclose(reward.score(picture, ["", ""], mask), torch.stack([logits[0, :, :8].mean(),
                                                                               torch.tensor(0.0)]), atol=1e-6)
    real, painted = picture[:1], picture[1:]
    expected = (F.binary_cross_entropy_with_logits(logits[:1], torch.ones_like(logits[:1]))
                + F.binary_cross_entropy_with_logits(logits[1:], 1 - mask[:1])) / 2
    assert torch.allclose(reward.loss(real, painted, mask[:1]), expected, atol=1e-6)


def test_perceptual_distance_is_zero_for_the_same_picture_only():
    encoder = build_toy_clip(seed=0)
    a = torch.rand(2, 3, 16, 16) * 2 - 1
    assert perceptual_distance(encoder, a, a).item() == 0
    assert perceptual_distance(encoder, a, a.flip(-1)).item() > 0


def _method(tmp_path, rewards, **byteedit):
    config, options = load_config(_config(tmp_path, "m", rewards, **byteedit), "byteedit", ByteEditOptions)
    return ByteEdit(config, options)


def test_the_feedback_prediction_is_euler_from_the_noised_masked_input_to_each_samples_own_step(tmp_path, rewards):
    method = _method(tmp_path, rewards, steps=8, start=6, last=3)
    model = method.build_model()
    batch = _batch(3)
    pixels, mask = batch["image"], (batch["mask"] >= 0.5).float()
    text = model.encode_text(batch["prompt"])
    seeds = [11, 12, 13]
    got = method.feedback_prediction(model, pixels, mask, text, [torch.Generator().manual_seed(s) for s in seeds])
    for i, seed in enumerate(seeds):  # each sample alone, by hand: the batch does not change it
        g = torch.Generator().manual_seed(seed)
        eps, stop = torch.randn(pixels.shape[1:], generator=g), int(torch.randint(1, 4, (), generator=g))
        source = model.encode_source(pixels[i:i + 1], mask[i:i + 1])
        x = add_noise(pixels[i:i + 1] * (1 - mask[i:i + 1]), 6 / 8, eps[None])
        with torch.no_grad():
            for k in range(6, stop, -1):
                x = x - model.predict(x, torch.tensor([k / 8]), text.rows()[i], source) / 8
        t = torch.tensor([stop / 8])
        want = x0_from_velocity(x, t, model.predict(x, t, text.rows()[i], source))
        assert torch.allclose(got[i:i + 1], want, atol=1e-5)


def test_the_loss_reaches_the_denoiser_through_one_call_and_every_term_is_logged(tmp_path, rewards):
    method = _method(tmp_path, rewards)
    model = method.build_model()
    method.critics(model)
    calls = []
    model.denoiser.register_forward_hook(lambda *a: calls.append(torch.is_grad_enabled()))
    loss, parts = method.loss(model, _batch(3), [torch.Generator().manual_seed(i) for i in range(3)], None)
    assert {"l1", "perceptual", "alignment", "quality", "coherence"} <= parts.keys()
    assert calls.count(True) == 1 and len(calls) >= 2  # the rollout ran without gradient
    loss.backward()
    assert model.denoiser.conv_in.weight.grad.abs().sum() > 0


def test_without_reward_weights_the_loss_is_the_regularisers(tmp_path, rewards):
    method = _method(tmp_path, rewards, alignment_weight=0.0, quality_weight=0.0, adversarial_weight=0.0,
                     perceptual_weight=0.0)
    model = method.build_model()
    assert method.critics(model) == {}
    loss, parts = method.loss(model, _batch(2), [torch.Generator().manual_seed(i) for i in range(2)], None)
    assert set(parts) == {"loss", "l1"} and torch.isclose(loss, torch.tensor(parts["l1"]))


@pytest.mark.parametrize("change, message", [
    ({"last": 3}, "needs 1 <= last < start <= steps"),
    ({"start": 5}, "needs 1 <= last < start <= steps"),
    ({"clip": ""}, "'byteedit.clip' is needed"),
    ({"quality": ""}, "'byteedit.quality' is needed"),
    ({"l1_weight": -1.0}, "'byteedit.l1_weight' must be 0 or more"),
])
def test_bad_options_are_refused_before_training(tmp_path, rewards, capsys, change, message):
    assert main(["byteedit", "--config", str(_config(tmp_path, "bad", rewards, **change))]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_two_steps_write_a_toy_inpainter_that_records_its_phase_and_resume_is_exact(tmp_path, rewards):
    config = _config(tmp_path, "run", rewards, critic_updates=2)
    config_data = yaml.safe_load(config.read_text())
    config_data["steps"] = 4
    config.write_text(yaml.safe_dump(config_data))
    assert main(["byteedit", "--config", str(config)]) == 0
    model = load_model(tmp_path / "run" / "model.safetensors")
    assert model.family == "toy_inpaint" and model.info.method == "byteedit" and model.info.steps == 4
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {"critic/coherence/loss", "alignment", "quality", "coherence", "perceptual"} <= rows[0].keys()
    assert rows[-1]["val/all/outside"] == 0.0
    straight = load_file(tmp_path / "run" / "model.safetensors")
    checkpoints = tmp_path / "run" / "checkpoints"
    shutil.rmtree(checkpoints / "step-000004")
    (checkpoints / "latest").write_text("step-000002")
    assert main(["byteedit", "--config", str(config), "--resume"]) == 0
    resumed = load_file(tmp_path / "run" / "model.safetensors")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_two_steps_on_the_tiny_sd_inpainter(tmp_path, rewards):
    config = _config(tmp_path, "sd", rewards, model="builtin/tiny-inpaint", validate_tasks=3)
    data = yaml.safe_load(config.read_text())
    data["data"]["size"] = 32
    config.write_text(yaml.safe_dump(data))
    assert main(["byteedit", "--config", str(config)]) == 0
    model = load_model(tmp_path / "sd" / "model.safetensors")
    assert model.family == "inpaint" and model.info.steps == 4
    rows = [json.loads(line) for line in (tmp_path / "sd" / "metrics.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in rows if "loss" in r)


def test_the_reward_trainer_learns_to_prefer_clean_pictures(tmp_path):
    data = {"output_dir": str(tmp_path / "reward"), "steps": 60, "batch_size": 32, "log_every": 10,
            "validate_every": 60, "checkpoint_every": 60, "data": {"size": 16},
            "optim": {"lr": 3e-3, "warmup_steps": 5}, "reward": {"width": 8, "calibrate_samples": 32,
                                                                "validate_samples": 20}}
    config = tmp_path / "reward.yaml"
    config.write_text(yaml.safe_dump(data))
    assert main(["reward", "--config", str(config)]) == 0
    rows = [json.loads(line) for line in (tmp_path / "reward" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["val/accuracy"] > 0.6  # above chance after 60 steps
    assert QualityReward.load(tmp_path / "reward" / "reward.safetensors").net.offset.item() != 0  # calibrated
