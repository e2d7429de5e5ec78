"""Tests for core/instructions.py: the rule-based inverter of edit instructions."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


def _load() -> ModuleType:
    try:
        from unpaired_edit.core import instructions
    except ImportError:  # package not installed: load the file on its own
        path = Path(__file__).resolve().parents[1] / "core" / "instructions.py"
        spec = importlib.util.spec_from_file_location("unpaired_edit_instructions", path)
        assert spec is not None and spec.loader is not None
        instructions = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(instructions)
    return instructions


@pytest.fixture(scope="module")
def ins() -> ModuleType:
    return _load()


ADD_REMOVE = [
    ("add a small green triangle to the top left",
     "remove the small green triangle from the top left"),
    ("add a cat on the sofa", "remove the cat from the sofa"),
    ("add a fish in the bowl", "remove the fish from the bowl"),
    ("add a dog next to the cat", "remove the dog next to the cat"),
    ("add a lamp on top of the table", "remove the lamp on top of the table"),
    ("add a sign at the top", "remove the sign at the top"),
    ("add a man in a red shirt", "remove the man in a red shirt"),
    ("add an apple", "remove the apple"),
    ("add clouds", "remove the clouds"),
    ("put a hat on his head", "remove the hat from his head"),
    ("insert a bird into the sky", "remove the bird from the sky"),
    ("place two cats in the garden", "remove the two cats from the garden"),
    ("remove the hat", "add a hat"),
    ("remove the owl from the tree", "add an owl to the tree"),
    ("delete the clouds", "add clouds"),
    ("erase the umbrella", "add an umbrella"),
    ("take away the cups", "add cups"),
    ("get rid of the man with glasses", "add a man with glasses"),
    ("remove his hat", "add his hat"),
    ("remove graffiti", "add graffiti"),
]

SWAPS = [
    ("turn the red circle into a blue square", "turn the blue square into a red circle"),
    ("make the cat a dog", "make the dog a cat"),
    ("make the cat into a dog", "make the dog into a cat"),
    ("change the cat to a dog", "change the dog to a cat"),
    ("transform the car into a boat", "transform the boat into a car"),
    ("convert the photo to a sketch", "convert the sketch to a photo"),
    ("turn day into night", "turn night into day"),
    ("replace the cat with a dog", "replace the dog with a cat"),
    ("replace the apple with an orange", "replace the orange with an apple"),
    ("swap the cat for a dog", "swap the dog for a cat"),
    ("swap the cup with a glass", "swap the glass with a cup"),
    ("swap the cat and the dog", "swap the dog and the cat"),
]

COLOURS = [
    ("change the circle from red to blue", "change the circle from blue to red"),
    ("make the red circle blue", "make the blue circle red"),
    ("turn the grey car yellow", "turn the yellow car grey"),
    ("make the gray cat white", "make the white cat gray"),
    ("change the red car to blue", "change the blue car to red"),
    ("paint the green door into purple", "paint the purple door into green"),
    ("make the light blue circle dark green", "make the dark green circle light blue"),
    ("change the background from a beach to a forest",
     "change the background from a forest to a beach"),
    ("change it from day to night", "change it from night to day"),
]

SIZE_MOVE_ANTONYM = [
    ("make it bigger", "make it smaller"),
    ("make the cat larger", "make the cat smaller"),
    ("make the cat smaller", "make the cat bigger"),
    ("make the dog a bit bigger", "make the dog a bit smaller"),
    ("enlarge the cat", "shrink the cat"),
    ("shrink the tree", "enlarge the tree"),
    ("scale up the logo", "scale down the logo"),
    ("move the cat left", "move the cat right"),
    ("move the cat up", "move the cat down"),
    ("move the cat slightly down", "move the cat slightly up"),
    ("move the cat to the left", "move the cat to the right"),
    ("move the cat to the top", "move the cat to the bottom"),
    ("move the ball to the top-left", "move the ball to the bottom-right"),
    ("move the ball to the bottom right", "move the ball to the top left"),
    ("move the cat from the sofa to the floor", "move the cat from the floor to the sofa"),
    ("make it brighter", "make it darker"),
    ("make it darker", "make it brighter"),
    ("make the image lighter", "make the image darker"),
    ("make the light warmer", "make the light cooler"),
    ("make the man older", "make the man younger"),
    ("make the road wider", "make the road narrower"),
    ("make the tower taller", "make the tower shorter"),
    ("make it night", "make it day"),
    ("make it day", "make it night"),
    ("make the door open", "make the door closed"),
    ("make him happy", "make him sad"),
    ("make the background darker", "make the background brighter"),
]

ALL_PAIRS = ADD_REMOVE + SWAPS + COLOURS + SIZE_MOVE_ANTONYM


@pytest.mark.parametrize("instruction, expected", ALL_PAIRS)
def test_inverts(ins: ModuleType, instruction: str, expected: str) -> None:
    assert ins.invert_instruction(instruction) == expected


# Symmetric forms: inverting the inverse gives back the original wording exactly.
ROUND_TRIP = [
    "add a small green triangle to the top left",
    "add a dog next to the cat",
    "add a hat",
    "remove the owl from the tree",
    "remove the clouds",
    "turn the red circle into a blue square",
    "make the cat a dog",
    "replace the cat with a dog",
    "swap the cat for a dog",
    "swap the cat and the dog",
    "turn day into night",
    "change the circle from red to blue",
    "make the red circle blue",
    "make the light blue circle dark green",
    "change the background from a beach to a forest",
    "make it bigger",
    "make the cat smaller",
    "make it brighter",
    "make it darker",
    "make it night",
    "enlarge the cat",
    "move the cat to the left",
    "move the ball to the top-left",
    "move the cat from the sofa to the floor",
]


@pytest.mark.parametrize("instruction", ROUND_TRIP)
def test_round_trip(ins: ModuleType, instruction: str) -> None:
    assert ins.invert_instruction(ins.invert_instruction(instruction)) == instruction


# "on"/"in"/"into" come back as the equivalent "to" (removal says "from", not which).
@pytest.mark.parametrize("instruction, equivalent", [
    ("add a cat on the sofa", "add a cat to the sofa"),
    ("put a hat on his head", "add a hat to his head"),
    ("insert a bird into the sky", "add a bird to the sky"),
])
def test_round_trip_to_equivalent(ins: ModuleType, instruction: str, equivalent: str) -> None:
    assert ins.invert_instruction(ins.invert_instruction(instruction)) == equivalent


@pytest.mark.parametrize("instruction, expected", [
    ("Please add a cat to the sofa.", "remove the cat from the sofa"),
    ("add a cat, please!", "remove the cat"),
    ("  ADD A CAT  ", "remove the CAT"),
    ("Turn The Red Circle Into A Blue Square!!", "turn the Blue Square into a Red Circle"),
    ("make   it\tbigger ?", "make it smaller"),
    ("Move the cat LEFT", "move the cat right"),
])
def test_tolerates_case_please_punctuation(ins: ModuleType, instruction: str,
                                          expected: str) -> None:
    assert ins.invert_instruction(instruction) == expected


NOT_INVERTIBLE = [
    ("make it look nicer", "no rule"),
    ("make the circle red", "colour"),
    ("paint the car red", "colour"),
    ("change the circle to blue", "colour"),
    ("make the red and white flag blue", "colours"),
    ("change the background to a beach", "background"),
    ("make the background red", "background"),
    ("make the background a beach", "background"),
    ("replace the background with a beach", "background"),
    ("remove the background", "background"),
    ("change the weather to rainy", "unknown"),
    ("make it winter", "season"),
    ("make it summer", "season"),
    ("move the cat to the sofa", "position"),
    ("turn it into a dog", "'it'"),
    ("make it a painting", "'it'"),
    ("remove it", "'it'"),
]


@pytest.mark.parametrize("instruction, reason", NOT_INVERTIBLE)
def test_not_invertible(ins: ModuleType, instruction: str, reason: str) -> None:
    with pytest.raises(ins.NotInvertible) as caught:
        ins.invert_instruction(instruction)
    message = str(caught.value)
    assert f"'{instruction}'" in message
    assert reason in message
    assert "Type the reverse instruction yourself" in message
    assert "reverse_instruction" in message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("instruction", ["", "   ", "\n\t", "please.", "!"])
def test_empty_is_not_invertible(ins: ModuleType, instruction: str) -> None:
    with pytest.raises(ins.NotInvertible, match="empty"):
        ins.invert_instruction(instruction)


def test_reverse_or_invert_prefers_users_text(ins: ModuleType) -> None:
    assert ins.reverse_or_invert("add a cat", "  take the cat out ") == "take the cat out"
    # ... even when the forward instruction could not be inverted at all.
    assert ins.reverse_or_invert("make it look nicer", "undo that") == "undo that"


@pytest.mark.parametrize("reverse", [None, "", "   "])
def test_reverse_or_invert_falls_back_to_inverting(ins: ModuleType,
                                                   reverse: str | None) -> None:
    assert ins.reverse_or_invert("add a cat", reverse) == "remove the cat"
    with pytest.raises(ins.NotInvertible):
        ins.reverse_or_invert("make it look nicer", reverse)
