"""Tokenizing prompts for a text encoder that reads a fixed number of tokens: what does not
fit is cut off, and a warning says how much of which prompt the encoder never sees."""

from __future__ import annotations

import warnings
from typing import Any, Sequence

from .instructions import quoted

__all__ = ["PromptTruncated", "token_ids"]


class PromptTruncated(UserWarning):
    """A prompt was longer than its text encoder reads; the end was ignored."""


def token_ids(tokenizer: Any, prompts: Sequence[str], max_length: int | None = None,
              encoder: str = "the text encoder") -> Any:
    """The prompts as token ids padded and cut to ``max_length`` (the tokenizer's
    ``model_max_length`` when None), a [len(prompts), max_length] tensor; one
    :class:`PromptTruncated` warning for each prompt that was cut."""
    length = max_length or tokenizer.model_max_length
    _warn_if_cut(tokenizer, list(dict.fromkeys(prompts)), length, encoder)
    return tokenizer(list(prompts), padding="max_length", max_length=length, truncation=True,
                     return_tensors="pt").input_ids


def _warn_if_cut(tokenizer: Any, prompts: list[str], length: int, encoder: str) -> None:
    room = length - tokenizer.num_special_tokens_to_add()  # <bos>/<eos> take their places too
    counts = [len(ids) for ids in tokenizer(prompts, add_special_tokens=False, verbose=False).input_ids]
    for prompt, count in zip(prompts, counts):
        if count <= room:
            continue
        dropped = f"the last {count - room} of its {count} tokens"
        if getattr(tokenizer, "is_fast", False):  # only fast tokenizers say where a token starts
            start = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True,
                              verbose=False).offset_mapping[room][0]
            tail = prompt[start:]
            dropped += f" ({len(tail.split())} of {len(prompt.split())} words: {quoted(tail)})"
        # stacklevel 3: the model's text encoding, which called token_ids
        warnings.warn(f"{quoted(prompt)} is longer than {encoder} reads ({room} tokens): {dropped} "
                      "are ignored. Shorten it to what matters.", PromptTruncated, stacklevel=3)
