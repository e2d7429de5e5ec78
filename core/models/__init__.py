"""Edit-model families behind one interface (``EditModel``)."""

from .base import EditModel, ModelInfo
from .conditioning import SourceCond, TextCond
from .flow import FlowModel
from .ip2p import Ip2pModel
from .toy import ToyModel

FAMILIES: dict[str, type[EditModel]] = {"ip2p": Ip2pModel, "flow": FlowModel, "toy": ToyModel}

__all__ = ["EditModel", "FAMILIES", "FlowModel", "Ip2pModel", "ModelInfo", "SourceCond", "TextCond", "ToyModel"]
