"""Progress and stop hooks, seeding and guidance batching of the samplers."""

import pytest
import torch

from unpaired_edit.core.editing import edit_pixels
from unpaired_edit.core.models.tiny import tiny_flow, tiny_ip2p
from unpaired_edit.core.samplers import EditSettings, Hooks, Interrupted


@pytest.fixture(scope="module", params=["ip2p", "flow", "flow-cfg"])
def model(request):
    return {"ip2p": tiny_ip2p, "flow": tiny_flow,
            "flow-cfg": lambda: tiny_flow(guidance_embeds=False)}[request.param]()


def test_progress_reports_every_step_with_a_preview(model, source_image):
    seen = []
    hooks = Hooks(progress=lambda step, total, preview: seen.append((step, total, preview.shape)))
    edit_pixels(model, source_image * 2 - 1, "make it red", EditSettings(4, 3.0, 1.5, 0), hooks)
    assert [(s, t) for s, t, _ in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert all(shape[1] == 4 for _, _, shape in seen)  # previews are latents


def test_should_stop_interrupts_between_steps(model, source_image):
    done = []
    hooks = Hooks(progress=lambda s, t, p: done.append(s), should_stop=lambda: len(done) == 2)
    with pytest.raises(Interrupted):
        edit_pixels(model, source_image * 2 - 1, "make it red", EditSettings(6, 3.0, 1.5, 0), hooks)
    assert done == [1, 2]


def test_guidance_branches_share_one_model_call(model, source_image):
    calls = []
    hook = model.denoiser.register_forward_pre_hook(
        lambda m, args, kw: calls.append((args[0] if args else kw["hidden_states"]).shape[0]), with_kwargs=True)
    try:
        edit_pixels(model, source_image * 2 - 1, "make it red", EditSettings(3, 3.0, 1.5, 0))
    finally:
        hook.remove()
    branches = 3 if model.family == "ip2p" else (1 if model.guidance_embedded else 2)
    assert calls == [branches] * 3


def test_same_seed_same_image_other_seed_other_image(model, source_image):
    run = lambda seed: edit_pixels(model, source_image * 2 - 1, "make it red", EditSettings(3, 3.0, 1.5, seed))
    assert torch.equal(run(5), run(5))
    assert not torch.equal(run(5), run(6))
