"""The shared training loop on the toy model: checkpoints, exact resume, DDP, config errors."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from unpaired_edit.core.containers import read_metadata
from unpaired_edit.core.model_files import load_model
from unpaired_edit.training.cli import main
from unpaired_edit.training.config import ConfigError, load_config
from unpaired_edit.training.files import write_toy_data
from unpaired_edit.training.methods import METHODS
from unpaired_edit.training.methods.t2i import T2IOptions

TINY = {"batch_size": 4, "log_every": 1, "optim": {"lr": 1e-3, "warmup_steps": 2},
        "t2i": {"validate_samples": 2, "validate_steps": 2}}


def _config(tmp_path, name, **overrides):
    data = {**TINY, "output_dir": str(tmp_path / name), **overrides}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _weights(run_dir):
    return load_file(run_dir / "model.safetensors")


def test_two_steps_write_a_loadable_model_checkpoints_and_logs(tmp_path):
    assert main(["t2i", "--config", str(_config(tmp_path, "run", steps=2, checkpoint_every=1))]) == 0
    run = tmp_path / "run"
    model = load_model(run / "model.safetensors")
    assert model.family == "toy" and model.info.method == "t2i" and read_metadata(run / "model.safetensors", "t")
    assert (run / "checkpoints" / "latest").read_text() == "step-000002"
    assert sorted(p.name for p in (run / "checkpoints").glob("step-*")) == ["step-000001", "step-000002"]
    assert (run / "samples" / "step-000002.png").is_file()
    rows = [yaml.safe_load(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2]
    assert not list(run.rglob("*.partial")) and not list(run.rglob(".*tmp"))


@pytest.fixture(scope="module")
def caption_files(tmp_path_factory):
    """toy-data's caption files: the data config of a run that reads them."""
    path = write_toy_data("captions", tmp_path_factory.mktemp("captions"), 10)
    return {"source": "captions", "path": str(path)}


@pytest.fixture(params=["toy", "files"])
def data(request, caption_files):
    """The data section of a run: the generator, or the user's files (here toy-data's)."""
    return {} if request.param == "toy" else caption_files


def test_resume_is_exact(tmp_path, data):
    main(["t2i", "--config", str(_config(tmp_path, "straight", steps=4, checkpoint_every=2, ema_decay=0.9, data=data))])
    main(["t2i", "--config", str(_config(tmp_path, "split", steps=2, checkpoint_every=2, ema_decay=0.9, data=data))])
    main(["t2i", "--config", str(_config(tmp_path, "split", steps=4, checkpoint_every=2, ema_decay=0.9, data=data)),
          "--resume"])
    straight, split = _weights(tmp_path / "straight"), _weights(tmp_path / "split")
    assert straight.keys() == split.keys()
    assert all(torch.equal(straight[k], split[k]) for k in straight)
    # and the run did learn something: the weights moved from their start
    untrained = _weights_of_checkpoint(tmp_path / "split" / "checkpoints" / "step-000002")
    moved = [k for k in untrained if k.startswith("model.unet.") and not torch.equal(untrained[k], straight[k[6:]])]
    assert moved


def test_data_workers_feed_the_same_batches_as_the_training_process(tmp_path, data):
    main(["t2i", "--config", str(_config(tmp_path, "here", steps=3, validate_every=100, data=data))])
    main(["t2i", "--config", str(_config(tmp_path, "ahead", steps=3, validate_every=100, data={**data, "workers": 2}))])
    here, ahead = _weights(tmp_path / "here"), _weights(tmp_path / "ahead")
    assert all(torch.equal(here[k], ahead[k]) for k in here)


def _weights_of_checkpoint(folder):
    return load_file(folder / "weights.safetensors")


def test_two_process_ddp_matches_one_process_with_the_whole_batch(tmp_path, data):
    """torchrun with 2 CPU processes (gloo) x batch 2 == 1 process x batch 4, step for step."""
    one = _config(tmp_path, "one", steps=2, batch_size=4, validate_every=100, data=data)
    two = _config(tmp_path, "two", steps=2, batch_size=2, validate_every=100, data=data)
    main(["t2i", "--config", str(one)])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                           "127.0.0.1", "--master_port", port, "-m", "unpaired_edit.training", "t2i", "--config",
                           str(two)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    # Adam's first steps are about lr * sign(gradient): where a gradient is ~0, the order of the
    # float reduction can flip a sign, so single weights may differ by a fraction of lr (1e-3).
    assert all(torch.allclose(a[k], b[k], atol=2e-4) for k in a)
    assert sum((a[k] - b[k]).abs().sum() for k in a) / sum(a[k].numel() for k in a) < 1e-6
    losses = [yaml.safe_load(line)["loss"] for name in ("one", "two")
              for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines() if "loss" in line]
    assert losses[:2] == pytest.approx(losses[2:], abs=1e-5)  # the logged loss is over both processes' samples


