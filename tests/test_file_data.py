"""Training from the user's files: the JSONL formats, their checks, and every trainer reading them."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

from unpaired_edit.core.model_files import load_model, save_model
from unpaired_edit.core.models.tiny import tiny_ip2p
from unpaired_edit.core.models.toy import build_toy
from unpaired_edit.core.toy.datasets import CaptionDataset, EditDataset
from unpaired_edit.training.cli import main
from unpaired_edit.training.config import ConfigError
from unpaired_edit.training.files import FileDataset, load_picture, write_toy_data
from unpaired_edit.training.image_text import build_toy_clip

SIZE = 8


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("files")
    save_model(build_toy(seed=1), root / "toy.safetensors")
    save_model(tiny_ip2p(), root / "ip2p.safetensors")
    build_toy_clip(seed=0, size=SIZE, width=32, layers=1).save(root / "clip")
    for kind in ("captions", "instructions", "pairs"):
        write_toy_data(kind, root / kind, 12, size=SIZE)
        write_toy_data(kind, root / f"{kind}-validation", 4, size=SIZE, split="validation")
    return root


@pytest.mark.parametrize("kind", ["captions", "instructions", "pairs"])
def test_toy_data_reads_back_as_the_generators_items(assets, kind):
    """What toy-data writes is what the generator gives, up to the PNGs' 8-bit rounding."""
    files = FileDataset(assets / kind / f"{kind}.jsonl", kind, (), SIZE)
    toy = CaptionDataset(size=SIZE) if kind == "captions" else EditDataset(size=SIZE, with_target=kind == "pairs")
    assert len(files) == 12
    for i in range(12):
        mine, theirs = files[i], toy[i]
        for key, value in mine.items():
            if torch.is_tensor(value):
                assert value.shape == theirs[key].shape and (value - theirs[key]).abs().max() <= 1 / 127.5
            else:
                assert value == theirs[key], key


def test_pictures_are_resized_on_the_short_side_and_centre_cropped(tmp_path):
    picture = torch.zeros(60, 20, 3, dtype=torch.uint8)
    picture[:15] = picture[45:] = 255  # white bands far outside the middle square that the crop keeps
    Image.fromarray(picture.numpy()).save(tmp_path / "tall.png")
    pixels = load_picture(tmp_path / "tall.png", 10, "here")
    assert pixels.shape == (3, 10, 10) and pixels.max() < -0.9  # only the black middle is left


def _jsonl(folder, rows):
    path = folder / "rows.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("bad, message", [
    ("{not json", r"rows.jsonl:2: not a JSON object"),
    ({"image": "a.png"}, r"rows.jsonl:2: the row has no 'instruction'"),
    ({"image": "missing.png", "instruction": "make it red"}, r"rows.jsonl:2: the picture .*missing.png does not exist"),
    ({"image": "broken.png", "instruction": "make it red"}, r"rows.jsonl:2: the picture .*broken.png cannot be read"),
    ({"image": "a.png", "instruction": 3}, r"rows.jsonl:2: 'instruction' must be non-empty text"),
    ([1, 2], r"rows.jsonl:2: not a JSON object"),
])
def test_a_bad_row_is_refused_naming_file_and_line(tmp_path, bad, message):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 5)
    path = _jsonl(tmp_path, [{"image": "a.png", "instruction": "make it red"}, bad])
    with pytest.raises(ConfigError, match=message):
        FileDataset(path, "instructions", (), SIZE)


