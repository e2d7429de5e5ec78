"""What an edit LoRA costs at sampling time, and what making one costs, on one mid-size random
ip2p model in one process.

    python benchmarks/loc_speed.py [--size 256] [--steps 20] [--rounds 5]

Times (median over interleaved rounds) an edit with no LoRA, with a generated LoRA merged into
the weights (what Apply Edit LoRA does), and with the same LoRA applied by forward hooks (the
training path), and the hypernetwork turning a before/after pair into the LoRA.
Goal: merged/none <= 1.05.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from unpaired_edit.core.editing import edit_pixels  # noqa: E402
from unpaired_edit.core.generated_lora import ATTENTION_PROJECTIONS, applied, target_layers  # noqa: E402
from unpaired_edit.core.loc import LocConfig, LocHypernetwork  # noqa: E402
from unpaired_edit.core.models.tiny import tiny_ip2p  # noqa: E402
from unpaired_edit.core.samplers import EditSettings  # noqa: E402

from timing import median_seconds  # noqa: E402  (this folder)

PROMPT = "turn the red circle into a blue square"  # the same text in all three, so only the LoRA differs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--width", type=int, default=64, help="UNet base channels")
    args = parser.parse_args()

    model = tiny_ip2p(width=args.width, vae_channels=(32, 64, 64, 64))  # VAE factor 8, like SD
    params = sum(p.numel() for p in model.unet.parameters()) / 1e6
    targets = {name: [layer.in_features, layer.out_features]
               for name, layer in target_layers(model.denoiser, ATTENTION_PROJECTIONS).items()}
    hypernetwork = LocHypernetwork(LocConfig(targets)).eval()
    with torch.no_grad():
        for head in hypernetwork.up:  # a trained network's up heads are not zero
            head.bias.normal_(0, 0.02)
    g = torch.Generator().manual_seed(0)
    image, before, after = (torch.rand(1, 3, args.size, args.size, generator=g) * 2 - 1 for _ in range(3))
    with torch.no_grad():
        delta = hypernetwork(before, after)
    with_lora = model.with_edit_lora(delta, 1.0)
    settings = EditSettings(steps=args.steps, guidance=1.0, image_guidance=1.5, seed=0)

    def plain():
        edit_pixels(model, image, PROMPT, settings)

    def merged():
        edit_pixels(with_lora, image, PROMPT, settings)

    def hooked():
        with applied(model.denoiser, delta):
            edit_pixels(model, image, PROMPT, settings)

    def generate():
        with torch.no_grad():
            hypernetwork(before, after)

    t_plain, t_merged, t_hooked, t_generate = median_seconds([plain, merged, hooked, generate], args.rounds)
    hyper_params = sum(p.numel() for p in hypernetwork.parameters()) / 1e6
    print(f"model: UNet {params:.1f} M parameters, {len(targets)} target layers, rank {hypernetwork.config.rank}, "
          f"{args.size}x{args.size}, {args.steps} steps, torch threads {torch.get_num_threads()}")
    print(f"edit, no LoRA       : {t_plain:.3f} s")
    print(f"edit, merged LoRA   : {t_merged:.3f} s   ratio merged/none = {t_merged / t_plain:.3f}  (goal <= 1.05)")
    print(f"edit, hooked LoRA   : {t_hooked:.3f} s   ratio hooked/none = {t_hooked / t_plain:.3f}")
    print(f"hypernetwork ({hyper_params:.1f} M parameters): {t_generate * 1000:.1f} ms per pair   "
          f"ratio to one edit = {t_generate / t_plain:.3f}")


if __name__ == "__main__":
    main()
