"""Speed of our ip2p edit against diffusers' StableDiffusionInstructPix2PixPipeline, and of a
cycle edit against a single edit, on the same mid-size random model in one process.

    python benchmarks/ip2p_speed.py [--size 256] [--steps 20] [--rounds 5]

Prints seconds per run (median over interleaved rounds) and the ratios; goals: ours/diffusers <= 1.0, cycle/edit <= 2.0.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from diffusers import StableDiffusionInstructPix2PixPipeline  # noqa: E402

from unpaired_edit.core.editing import cycle_edit, edit_pixels  # noqa: E402
from unpaired_edit.core.models.tiny import tiny_ip2p  # noqa: E402
from unpaired_edit.core.samplers import EditSettings  # noqa: E402

from timing import median_seconds  # noqa: E402  (this folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--width", type=int, default=64, help="UNet base channels")
    args = parser.parse_args()

    model = tiny_ip2p(width=args.width, vae_channels=(32, 64, 64, 64))  # VAE factor 8, like SD
    params = sum(p.numel() for p in model.unet.parameters()) / 1e6
    image = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    settings = EditSettings(steps=args.steps, guidance=7.5, image_guidance=1.5, seed=0)
    prompt = "turn the red circle into a blue square"
    pipe = StableDiffusionInstructPix2PixPipeline(
        vae=model.vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer, unet=model.unet,
        scheduler=model.scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)

    def reference():
        with torch.no_grad():
            pipe(prompt, image=image, num_inference_steps=args.steps, guidance_scale=7.5, image_guidance_scale=1.5,
                 generator=torch.Generator().manual_seed(0), output_type="pt")

    def ours():
        model.text_cache.clear()  # no credit for caching across runs: encode the prompt each time
        edit_pixels(model, image * 2 - 1, prompt, settings)

    def cycle():
        model.text_cache.clear()
        cycle_edit(model, image * 2 - 1, prompt, None, settings)

    t_ref, t_ours, t_cycle = median_seconds([reference, ours, cycle], args.rounds)
    print(f"model: UNet {params:.1f} M parameters, {args.size}x{args.size}, {args.steps} steps, "
          f"torch threads {torch.get_num_threads()}")
    print(f"diffusers pipeline : {t_ref:.3f} s")
    print(f"ours (edit)        : {t_ours:.3f} s   ratio ours/diffusers = {t_ours / t_ref:.3f}  (goal <= 1.0)")
    print(f"ours (cycle edit)  : {t_cycle:.3f} s   ratio cycle/edit     = {t_cycle / t_ours:.3f}  (goal <= 2.0)")


if __name__ == "__main__":
    main()