def test_reverse_instructions_are_derived_or_the_row_skipped_and_captions_demanded(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    rows = [{"image": "a.png", "instruction": "add a red circle"},
            {"image": "a.png", "instruction": "make it look nicer"},  # no reverse the pack can derive
            {"image": "a.png", "instruction": "make it look nicer", "reverse_instruction": "make it plain"}]
    rows[0]["caption"] = "a grey picture"  # an optional field in one row only: items keep one set of keys
    data = FileDataset(_jsonl(tmp_path, rows), "instructions", ("reverse",), SIZE)
    assert data.skipped == 1 and [data[i]["reverse"] for i in range(2)] == ["remove the red circle", "make it plain"]
    assert data[0].keys() == data[1].keys() == {"source", "instruction", "reverse"}
    with pytest.raises(ConfigError, match=r"rows.jsonl:3: this method needs 'caption' in every row"):
        FileDataset(_jsonl(tmp_path, rows), "instructions", ("reverse", "source_caption"), SIZE)
    with pytest.raises(ConfigError, match="none of its 1 rows can be used"):
        FileDataset(_jsonl(tmp_path, rows[1:2]), "instructions", ("reverse",), SIZE)


def test_a_folder_of_pictures_with_captions(tmp_path):
    for name, colour in (("a", "red"), ("b", "blue")):
        Image.new("RGB", (12, 9), colour).save(tmp_path / f"{name}.png")
        (tmp_path / f"{name}.txt").write_text(f"a {colour} picture\n")
    data = FileDataset(tmp_path, "captions", (), SIZE)
    assert [data[i]["caption"] for i in range(2)] == ["a red picture", "a blue picture"]
    assert data[0]["image"].shape == (3, SIZE, SIZE) and data[0]["image"][0].min() > 0.99
    (tmp_path / "b.txt").unlink()
    with pytest.raises(ConfigError, match=r"b.png: no caption file b.txt"):
        FileDataset(tmp_path, "captions", (), SIZE)


def _config(tmp_path, assets, method, source, model=None, **extra):
    section = {"validate_edits": 7, "validate_steps": 2} if method not in ("t2i", "clip") else {}
    section |= {"t2i": {"validate_samples": 2, "validate_steps": 2}, "clip": {}, "supervised": {},
                "uip2p": {"clip": str(assets / "clip")},
                "loc": {"width": 32, "blocks": 2, "heads": 2, "encoder_size": SIZE},
                "byg": {"lora_rank": 4, "rollout_steps": 2, "identity_warmup": 1}}[method]
    data = {"output_dir": str(tmp_path / method), "steps": 2, "batch_size": 3, "log_every": 1, "validate_every": 100,
            "optim": {"warmup_steps": 2}, "data": {"size": SIZE, "source": source,
                                                   "path": str(assets / source / f"{source}.jsonl")},
            method: section, **extra}
    if model:
        data["model"] = str(assets / model)
    path = tmp_path / f"{method}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize("method, source, model", [
    ("t2i", "captions", None), ("clip", "captions", None), ("supervised", "pairs", "toy.safetensors"),
    ("uip2p", "instructions", "toy.safetensors"), ("loc", "pairs", "toy.safetensors"),
    ("byg", "instructions", "toy.safetensors"),
])
def test_every_trainer_trains_two_steps_from_files(tmp_path, assets, capsys, method, source, model):
    """...and validates on held-out rows of the same kind (data.validation)."""
    validation = str(assets / f"{source}-validation" / f"{source}.jsonl")
    config = yaml.safe_load(open(_config(tmp_path, assets, method, source, model)))
    config["data"]["validation"] = validation
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    assert main([method, "--config", str(tmp_path / "run.yaml")]) == 0
    printed = capsys.readouterr().out
    assert f"data: 12 rows of {assets / source / f'{source}.jsonl'}" in printed
    assert f"validation: 4 rows of {validation}" in printed
    rows = [json.loads(line) for line in (tmp_path / method / "metrics.jsonl").read_text().splitlines()]
    validated = next(r for r in rows if r["step"] == 2 and "loss" not in r)
    wanted = {"supervised": {"val/all/l1"}, "loc": {"val/all/l1"}, "clip": {"val/retrieval"}}.get(method, set())
    assert set(validated) - {"step"} == wanted  # no oracle for rows of files: only what they can tell
    grid = Image.open(tmp_path / method / "samples" / "step-000002.png")
    # 4 rows x (source, edited[, after]); t2i samples its 2 validate_samples captions, clip shows the 4 pictures
    pictures = {"supervised": 12, "loc": 12, "uip2p": 8, "byg": 8, "t2i": 2, "clip": 4}[method]
    assert grid.size == (8 * SIZE, -(-pictures // 8) * SIZE)  # eight to a row
    written = Path(printed.splitlines()[-1])  # the CLI prints what the trainer wrote
    assert written.parent == tmp_path / method and written.exists()
    if method in ("t2i", "supervised", "uip2p", "byg"):
        assert load_model(written).info.method == method


def test_a_source_the_method_cannot_read_stops_before_training(tmp_path, assets, capsys):
    assert main(["uip2p", "--config", _config(tmp_path, assets, "uip2p", "captions", "toy.safetensors")]) == 2
    assert "'uip2p' reads instructions rows, so 'data.source' must be toy or instructions" in capsys.readouterr().err
    assert not (tmp_path / "uip2p").exists()


def test_a_bad_file_stops_the_cli_before_training(tmp_path, assets, capsys):
    rows = (assets / "pairs" / "pairs.jsonl").read_text().splitlines()
    (tmp_path / "images").symlink_to(assets / "pairs" / "images")
    (tmp_path / "pairs.jsonl").write_text("\n".join(rows[:3] + [json.dumps({**json.loads(rows[0]), "after": "images/none.png"})] + rows[3:]))
    config = yaml.safe_load(open(_config(tmp_path, assets, "supervised", "pairs", "toy.safetensors")))
    config["data"]["path"] = str(tmp_path / "pairs.jsonl")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    assert main(["supervised", "--config", str(tmp_path / "bad.yaml")]) == 2
    assert f"{tmp_path / 'pairs.jsonl'}:4: the picture {tmp_path / 'images' / 'none.png'} does not exist" \
        in capsys.readouterr().err
    assert not (tmp_path / "supervised").exists()


def test_a_run_from_toy_data_files_is_the_run_from_the_generator(tmp_path, assets):
    """Two supervised steps from the generator and from toy-data's files of the same items: the
    same model, but for the PNGs' 8-bit rounding of the pictures, which moves Adam's first,
    sign-like steps by a fraction of the learning rate (1e-3) where a gradient is near 0."""
    files = _config(tmp_path, assets, "supervised", "pairs", "toy.safetensors")
    assert main(["supervised", "--config", files]) == 0
    from_files = load_file(tmp_path / "supervised" / "model.safetensors")
    generator = yaml.safe_load(open(files))
    generator["data"] = {"size": SIZE}
    generator["output_dir"] = str(tmp_path / "generator")
    (tmp_path / "generator.yaml").write_text(yaml.safe_dump(generator))
    assert main(["supervised", "--config", str(tmp_path / "generator.yaml")]) == 0
    from_generator = load_file(tmp_path / "generator" / "model.safetensors")
    start = load_file(assets / "toy.safetensors")
    moved = sum((from_generator[k] - start[k]).abs().sum() for k in start)
    differ = sum((from_generator[k] - from_files[k]).abs().sum() for k in start)
    assert moved > 0 and differ < 0.05 * moved
    bound = 2 * (0.5e-3 + 1e-3)  # two warm-up steps (lr 0.5e-3, 1e-3) in opposite directions, at most
    assert all(torch.allclose(from_generator[k], from_files[k], atol=bound * 1.5) for k in start)


def test_a_config_may_start_from_a_builtin_model(tmp_path):
    from unpaired_edit.training.config import TrainConfig
    from unpaired_edit.training.methods.supervised import Supervised, SupervisedOptions

    for name in ("builtin/toy-base-16", "builtin/toy-base-16 (toy world text-to-image base, not an editor)"):
        config = TrainConfig(output_dir=str(tmp_path), model=name)
        config.check()
        model = Supervised(config, SupervisedOptions()).build_model()
        assert model.family == "toy" and model.info.extra["image_size"] == 16
    assert Supervised(TrainConfig(output_dir=str(tmp_path), model="builtin/tiny-ip2p"),
                      SupervisedOptions()).build_model().family == "ip2p"
    with pytest.raises(ConfigError, match=r"builtin/nothing.*nor is it one of the builtin models: builtin/toy-uip2p-16"):
        TrainConfig(output_dir=str(tmp_path), model="builtin/nothing").check()


# -- real architectures from a user's folder of pictures --------------------------------------------

INSTRUCTIONS = ["add a boat", "make the car bigger", "turn the cat into a dog"]  # the pack derives their reverses


def _own_folder(folder, kind, n=6):
    """What a user brings: PNGs of several sizes (none square) and a JSONL of ``kind`` rows."""
    generator, rows = torch.Generator().manual_seed(0), []
    for i in range(n):
        row = {"instruction": INSTRUCTIONS[i % 3], "caption": f"photo {i}", "edited_caption": f"edited photo {i}"}
        for name in ("before", "after") if kind == "pairs" else ("image",):
            pixels = (torch.rand(20 + 4 * i, 44 - 2 * i, 3, generator=generator) * 255).byte()
            Image.fromarray(pixels.numpy()).save(folder / f"{name}{i}.png")
            row[name] = f"{name}{i}.png"
        if kind == "pairs":
            del row["caption"], row["edited_caption"]
        rows.append(json.dumps(row))
    (folder / f"{kind}.jsonl").write_text("\n".join(rows) + "\n")
    return folder / f"{kind}.jsonl"


@pytest.mark.parametrize("method, kind, model", [
    ("supervised", "pairs", "ip2p"), ("uip2p", "instructions", "ip2p"), ("loc", "pairs", "ip2p"),
    ("byg", "instructions", "flow"),
])
def test_a_real_architecture_trains_from_a_folder_of_pictures_and_the_result_edits(
        tmp_path, assets, models_dir, method, kind, model):
    from unpaired_edit.core.models.tiny import tiny_flow
    from unpaired_edit.nodes.edit import EditImage
    from unpaired_edit.nodes.loaders import LoadEditModel
    from unpaired_edit.nodes.loc import ApplyEditLora, BeforeAfterToLora, LoadLocHypernetwork

    (models_dir / "checkpoints").mkdir()
    save_model(tiny_ip2p() if model == "ip2p" else tiny_flow(), models_dir / "checkpoints" / "base.safetensors")
    jsonl = _own_folder(tmp_path, kind)
    section = {"supervised": {}, "uip2p": {"clip": str(assets / "clip")}, "byg": {"lora_rank": 4, "rollout_steps": 2},
               "loc": {"width": 32, "blocks": 2, "heads": 2, "encoder_size": 16}}[method]
    config = {"output_dir": str(tmp_path / "run"), "model": str(models_dir / "checkpoints" / "base.safetensors"),
              "steps": 2, "batch_size": 2, "validate_every": 100, "optim": {"warmup_steps": 1},
              "data": {"source": kind, "path": str(jsonl), "size": 32},
              method: {"validate_edits": 2, "validate_steps": 2, **section}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    assert main([method, "--config", str(tmp_path / "run.yaml")]) == 0
    picture = torch.rand(1, 28, 36, 3)
    base = LoadEditModel().load("checkpoints/base.safetensors")[0]
    if method == "loc":
        (models_dir / "loc_hypernetworks").mkdir()
        (tmp_path / "run" / "hypernetwork.safetensors").rename(models_dir / "loc_hypernetworks" / "mine.safetensors")
        hypernetwork = LoadLocHypernetwork().load("mine.safetensors")[0]
        lora = BeforeAfterToLora().generate(hypernetwork, picture, picture.flip(2))[0]
        edited = EditImage().edit(ApplyEditLora().apply(base, lora, 1.0)[0], picture, "", 2, 1.0, 1.0, 0)[0]
    else:
        (tmp_path / "run" / "model.safetensors").rename(models_dir / "checkpoints" / "trained.safetensors")
        trained = LoadEditModel().load("checkpoints/trained.safetensors")[0]
        assert trained.family == base.family and trained.info.method == method
        edited = EditImage().edit(trained, picture, INSTRUCTIONS[0], 2, 0.0, 0.0, 0)[0]
    assert edited.shape == picture.shape and torch.isfinite(edited).all()


def test_a_file_that_is_no_jsonl_or_holds_no_rows_is_refused(tmp_path):
    (tmp_path / "rows.jsonl").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ConfigError, match="rows.jsonl is not a text file"):
        FileDataset(tmp_path / "rows.jsonl", "pairs", (), SIZE)
    (tmp_path / "rows.jsonl").write_text("\n\n")
    with pytest.raises(ConfigError, match="rows.jsonl holds no rows"):
        FileDataset(tmp_path / "rows.jsonl", "pairs", (), SIZE)
    with pytest.raises(ConfigError, match="'data.path' points at .*none.jsonl, which does not exist"):
        FileDataset(tmp_path / "none.jsonl", "pairs", (), SIZE)


def test_the_readme_config_for_your_own_pictures_is_valid(tmp_path):
    import re

    from unpaired_edit.training.config import load_config
    from unpaired_edit.training.methods.uip2p import Uip2pOptions

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = re.search(r"```yaml\n(# my_uip2p\.yaml\n.*?)```", readme, re.DOTALL).group(1)
    for folder in ("instruct-pix2pix", "clip-vit-large-patch14"):
        (tmp_path / "models" / folder).mkdir(parents=True)
    (tmp_path / "my_uip2p.yaml").write_text(block.replace("/models/", f"{tmp_path}/models/"))
    config, options = load_config(tmp_path / "my_uip2p.yaml", "uip2p", Uip2pOptions)
    assert config.data.source == "instructions" and config.mixed_precision == "bf16" and options.validate_edits == 14
