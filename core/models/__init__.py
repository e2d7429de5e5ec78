"""Edit-model families behind one interface (``EditModel``)."""

from .base import EditModel, ModelInfo
from .conditioning import SourceCond, TextCond
from .flow import FlowModel
from .ip2p import Ip2pModel
from .toy import ToyModel

# A family is one module of core/models/ and its class here.
FAMILIES: dict[str, type[EditModel]] = {cls.family: cls for cls in (Ip2pModel, FlowModel, ToyModel)}

__all__ = ["EditModel", "FAMILIES", "FlowModel", "Ip2pModel", "ModelInfo", "SourceCond", "TextCond", "ToyModel"]
