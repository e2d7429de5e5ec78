"""The loop's second optimizer (critics) and parameter groups: trained k times per step apart from
the editor, saved and resumed exactly, averaged across DDP processes."""

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from unpaired_edit.training.cli import main
from unpaired_edit.training.config import ConfigError

SCRIPT = Path(__file__).with_name("critic_method.py")  # also run by torchrun, so a file, not a test module
_spec = importlib.util.spec_from_file_location("critic_method", SCRIPT)
critic_method = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(critic_method)
run = critic_method.run

TINY = {"batch_size": 4, "log_every": 1, "validate_every": 100, "optim": {"lr": 1e-3, "warmup_steps": 2},
        "t2i": {"validate_samples": 2, "validate_steps": 2}}


def _config(tmp_path, name, **overrides):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**TINY, "output_dir": str(tmp_path / name), **overrides}))
    return path


def _checkpoint(run_dir, step):
    folder = run_dir / "checkpoints" / f"step-{step:06d}"
    return load_file(folder / "weights.safetensors"), load_file(folder / "optimizer.safetensors"), \
        json.loads((folder / "state.json").read_text())


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]


def test_a_critic_trains_k_times_a_step_and_leaves_the_editor_as_it_was(tmp_path):
    """The editor of a run with a critic (whose loss sends gradient into the editor) ends exactly
    where the plain run's does; the critic took ``updates`` steps per editor step and learnt."""
    main(["t2i", "--config", str(_config(tmp_path, "plain", steps=3))])
    run(_config(tmp_path, "critic", steps=3, checkpoint_every=3), updates=3)
    plain, with_critic = (load_file(tmp_path / n / "model.safetensors") for n in ("plain", "critic"))
    assert all(torch.equal(plain[k], with_critic[k]) for k in plain)
    weights, optimizer, state = _checkpoint(tmp_path / "critic", 3)
    assert optimizer["critic.fake/0.step"].item() == 9
    assert {"editor", "critic.fake"} <= state["optimizers"].keys()
    rows = _rows(tmp_path / "critic")
    losses = [r["critic/fake/loss"] for r in rows]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert [r["critic/fake/lr"] for r in rows] == pytest.approx([5e-3, 1e-2, 1e-2])  # its own rate, warmed up
    assert "critic.fake.weight" in weights and not any(k.startswith("critic") for k in with_critic)


def test_resume_with_a_critic_and_parameter_groups_is_exact(tmp_path):
    optim = {"lr": 1e-3, "warmup_steps": 2, "schedule": "cosine", "group_lr": {"text_encoder.": 3e-4}}
    config = _config(tmp_path, "run", steps=4, checkpoint_every=2, ema_decay=0.9, optim=optim)
    run(config, updates=2)
    straight_model = load_file(tmp_path / "run" / "model.safetensors")
    straight = _checkpoint(tmp_path / "run", 4)[0]
    straight_rows = _rows(tmp_path / "run")
    checkpoints = tmp_path / "run" / "checkpoints"
    shutil.rmtree(checkpoints / "step-000004")
    (checkpoints / "latest").write_text("step-000002")
    run(config, updates=2, resume=True)
    resumed_model = load_file(tmp_path / "run" / "model.safetensors")
    resumed = _checkpoint(tmp_path / "run", 4)[0]
    assert all(torch.equal(straight_model[k], resumed_model[k]) for k in straight_model)
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)  # model, EMA and critic
    assert _losses_and_rates(tmp_path / "run") == _losses_and_rates(tmp_path / "run", straight_rows)


def _losses_and_rates(run_dir, rows=None):
    """Each step's logged losses and rates (all but the speed)."""
    return [{k: v for k, v in r.items() if k != "steps_per_s"} for r in rows or _rows(run_dir)]


def test_parameter_groups_train_at_their_own_rates(tmp_path):
    optim = {"lr": 1e-3, "warmup_steps": 2, "group_lr": {"text_encoder.": 1e-4, "unet.conv_in.": 5e-4}}
    main(["t2i", "--config", str(_config(tmp_path, "groups", steps=2, checkpoint_every=2, optim=optim))])
    rows = _rows(tmp_path / "groups")
    assert [r["lr"] for r in rows] == pytest.approx([5e-4, 1e-3])
    assert [r["lr/text_encoder."] for r in rows] == pytest.approx([5e-5, 1e-4])
    assert [r["lr/unet.conv_in."] for r in rows] == pytest.approx([2.5e-4, 5e-4])
    groups = _checkpoint(tmp_path / "groups", 2)[2]["optimizers"]["editor"]["param_groups"]
    assert [g["name"] for g in groups] == ["", "text_encoder.", "unet.conv_in."]
    assert len(groups[2]["params"]) == 2  # conv_in's weight and bias


@pytest.mark.parametrize("group_lr, message", [
    ({"txt_encoder.": 1e-4}, "'optim.group_lr' names 'txt_encoder.', which no trainable parameter"),
    ({"unet.": 0}, "'optim.group_lr' maps parameter-name prefixes to rates above 0"),
    ({"unet.": "fast"}, "'optim.group_lr.unet.' must be a number"),
])
def test_bad_parameter_groups_are_refused_naming_the_key(tmp_path, group_lr, message):
    path = _config(tmp_path, "bad", steps=1, optim={"group_lr": group_lr})
    with pytest.raises(ConfigError, match=message):
        run(path)


def test_two_process_ddp_averages_the_critic_as_one_process_with_the_whole_batch(tmp_path):
    one = _config(tmp_path, "one", steps=2, batch_size=4, checkpoint_every=2)
    two = _config(tmp_path, "two", steps=2, batch_size=2, checkpoint_every=2)
    run(one)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                           "127.0.0.1", "--master_port", port, str(SCRIPT), str(two)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = _checkpoint(tmp_path / "one", 2)[0], _checkpoint(tmp_path / "two", 2)[0]
    critic = [k for k in a if k.startswith("critic.")]
    assert critic and all(torch.allclose(a[k], b[k], atol=1e-5) for k in critic)
    assert all(torch.allclose(a[k], b[k], atol=2e-4) for k in a)  # the editor, as test_training's DDP test
