"""The toy CLIP and the clip trainer: differentiable picture embeddings, save/load, training."""

import random

import pytest
import torch
import yaml

from unpaired_edit.core.errors import EditError
from unpaired_edit.core.toy.render import render
from unpaired_edit.core.toy.world import caption, sample_split
from unpaired_edit.training.cli import main
from unpaired_edit.training.image_text import ImageTextEncoder, build_toy_clip


def test_embeddings_are_unit_length_and_reach_the_pixels():
    clip = build_toy_clip(seed=0, size=16)
    pixels = (torch.rand(3, 3, 32, 24) * 2 - 1).requires_grad_()  # any size: resized to 16x16
    images = clip.images(pixels)
    texts = clip.texts(["a red circle on a blue background", "", "a green square"])
    assert images.shape == texts.shape == (3, 64)
    assert torch.allclose(images.norm(dim=-1), torch.ones(3)) and torch.allclose(texts.norm(dim=-1), torch.ones(3))
    (images @ texts.T).trace().backward()
    assert pixels.grad is not None and pixels.grad.abs().sum() > 0


def test_save_and_load_give_the_same_embeddings(tmp_path):
    clip = build_toy_clip(seed=1)
    folder = clip.save(tmp_path / "clip")
    loaded = ImageTextEncoder.load(folder)
    pixels = torch.rand(2, 3, 16, 16) * 2 - 1
    words = ["a red circle on a blue background", "a small green square at the top left"]
    with torch.no_grad():
        assert torch.allclose(loaded.images(pixels), clip.images(pixels), atol=1e-6)
        assert torch.allclose(loaded.texts(words), clip.texts(words), atol=1e-6)
    assert not any(p.requires_grad for p in loaded.model.parameters())  # a loss reads it, never trains it


def test_a_folder_without_a_clip_is_refused_clearly(tmp_path):
    with pytest.raises(EditError, match="is not a CLIP model folder"):
        ImageTextEncoder.load(tmp_path)


def test_the_clip_trainer_learns_to_match_pictures_and_captions(tmp_path):
    config = {"output_dir": str(tmp_path / "run"), "steps": 60, "batch_size": 16, "log_every": 10,
              "validate_every": 60, "optim": {"lr": 2e-3, "warmup_steps": 5}, "clip": {"validate_samples": 16}}
    path = tmp_path / "clip.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["clip", "--config", str(path)]) == 0
    rows = [yaml.safe_load(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert losses[-1] < losses[0] * 0.8
    clip = ImageTextEncoder.load(tmp_path / "run" / "clip")
    scenes = [sample_split(random.Random(i), "test") for i in range(8)]
    with torch.no_grad():
        similarity = clip.images(torch.stack([render(s, 16) for s in scenes])) @ clip.texts([caption(s) for s in scenes]).T
    assert similarity.diagonal().mean() > similarity.mean()  # each picture is nearer its own caption
