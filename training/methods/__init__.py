"""Training methods by name."""

from .base import Method
from .supervised import Supervised
from .t2i import TextToImage

METHODS: dict[str, type[Method]] = {m.name: m for m in (TextToImage, Supervised)}

__all__ = ["METHODS", "Method"]
