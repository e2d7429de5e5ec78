"""Edit-model families behind one interface (``EditModel``)."""

from .base import EditModel, ModelInfo
from .conditioning import SourceCond, TextCond
from .flow import FlowModel
from .inpaint import InpaintModel
from .ip2p import Ip2pModel
from .toy import ToyModel
from .toy_inpaint import ToyInpaintModel
from .toy_video import ToyVideoModel
from .video import VideoModel

# A family is one module of core/models/ and its class here.
FAMILIES: dict[str, type[EditModel]] = {
    cls.family: cls for cls in (Ip2pModel, InpaintModel, FlowModel, ToyModel, ToyInpaintModel, ToyVideoModel, VideoModel)}

__all__ = ["EditModel", "FAMILIES", "FlowModel", "InpaintModel", "Ip2pModel", "ModelInfo", "SourceCond", "TextCond",
           "ToyInpaintModel", "ToyModel", "ToyVideoModel", "VideoModel"]
