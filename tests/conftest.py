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
