"""What a denoiser is conditioned on: the encoded prompt (``TextCond``) and the source (``SourceCond``).

Both are batches that samplers and trainers cut, join and broadcast without knowing what a
family keeps in them: an editor's source latents, an inpainter's masked source and mask, a
video model's time axis.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Callable, Sequence

import torch


@dataclass
class TextCond:
    """Encoded prompts: per-token embeddings and, for families that use one, a pooled vector."""

    embeds: torch.Tensor  # [B, L, D]
    pooled: torch.Tensor | None = None  # [B, D']

    def __len__(self) -> int:
        return self.embeds.shape[0]

    @staticmethod
    def cat(conds: Sequence["TextCond"]) -> "TextCond":
        pooled = None if conds[0].pooled is None else torch.cat([c.pooled for c in conds])
        return TextCond(torch.cat([c.embeds for c in conds]), pooled)

    def __getitem__(self, index) -> "TextCond":
        """The prompts at ``index`` (a slice or index tensor over the batch)."""
        return TextCond(self.embeds[index], None if self.pooled is None else self.pooled[index])

    def rows(self) -> list["TextCond"]:
        """One TextCond per prompt."""
        return [TextCond(self.embeds[i : i + 1], None if self.pooled is None else self.pooled[i : i + 1])
                for i in range(len(self))]

    def repeat_to(self, n: int) -> "TextCond":
        """Broadcast a single prompt to a batch of ``n``."""
        if len(self) == n:
            return self
        if len(self) != 1:
            raise ValueError(f"Cannot broadcast {len(self)} prompts to a batch of {n}.")
        pooled = None if self.pooled is None else self.pooled.expand(n, -1)
        return TextCond(self.embeds.expand(n, -1, -1), pooled)


@dataclass
class SourceCond:
    """The source a denoiser edits, encoded by its family (``EditModel.encode_source``).

    ``latents`` is the source as the denoiser reads it, ``[B, C, h, w]``, or ``[B, C, F, h, w]``
    with a time axis (video); for an inpainter, the source with the masked region blanked. An
    inpainter also carries ``mask`` (``[B, 1, ...]`` at the latents' size, 1 where the picture is
    regenerated). Every operation applies to each tensor present, row by row.
    """

    latents: torch.Tensor
    mask: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.latents.dim() not in (4, 5):
            raise ValueError(f"Source latents are [B, C, h, w] or [B, C, F, h, w], not {list(self.latents.shape)}.")
        b, _, *grid = self.latents.shape
        if self.mask is not None and list(self.mask.shape) != [b, 1, *grid]:
            raise ValueError(f"A source mask must be {[b, 1, *grid]} for latents {list(self.latents.shape)}, "
                             f"not {list(self.mask.shape)}.")

    def __len__(self) -> int:
        return self.latents.shape[0]

    @property
    def shape(self) -> torch.Size:
        """The latents' shape, which the denoised latents share."""
        return self.latents.shape

    @property
    def frames(self) -> int | None:
        """The length of the time axis, None for pictures."""
        return self.latents.shape[2] if self.latents.dim() == 5 else None

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> "SourceCond":
        return replace(self, **{f.name: fn(v) for f in fields(self) if (v := getattr(self, f.name)) is not None})

    @staticmethod
    def cat(conds: Sequence["SourceCond"]) -> "SourceCond":
        first = conds[0]
        return replace(first, **{f.name: torch.cat([getattr(c, f.name) for c in conds])
                                 for f in fields(first) if getattr(first, f.name) is not None})

    def __getitem__(self, index) -> "SourceCond":
        """The rows ``index`` picks (a slice, or a tensor of indices or of booleans)."""
        return self._map(lambda v: v[index])

    def repeat_to(self, n: int) -> "SourceCond":
        """Broadcast a single source to a batch of ``n``."""
        if len(self) == n:
            return self
        if len(self) != 1:
            raise ValueError(f"Cannot broadcast {len(self)} sources to a batch of {n}.")
        return self._map(lambda v: v.expand(n, *v.shape[1:]))

    def kept(self, keep: torch.Tensor) -> "SourceCond":
        """Zero every row where ``keep`` ([B] booleans) is False: the no-source branch of guidance
        and the conditioning dropout that trains it."""
        return self._map(lambda v: v * keep.to(v).reshape(-1, *[1] * (v.dim() - 1)))

    def zeros(self) -> "SourceCond":
        """No source at all, shaped like this one."""
        return self._map(torch.zeros_like)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "SourceCond":
        return self._map(lambda v: v.to(device=device, dtype=dtype))
