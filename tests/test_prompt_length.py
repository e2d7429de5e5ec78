"""A prompt longer than its text encoder reads: cut to fit, with one warning naming how much of
it (tokens and words) the encoder never sees."""

import warnings

import pytest
import torch

from unpaired_edit.core.models.tiny import TEXT_LENGTH, tiny_flow, tiny_ip2p
from unpaired_edit.core.models.toy import TEXT_LENGTH as TOY_TEXT_LENGTH
from unpaired_edit.core.models.toy import build_toy
from unpaired_edit.core.prompt_length import PromptTruncated, token_ids
from unpaired_edit.nodes.edit import EditImage

# 21 words, each one token of the tiny models' tokenizer, which reads 16 - <bos> - <eos> = 14
LONG = "make the red circle blue and bigger and then move it to the left and make the sky red and day"
KEPT = "make the red circle blue and bigger and then move it to the left"


@pytest.fixture(scope="module")
def ip2p():
    return tiny_ip2p()


def test_a_long_prompt_warns_how_much_is_dropped(ip2p):
    assert len(LONG.split()) == 21 and TEXT_LENGTH == 16
    with pytest.warns(PromptTruncated) as record:
        ip2p.text_cache.clear()
        ip2p.encode_text([LONG])
    (warning,) = record
    message = str(warning.message)
    assert "the text encoder reads (14 tokens)" in message
    assert "the last 7 of its 21 tokens (7 of 21 words: 'and make the sky red and day') are ignored" in message
    assert message.startswith("'make the red circle blue and bigger and then move it to the…'")  # shortened
    assert message.count("make the red circle") == 1


def test_what_is_encoded_is_the_part_that_fits(ip2p):
    ip2p.text_cache.clear()
    with pytest.warns(PromptTruncated):
        long = ip2p.encode_text([LONG]).embeds
    kept = ip2p.encode_text([KEPT]).embeds
    assert torch.equal(long, kept)


def test_one_warning_per_prompt_and_none_for_prompts_that_fit(ip2p):
    with pytest.warns(PromptTruncated) as record:
        ids = token_ids(ip2p.tokenizer, [LONG, "add a cat", LONG, ""])
    assert len(record) == 1 and ids.shape == (4, TEXT_LENGTH)
    fits = " ".join(LONG.split()[:14])
    with warnings.catch_warnings():
        warnings.simplefilter("error", PromptTruncated)
        token_ids(ip2p.tokenizer, [fits, "add a cat", ""])


def test_flow_models_name_each_encoder_that_cuts():
    model = tiny_flow()
    with pytest.warns(PromptTruncated) as record:
        model.encode_text([LONG])
    messages = [str(w.message) for w in record]
    assert len(messages) == 2
    assert "the CLIP text encoder (the pooled prompt) reads (14 tokens)" in messages[0]
    assert "the T5 text encoder reads (14 tokens)" in messages[1]


def test_toy_models_warn_too():
    model = build_toy()
    words = ("make the red circle blue and then make the blue circle a large green square at the top left "
             "on a grass background and add a cross").split()
    assert len(words) > TOY_TEXT_LENGTH - 2
    with pytest.warns(PromptTruncated, match=f"the last {len(words) - (TOY_TEXT_LENGTH - 2)} of its {len(words)}"):
        model.text_embeddings([" ".join(words)])


def test_edit_image_warns_about_a_long_instruction(ip2p):
    image = torch.rand(1, 16, 16, 3, generator=torch.Generator().manual_seed(0))
    ip2p.text_cache.clear()
    with pytest.warns(PromptTruncated, match="the last 7 of its 21 tokens"):
        EditImage().edit(ip2p, image, LONG, steps=1, guidance=0.0, image_guidance=0.0, seed=0)