@pytest.mark.parametrize("change, message", [
    ({"optim": {"lrr": 0.1}}, "Unknown key 'optim.lrr'"),
    ({"batch_size": "lots"}, "'batch_size' must be int"),
    ({"steps": 0}, "'steps' must be at least 1"),
    ({"model": "/nowhere/model.safetensors"}, "'model' points at '/nowhere/model.safetensors'"),
    ({"mixed_precision": "fp8"}, "'mixed_precision' must be"),
    ({"data": {"workers": -1}}, "'data.workers' must be 0 or more"),
    ({"t2i": {"caption_dropout": "half"}}, "'t2i.caption_dropout' must be a number"),
    ({"supervised": {}}, "Unknown key 'supervised'"),
    ({"data": {"source": "folder"}}, "'data.source' must be toy, captions, instructions, pairs, not 'folder'"),
    ({"data": {"source": "captions"}}, "'data.source: captions' needs 'data.path'"),
])
def test_bad_configs_fail_before_training_naming_the_key(tmp_path, change, message):
    path = _config(tmp_path, "bad", **change)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config(path, "t2i", T2IOptions)
    assert main(["t2i", "--config", str(path)]) == 2
    assert not (tmp_path / "bad").exists()  # nothing was started


def test_missing_output_dir_and_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 2\n")
    with pytest.raises(ConfigError, match="'output_dir' is required"):
        load_config(path, "t2i", T2IOptions)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.yaml", "t2i", T2IOptions)
    assert "t2i" in METHODS


def test_a_killed_run_resumes_to_the_same_weights(tmp_path):
    """SIGKILL mid-run (possibly mid-checkpoint), resume, and end where an unbroken run ends."""
    settings = dict(steps=24, checkpoint_every=2, validate_every=100)
    main(["t2i", "--config", str(_config(tmp_path, "unbroken", **settings))])
    config = _config(tmp_path, "killed", **settings)
    command = [sys.executable, "-m", "unpaired_edit.training", "t2i", "--config", str(config)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = tmp_path / "killed" / "checkpoints"
    deadline = time.monotonic() + 120
    while not (checkpoints / "step-000004").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert not (tmp_path / "killed" / "model.safetensors").exists(), "the run finished before it was killed"
    assert main(["t2i", "--config", str(config), "--resume"]) == 0
    a, b = _weights(tmp_path / "unbroken"), _weights(tmp_path / "killed")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_mixed_precision_and_gradient_checkpointing_switches_run(tmp_path):
    """The GPU switches, on the CPU path: bf16 autocast and checkpointed UNet blocks."""
    config = _config(tmp_path, "switches", steps=2, mixed_precision="bf16", gradient_checkpointing=True,
                     grad_accum=2)
    # Its own process: accelerate fixes the precision once per process.
    done = subprocess.run([sys.executable, "-m", "unpaired_edit.training", "t2i", "--config", str(config)],
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    weights = _weights(tmp_path / "switches")
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in weights.values())


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "training" / "configs").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_shipped_configs_load(path, tmp_path, monkeypatch):
    """Run from a folder where the runs the configs start from have been trained (bundled files
    stand in for them): the base, the default editor, the toy inpainter, ByteEdit's phases and the video base."""
    monkeypatch.chdir(tmp_path)
    stand_ins = {"toy-base-16": "toy-base-16", "toy-uip2p-16": "toy-uip2p-16", "toy-inpaint-16": "toy-inpaint-16",
                 "toy-byteedit-16-t20": "toy-inpaint-16", "toy-byteedit-16-t8": "toy-inpaint-16",
                 "toy-t2v-16": "toy-base-16"}
    for name, bundled in stand_ins.items():
        (tmp_path / "runs" / name).mkdir(parents=True)
        shutil.copy(Path(__file__).parents[1] / "weights" / f"{bundled}.safetensors",
                    tmp_path / "runs" / name / "model.safetensors")
    name = path.stem.split("_")[0]
    config, options = load_config(path, name, METHODS[name].Options)
    assert config.output_dir.startswith("runs/") and isinstance(options, METHODS[name].Options)


def test_learning_rate_schedules_warm_up_then_decay_to_zero():
    from unpaired_edit.training.config import OptimConfig, TrainConfig
    from unpaired_edit.training.optim import lr_factor

    def factors(schedule):
        config = TrainConfig(output_dir="x", steps=10, optim=OptimConfig(warmup_steps=4, schedule=schedule))
        return [lr_factor(config, s) for s in range(10)]

    assert factors("constant") == [0.25, 0.5, 0.75] + [1.0] * 7
    for schedule in ("cosine", "linear"):
        f = factors(schedule)
        assert f[:4] == [0.25, 0.5, 0.75, 1.0] and all(a > b for a, b in zip(f[3:], f[4:])) and 0 < f[-1] < 0.2
    assert factors("linear")[-1] == pytest.approx(1 / 7)
    assert factors("cosine")[-1] < factors("linear")[-1]  # cosine ends flatter


def test_resume_is_exact_under_a_decaying_schedule(tmp_path):
    """A cosine run resumed from its step-2 checkpoint ends with the weights of the run that went on."""
    optim = {"lr": 1e-3, "warmup_steps": 2, "schedule": "cosine"}
    config = _config(tmp_path, "run", steps=4, checkpoint_every=2, optim=optim)
    main(["t2i", "--config", str(config)])
    straight = _weights(tmp_path / "run")
    checkpoints = tmp_path / "run" / "checkpoints"
    shutil.rmtree(checkpoints / "step-000004")
    (checkpoints / "latest").write_text("step-000002")
    main(["t2i", "--config", str(config), "--resume"])
    resumed = _weights(tmp_path / "run")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    lrs = [yaml.safe_load(line)["lr"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
           if '"lr"' in line]
    assert lrs == pytest.approx([5e-4, 1e-3, 7.5e-4, 2.5e-4])  # warm-up, then cosine: the rate each step used
