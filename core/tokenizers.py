"""Word-level tokenizers built offline (no hub), for tiny test models and the toy world."""

from __future__ import annotations

from typing import Iterable

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

SPECIALS = ("<pad>", "<bos>", "<unk>", "<eos>")

# Enough words for instructions and captions in tests and examples; others map to <unk>.
EDIT_WORDS = """a an the it this that of to into from with and on in at by as is are make turn change
transform convert replace swap add remove delete put place move shift make enlarge shrink bigger larger
smaller brighter darker lighter left right up down top bottom center middle background foreground object
photo picture image scene sky water grass tree house car cat dog person face hat circle square triangle
cross star shape red green blue yellow orange purple pink white black grey gray brown cyan magenta
big small large tiny day night winter summer snow rain sun moon""".split()


def word_tokenizer(words: Iterable[str] = EDIT_WORDS, max_length: int = 16) -> PreTrainedTokenizerFast:
    """A lower-casing, whitespace-and-punctuation split, word-level tokenizer.

    Ids 0-3 are <pad>, <bos>, <unk>, <eos>; <eos> is 3 (not 2) so CLIP-style text models pool
    at the first <eos> rather than at the largest id.
    """
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for word in words:
        vocab.setdefault(word.lower(), len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", vocab["<bos>"]), ("<eos>", vocab["<eos>"])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>",
                                   pad_token="<pad>", unk_token="<unk>", model_max_length=max_length)
