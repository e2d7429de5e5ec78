"""Training methods by name."""

from .base import Method
from .byg import ByG
from .byteedit import ByteEdit
from .clip import Clip
from .inpaint import Inpaint
from .loc import Loc
from .reward import Reward
from .supervised import Supervised
from .t2i import TextToImage
from .t2v import TextToVideo
from .uip2p import Uip2p

METHODS: dict[str, type[Method]] = {m.name: m for m in (TextToImage, TextToVideo, Supervised, ByG, Clip, Uip2p, Loc,
                                                      Inpaint, Reward, ByteEdit)}

__all__ = ["METHODS", "Method"]
