"""Training methods by name."""

from .base import Method
from .byg import ByG
from .supervised import Supervised
from .t2i import TextToImage

METHODS: dict[str, type[Method]] = {m.name: m for m in (TextToImage, Supervised, ByG)}

__all__ = ["METHODS", "Method"]
