"""Video Edit: thin glue from ComfyUI frame batches to core.video.

Frames travel as an IMAGE batch ``[F, H, W, C]``, the convention of VideoHelperSuite's Load
Video and Video Combine, so Video Edit sits between them; ComfyUI's SaveAnimatedWEBP (and the
runner's node of that name) saves the result as an animated picture.
"""

from __future__ import annotations

from ..core.editing import check_instruction
from ..core.images import comfy_to_pixels, pixels_to_comfy, to_rgb
from ..core.samplers import Hooks
from ..core.video import Chunking, edit_video
from . import host
from .checks import checked
from .edit import check_editor, on_device, sampling_inputs, settings_for
from .loaders import MODEL_TYPE


class VideoEdit:
    """Edits every frame of a clip by one instruction, consistently across frames.

    A video model edits each chunk of frames as one clip; a picture editor edits the frames one by
    one from the same starting noise. Chunks overlap by a few frames and are cross-faded there.
    """

    DESCRIPTION = __doc__
    CATEGORY = "unpaired_edit/edit"
    FUNCTION = "edit"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("frames",)
    OUTPUT_TOOLTIPS = ("The edited frames, as many and as large as the input's.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "edit_model": (MODEL_TYPE, {"tooltip": "From Load Edit Model: a video model, or a picture editor "
                                                       "(frame by frame)."}),
                "frames": ("IMAGE", {"tooltip": "The clip's frames as an IMAGE batch [frames, height, width, "
                                                "channels], e.g. from VideoHelperSuite's Load Video or Toy Clip."}),
                "instruction": ("STRING", {"multiline": True, "default": "",
                                           "tooltip": "What to change in every frame: 'make the car red'."}),
                **sampling_inputs(),
                "chunk_frames": ("INT", {"default": 16, "min": 2, "max": 1024,
                                         "tooltip": "Frames edited together; only one chunk is on the device "
                                                    "at a time, so memory does not grow with the clip."}),
                "overlap": ("INT", {"default": 4, "min": 0, "max": 1023,
                                    "tooltip": "Frames neighbouring chunks share and cross-fade; fewer than "
                                               "chunk_frames."}),
                "anchor": ("BOOLEAN", {"default": True,
                                       "tooltip": "Picture editors: every pixel that stands still since the first "
                                                  "frame takes the first frame's edit, so still parts do not "
                                                  "flicker. Video models edit whole chunks and ignore it."}),
            },
        }

    @checked("Video Edit")
    def edit(self, edit_model, frames, instruction, steps, guidance, image_guidance, seed, chunk_frames, overlap,
             anchor=True):
        model = check_editor(edit_model, "Video Edit › edit_model")
        pixels = comfy_to_pixels(to_rgb(frames, "Video Edit › frames"))
        instruction = check_instruction(instruction, "Video Edit › instruction", model)
        settings = settings_for(model, steps, guidance, image_guidance, seed)
        # the bar's total is set by edit_video's hooks: every chunk's steps
        hooks = Hooks(progress=host.progress(settings.steps), should_stop=host.should_stop)
        with on_device(model):
            edited = edit_video(model, pixels, instruction, settings, Chunking(chunk_frames, overlap, anchor), hooks)
        return (pixels_to_comfy(edited),)
