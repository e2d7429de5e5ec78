import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def source_image() -> torch.Tensor:
    """A smooth 32x32 RGB test picture in 0..1, [1,3,H,W]."""
    y, x = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    return torch.stack([x, y, (x * y) ** 0.5]).unsqueeze(0)


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    """An empty models folder that the nodes list and read (outside ComfyUI)."""
    monkeypatch.setenv("UNPAIRED_EDIT_MODELS_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def broken_package(tmp_path):
    """``make(name, body)``: a folder for PYTHONPATH with a package ``name`` whose import runs
    ``body``, and the dist-info that makes other libraries treat it as installed (transformers
    and diffusers import torchaudio only when its metadata says it is there)."""
    root = tmp_path / "site"

    def make(name: str, body: str):
        (root / name).mkdir(parents=True)
        (root / name / "__init__.py").write_text(body + "\n")
        info = root / f"{name}-99.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 99.0\n")
        return root

    return make
