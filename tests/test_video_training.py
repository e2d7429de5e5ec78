"""Training on clips: the t2v toy base from an image base, ByG on clips from it (unpaired, 5-D
latents), exact resume, and the configs that do not fit clips."""

import json

import pytest
import torch
import yaml
from safetensors.torch import load_file

from unpaired_edit.core.model_files import load_model, save_model
from unpaired_edit.core.models.toy import build_toy
from unpaired_edit.core.models.toy_video import ToyVideoModel
from unpaired_edit.training.cli import main

TINY = {"batch_size": 2, "log_every": 1, "validate_every": 100, "ema_decay": 0.9, "optim": {"warmup_steps": 1},
        "data": {"size": 16, "frames": 4}}


def _config(tmp_path, name, model, method_options, **overrides):
    data = {**TINY, "output_dir": str(tmp_path / name), "model": str(model), **method_options, **overrides}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


T2V = {"t2v": {"validate_samples": 2, "validate_steps": 2}}
BYG = {"byg": {"lora_rank": 4, "rollout_steps": 2, "identity_warmup": 1, "identity_prob": 0.25,
               "validate_edits": 3, "validate_steps": 2}}


@pytest.fixture(scope="module")
def image_base(tmp_path_factory):
    return save_model(build_toy(seed=1), tmp_path_factory.mktemp("base") / "toy.safetensors")


@pytest.fixture(scope="module")
def video_base(tmp_path_factory, image_base):
    out = tmp_path_factory.mktemp("t2v")
    assert main(["t2v", "--config", _config(out, "run", image_base, T2V, steps=2)]) == 0
    return out / "run" / "model.safetensors"


def test_two_t2v_steps_turn_an_image_base_into_a_video_model(video_base, image_base):
    model = load_model(video_base)
    assert isinstance(model, ToyVideoModel) and model.info.method == "t2v"
    rows = [json.loads(line) for line in (video_base.parent / "metrics.jsonl").read_text().splitlines()]
    assert "val/frame_caption_accuracy" in rows[-1]
    trained = load_file(video_base)
    assert any(".temp_" in k and trained[k].abs().sum() > 0 for k in trained if "proj_out" in k)  # temporal layers learnt


def test_two_byg_steps_on_clips_write_a_merged_video_editor(tmp_path, video_base):
    assert main(["byg", "--config", _config(tmp_path, "run", video_base, BYG, steps=2)]) == 0
    model = load_model(tmp_path / "run" / "model.safetensors")
    assert isinstance(model, ToyVideoModel) and model.info.method == "byg"
    assert not any("lora" in k for k in load_file(tmp_path / "run" / "model.safetensors"))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert "cycle" in rows[1] and "val/all/flicker" in rows[-1] and "val/all/strict" in rows[-1]


def test_byg_on_clips_resumes_exactly(tmp_path, video_base):
    main(["byg", "--config", _config(tmp_path, "straight", video_base, BYG, steps=3, checkpoint_every=2)])
    main(["byg", "--config", _config(tmp_path, "split", video_base, BYG, steps=2, checkpoint_every=2)])
    main(["byg", "--config", _config(tmp_path, "split", video_base, BYG, steps=3, checkpoint_every=2), "--resume"])
    straight = load_file(tmp_path / "straight" / "model.safetensors")
    split = load_file(tmp_path / "split" / "model.safetensors")
    assert all(torch.equal(straight[k], split[k]) for k in straight)


def test_models_and_data_that_do_not_fit_are_refused(tmp_path, image_base, video_base, capsys):
    assert main(["byg", "--config", _config(tmp_path, "a", video_base, BYG, steps=1, data={"size": 16})]) == 2
    assert "it trains on clips" in capsys.readouterr().err
    assert main(["byg", "--config", _config(tmp_path, "b", image_base, BYG, steps=1)]) == 2
    assert "model of pictures" in capsys.readouterr().err
    assert main(["t2v", "--config", _config(tmp_path, "c", image_base, T2V, steps=1, data={"size": 16})]) == 2
    assert "set data.frames" in capsys.readouterr().err
    assert main(["t2v", "--config", _config(tmp_path, "d", image_base, T2V, steps=1,
                                            data={"size": 16, "frames": 1})]) == 2
    assert "data.frames" in capsys.readouterr().err


def test_two_byg_steps_on_a_tiny_wan_editor(tmp_path):
    from unpaired_edit.core.models.tiny import tiny_video
    from unpaired_edit.core.models.video import VideoModel

    path = save_model(tiny_video(seed=0), tmp_path / "wan.safetensors")
    byg = {"byg": {**BYG["byg"], "validate_edits": 2}}
    assert main(["byg", "--config", _config(tmp_path, "run", path, byg, steps=2,
                                            data={"size": 16, "frames": 5})]) == 0
    model = load_model(tmp_path / "run" / "model.safetensors")
    assert isinstance(model, VideoModel) and model.info.method == "byg"
    trained, start = load_file(tmp_path / "run" / "model.safetensors"), load_file(path)
    assert not any("lora" in k for k in trained)
    assert any(not torch.equal(trained[k], start[k]) for k in start if k.startswith("transformer."))
