"""Speed of our crop-and-stitch inpainting against diffusers' full-frame StableDiffusionInpaintPipeline
on a large picture with a small mask, on the same mid-size random model in one process.

    python benchmarks/inpaint_speed.py [--size 1024] [--crop 512] [--mask-share 0.1] [--steps 3] [--rounds 3]

Prints seconds per run (median over interleaved rounds), the ratio full-frame/crop and how far each
output strays from the input where it should keep it; goals: full-frame/crop >= 4, ours outside the
blend = 0 (diffusers' is shown for contrast: it re-decodes the whole frame). The defaults take some
four minutes on an idle 2-core CPU, where a full-frame step at 1024 costs ~18 s (mostly the UNet's
self-attention over 128x128 latents); --steps 10 --rounds 3 takes about 14.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from diffusers import StableDiffusionInpaintPipeline  # noqa: E402

from unpaired_edit.core.models.tiny import tiny_inpaint  # noqa: E402
from unpaired_edit.core.regions import working_size  # noqa: E402
from unpaired_edit.core.repaint import Area, composite, plan, repaint  # noqa: E402
from unpaired_edit.core.samplers import EditSettings  # noqa: E402

from timing import median_seconds  # noqa: E402  (this folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--crop", type=int, default=512, help="side the crops are sampled at (Area size)")
    parser.add_argument("--mask-share", type=float, default=0.1, help="masked share of the picture (one square)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--width", type=int, default=64, help="UNet base channels")
    args = parser.parse_args()

    model = tiny_inpaint(width=args.width, vae_channels=(32, 64, 64, 64))  # VAE factor 8, like SD
    params = sum(p.numel() for p in model.unet.parameters()) / 1e6
    image = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    side = round(args.size * args.mask_share ** 0.5)
    # Off-centre, so the crop is not simply the frame's middle.
    top, left = args.size // 5, min(args.size // 2, args.size - side)
    mask = torch.zeros(1, args.size, args.size)
    mask[:, top:top + side, left:left + side] = 1
    settings = EditSettings(steps=args.steps, guidance=7.5, seed=0)
    prompt = "a red circle on a blue square"
    pipe = StableDiffusionInpaintPipeline(
        vae=model.vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer, unet=model.unet,
        scheduler=type(model.scheduler).from_config(model.scheduler.config), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    outputs = {}

    def reference():
        with torch.no_grad():
            outputs["reference"] = pipe(
                prompt, image=image, mask_image=mask[:, None], height=args.size, width=args.size,
                num_inference_steps=args.steps, guidance_scale=7.5, generator=torch.Generator().manual_seed(0),
                output_type="pt").images

    def ours():
        model.text_cache.clear()  # no credit for caching across runs: encode the prompt each time
        todo = plan(mask, Area(size=args.crop))
        painted = repaint(model, image * 2 - 1, todo, prompt, settings)
        painted = [(i, box, (crop / 2 + 0.5).clamp(0, 1)) for i, box, crop in painted]  # as nodes/inpaint.py
        outputs["ours"], outputs["plan"] = composite(image, painted, todo.weights), todo

    t_ref, t_ours = median_seconds([reference, ours], args.rounds)
    todo = outputs["plan"]

    def strayed(out: torch.Tensor, kept: torch.Tensor) -> float:
        """The largest change from the input (0..1) where ``kept`` [1,H,W] says the input should stay."""
        return float((out - image).abs()[kept[:, None].expand_as(image)].max())

    sampled = [working_size(box, args.crop, model.factor) for _, box in todo.crops]
    crops = ", ".join(f"{box.width}x{box.height} px sampled at {w}x{h}"
                      for (_, box), (h, w) in zip(todo.crops, sampled))
    print(f"model: UNet {params:.1f} M parameters, {args.size}x{args.size}, mask {side}x{side} "
          f"({side * side / args.size ** 2:.1%}), {args.steps} steps, torch threads {torch.get_num_threads()}")
    print(f"crops: {crops}")
    print(f"diffusers full frame : {t_ref:.3f} s   max |out - in| outside the mask  = "
          f"{strayed(outputs['reference'], mask == 0):g}")
    print(f"ours crop-and-stitch : {t_ours:.3f} s   max |out - in| outside the blend = "
          f"{strayed(outputs['ours'], todo.weights == 0):g}  (goal 0)")
    print(f"ratio full-frame/crop = {t_ref / t_ours:.2f}  (goal >= 4)")


if __name__ == "__main__":
    main()
