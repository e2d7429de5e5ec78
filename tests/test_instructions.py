"""Tests for core/instructions.py: the rule-based inverter of edit instructions."""

from __future__ import annotations

import re
from types import ModuleType

import pytest

from unpaired_edit.core import instructions
from unpaired_edit.core.errors import SHOWN_CHARS


@pytest.fixture(scope="module")
def ins() -> ModuleType:
    return instructions


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
    ("move the cat a bit to the left", "move the cat a bit to the right"),
    ("move the cat further to the top", "move the cat further to the bottom"),
    ("move the ball towards the top-left", "move the ball towards the bottom-right"),
    ("shift the ball slightly to the bottom right", "shift the ball slightly to the top left"),
    ("move the cat up-left", "move the cat down-right"),
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
    "move the cat a bit to the left",
    "move the ball towards the top-left",
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
    # "to the left" may be that side of the picture (the toy world's meaning) or a step left
    ("move the cat to the left", "position"),
    ("move the ball to the top-left", "position"),
    ("move the red circle to the bottom", "position"),
    # the object is named by what the edit changes, so its reverse could not name it
    ("make the small dog bigger", "'small'"),
    ("make the dark room brighter", "'dark'"),
    ("make the open door closed", "'open'"),
    ("enlarge the tiny cat", "'tiny'"),
    ("move the left cat right", "'left'"),
    ("change the red circle from red to blue", "old value"),
    # a background put in or taken out: what was there is unknown
    ("put it on a sky background", "background"),
    ("add a blue sky", "sky"),
    ("add a red", "names no object"),
    ("make it black and white", "colour"),
    ("make the black and white cat red", "colours"),
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


# --- compounds ------------------------------------------------------------------------
# Each clause inverted, in reverse order, every object named as it is at that point of the
# undoing; a clause may leave out its verb, or its verb and object, or say "it".
COMPOUNDS = [
    # the four of issue 12
    ("make the red circle blue and bigger",
     "make the blue circle smaller and make the blue circle red"),
    ("add a cat and remove the dog", "add a dog and remove the cat"),
    ("make the cat bigger and the dog smaller", "make the dog bigger and make the cat smaller"),
    # separators
    ("add a cat, remove the dog", "add a dog and remove the cat"),
    ("add a cat, and remove the dog", "add a dog and remove the cat"),
    ("add a cat then remove the dog", "add a dog and remove the cat"),
    ("add a cat, then remove the dog", "add a dog and remove the cat"),
    ("add a cat and then remove the dog", "add a dog and remove the cat"),
    ("add a cat; remove the dog", "add a dog and remove the cat"),
    ("Add a cat. Then remove the dog.", "add a dog and remove the cat"),
    ("first add a cat, then remove the dog", "add a dog and remove the cat"),
    ("please add a cat and remove the dog!", "add a dog and remove the cat"),
    ("add a cat; remove the dog; make the tree taller",
     "make the tree shorter, add a dog and remove the cat"),
    # one verb, several objects: every reverse clause has its own verb
    ("remove the cat and the dog", "add a dog and add a cat"),
    ("add a cat and a dog", "remove the dog and remove the cat"),
    ("add a cat and also a dog", "remove the dog and remove the cat"),
    ("remove the cat, the dog and the bird", "add a bird, add a dog and add a cat"),
    ("add a cat to the sofa and a dog", "remove the dog and remove the cat from the sofa"),
    ("replace the cat with a dog and the hat with a cap",
     "replace the cap with a hat and replace the dog with a cat"),
    ("make the red circle blue and the green square yellow",
     "make the yellow square green and make the blue circle red"),
    ("make the red circle blue and the blue square red",
     "make the red square blue and make the blue circle red"),
    ("enlarge the cat and shrink the dog", "enlarge the dog and shrink the cat"),
    # the object left out, or "it": the object as the clause before left it
    ("make the cat bigger and brighter", "make the cat darker and make the cat smaller"),
    ("make the dog a bit bigger and slightly darker",
     "make the dog slightly brighter and make the dog a bit smaller"),
    ("make the red cat bigger and blue", "make the blue cat red and make the red cat smaller"),
    ("make the red circle blue and make it bigger",
     "make the blue circle smaller and make the blue circle red"),
    ("make the red circle blue and make the circle bigger",
     "make the circle smaller and make the blue circle red"),
    ("make the red circle blue and make the blue circle bigger",
     "make the blue circle smaller and make the blue circle red"),
    ("turn the cat into a dog and the dog into a cat",  # a swap, or there and back: either way
     "turn the cat into a dog and turn the dog into a cat"),
    ("make the cat bigger and make the red cat blue", "make the blue cat red and make the cat smaller"),
    ("make the red circle blue, bigger and move it left",
     "move the blue circle right, make the blue circle smaller and make the blue circle red"),
    ("turn the red circle into a square and make it bigger",
     "make the square smaller and turn the square into a red circle"),
    ("turn the red circle into a blue square and then make it smaller",
     "make the blue square bigger and turn the blue square into a red circle"),
    ("replace the cat with a dog and make it bigger",
     "make the dog smaller and replace the dog with a cat"),
    ("swap the cat for a dog and make it bigger", "make the dog smaller and swap the dog for a cat"),
    ("make the cat a dog and make it bigger", "make the dog smaller and make the dog a cat"),
    ("change the circle from red to blue and make it bigger",
     "make the circle smaller and change the circle from blue to red"),
    ("change the colour of the red circle to blue and make it bigger",
     "make the blue circle smaller and change the colour of the blue circle to red"),
    ("move the cat from the sofa to the floor and make it smaller",
     "make the cat bigger and move the cat from the floor to the sofa"),
    ("first add a cat, then make it bigger", "make the cat smaller and remove the cat"),
    ("add a cat and put a hat on it", "remove the hat from the cat and remove the cat"),
    ("add two cats and make them bigger", "make the two cats smaller and remove the two cats"),
    ("make it bigger and move it left", "move it right and make it smaller"),
    ("move the cat left and up", "move the cat down and move the cat right"),
    ("move the cat a bit to the left and up", "move the cat down and move the cat a bit to the right"),
    ("add a dog next to the red cat and make the red cat blue",
     "make the blue cat red and remove the dog next to the red cat"),
    ("put a hat on the cat and remove the dog", "add a dog and remove the hat from the cat"),
    # "and" inside one clause stays there
    ("swap the cat and the dog and make the cat bigger",
     "make the cat smaller and swap the dog and the cat"),
    ("Make The Red Circle Blue And Bigger!", "make The Blue Circle smaller and make The Blue Circle Red"),
]

ONE_CLAUSE_WITH_AND = [
    ("add a red and blue ball", "remove the red and blue ball"),
    ("add salt and pepper", "remove the salt and pepper"),
    ("swap the cat and the dog", "swap the dog and the cat"),
    ("make the cat and the dog bigger", "make the cat and the dog smaller"),
    ("move the cat and the dog left", "move the cat and the dog right"),
    ("replace the salt and pepper with sugar", "replace the sugar with the salt and pepper"),
    ("make the black and white cat bigger", "make the black and white cat smaller"),
    ("turn black and white into colour", "turn colour into black and white"),
]


@pytest.mark.parametrize("instruction, expected", COMPOUNDS + ONE_CLAUSE_WITH_AND)
def test_inverts_compounds(ins: ModuleType, instruction: str, expected: str) -> None:
    assert ins.invert_instruction(instruction) == expected


# Compounds of clauses on different objects: undoing them undoes them again.
@pytest.mark.parametrize("instruction", [
    "add a cat and remove the dog",
    "add a dog next to the cat, remove the hat and make the tree taller",
    "replace the cat with a dog and swap the cup for a glass",
    "swap the cat and the dog and make the cat bigger",
])
def test_compound_round_trip(ins: ModuleType, instruction: str) -> None:
    assert ins.invert_instruction(ins.invert_instruction(instruction)) == instruction


_POOL = [  # single clauses on distinct things, every one invertible
    "add a cat", "remove the dog", "make the tree taller", "replace the hat with a cap",
    "move the car left", "enlarge the moon", "turn the red circle into a blue square",
    "swap the cup for a glass", "make the lamp brighter", "change the door from green to red",
    "put a bird on the roof", "get rid of the bench", "make the red kite yellow",
    "shrink the boat", "move the clock slightly up", "make it night",
]
_JOINS = [" and ", ", ", ", then ", " then ", "; ", ", and ", " and then ", ". Then "]


@pytest.mark.parametrize("seed", range(40))
def test_compounds_invert_clause_by_clause_in_reverse_order(ins: ModuleType, seed: int) -> None:
    import random

    rng = random.Random(seed)
    clauses = rng.sample(_POOL, rng.randint(2, 4))
    text = clauses[0] + "".join(rng.choice(_JOINS) + clause for clause in clauses[1:])
    undone = [ins.invert_instruction(clause) for clause in reversed(clauses)]
    expected = undone[0] if len(undone) == 1 else ", ".join(undone[:-1]) + " and " + undone[-1]
    assert ins.invert_instruction(text) == expected


# Refused: some clause cannot be undone, the split or the object is unclear, or a clause
# names an object by what an earlier one changed.
COMPOUND_REFUSALS = [
    ("turn the red circle into a square and make the background blue", "'make the background blue'"),
    ("turn the red circle into a square and make the background blue", "background is unknown"),
    ("add a cat and make the sky red", "sky"),
    ("make the circle red and bigger", "colour is unknown"),
    ("make the cat bigger and red", "colour is unknown"),
    ("add a cat and make it look nicer", "no rule"),
    ("add a cat and rotate the dog", "no rule"),
    ("make the cat bigger and", "no rule"),
    ("and add a cat", "no rule"),
    ("add a cat and and a dog", "no rule"),
    ("make the cat bigger and left", "no rule"),
    ("add a cat and move it to the sofa", "position"),
    ("make the red circle blue and then move it to the left", "position"),
    ("remove the cat and make it brighter", "what 'it' refers to"),
    ("turn day into night and make it brighter", "what 'it' refers to"),
    ("add a cat and a dog and make them bigger", "what 'them' refers to"),
    ("remove the cat and make the cat bigger", "gone"),
    ("remove the dog and make the red dog bigger", "gone"),
    ("turn the cat into a dog, make the red cat blue", "may mean"),
    ("change the cat from red to blue, make the red cat blue", "may mean"),
    ("make the red circle blue and make the red circle bigger", "may mean"),
    ("make the red circle blue and make the red one bigger", "may mean"),
    ("make the red cat blue and add a dog next to the red cat", "may mean"),
    ("turn the red circle into a blue square and make the red circle bigger", "may mean"),
    ("remove the cat and the dog from the sofa", "place"),
    ("add a cat, a dog and a bird to the garden", "place"),
    ("add a red and a blue ball", "names no object"),
    ("make the circle blue and the square red", "colour is unknown"),
    ("make the small dog bigger and brighter", "'small'"),
    ("add a cat, " * 9 + "add a dog", "parts"),
]


@pytest.mark.parametrize("instruction, reason", COMPOUND_REFUSALS)
def test_refuses_compounds(ins: ModuleType, instruction: str, reason: str) -> None:
    with pytest.raises(ins.NotInvertible) as caught:
        ins.invert_instruction(instruction)
    assert reason in caught.value.reason
    assert "Type the reverse instruction yourself" in str(caught.value)


@pytest.mark.parametrize("instruction", [
    "turn the red circle into a blue square and white",  # a blue and white square, or then white?
    "replace the red circle with an orange cross and white",
])
def test_readings_that_undo_differently_are_refused(ins: ModuleType, instruction: str) -> None:
    with pytest.raises(ins.NotInvertible, match="more than one way") as caught:
        ins.invert_instruction(instruction)
    assert " or " in caught.value.reason  # both undoings are shown, neither is picked


# --- the toy world: undoing a compound gives back the scene ---------------------------

def _toy_cases():
    from unpaired_edit.core.toy.world import Obj, Scene

    one = Scene((Obj("circle", "red", "small", "center"),), "sky")
    two = Scene((Obj("circle", "red", "small", "left"), Obj("square", "green", "small", "right")), "grass")
    # (scene, compound as a user types it, the same edit as whole toy-world clauses)
    return [
        (one, "make the red circle blue and bigger", ["make the red circle blue", "make the blue circle bigger"]),
        (one, "make the red circle bigger and blue", ["make the red circle bigger", "make the red circle blue"]),
        (one, "paint the red circle yellow, then enlarge it",
         ["paint the red circle yellow", "enlarge the yellow circle"]),
        (one, "change the colour of the red circle to white and make it larger",
         ["change the colour of the red circle to white", "make the white circle larger"]),
        (two, "change the circle from red to purple and make the green square bigger",
         ["change the circle from red to purple", "make the green square bigger"]),
        (one, "replace the red circle with a red triangle and make it bigger",
         ["replace the red circle with a red triangle", "make the red triangle bigger"]),
        (one, "paint the red circle black and then replace it with a black cross",
         ["paint the red circle black", "replace the black circle with a black cross"]),
        (one, "make the red circle blue, then make it bigger and make it white",
         ["make the red circle blue", "make the blue circle bigger", "make the blue circle white"]),
        (two, "make the red circle blue and the green square yellow",
         ["make the red circle blue", "make the green square yellow"]),
        (two, "make the red circle bigger and the green square blue",
         ["make the red circle bigger", "make the green square blue"]),
        (two, "turn the red circle orange, make the green square bigger and shrink it",
         ["turn the red circle orange", "make the green square bigger", "shrink the green square"]),
        (two, "enlarge the green square; paint the red circle white",
         ["enlarge the green square", "paint the red circle white"]),
    ]


def _apply(scene, clauses):
    from unpaired_edit.core.toy.edits import interpret

    for clause in clauses:
        scene = interpret(scene, clause)
    return scene


def _clauses_of(reverse: str) -> list[str]:
    """A reverse as toy-world clauses (whose grammar always says "a", also before "orange")."""
    return [re.sub(r"\ban\b", "a", clause) for clause in re.split(r", | and ", reverse)]


@pytest.mark.parametrize("case", range(12))
def test_toy_world_reverse_of_a_compound_restores_the_scene(ins: ModuleType, case: int) -> None:
    scene, text, clauses = _toy_cases()[case]
    edited = _apply(scene, clauses)
    assert edited != scene
    reverse = ins.invert_instruction(text)
    # the reverse is itself toy-world clauses, each naming its object as it is by then
    assert _apply(edited, _clauses_of(reverse)) == scene, reverse


def _toy_compound(rng, scene):
    """2-3 random toy-world edits of ``scene``: the clauses, and the compound as a user may say
    it (joined in varied ways; an edit of the object just edited says "it" or leaves it out)."""
    from dataclasses import replace

    from unpaired_edit.core.toy.world import COLOURS, SHAPES

    clauses, said, last = [], [], None
    for _ in range(rng.randint(2, 3)):
        obj = rng.choice(scene.objects)
        kind = rng.choice(["colour", "resize", "shape"])
        if kind == "colour":
            new = rng.choice([c for c in COLOURS if c not in {o.colour for o in scene.objects}])
            template = rng.choice(["make the {o} {new}", "turn the {o} {new}", "paint the {o} {new}",
                                   "change the colour of the {o} to {new}"])
            after = replace(obj, colour=new)
        elif kind == "resize":
            template = rng.choice(["make the {o} bigger", "enlarge the {o}"] if obj.size == "small"
                                  else ["make the {o} smaller", "shrink the {o}"])
            after = replace(obj, size="large" if obj.size == "small" else "small")
            new = ""
        else:
            new = rng.choice([s for s in SHAPES if s not in {o.shape for o in scene.objects}])
            template = f"replace the {{o}} with a {obj.colour} {{new}}"
            after = replace(obj, shape=new)
        clause = template.format(o=obj.name, new=new)
        wordings = [clause]
        if obj == last:
            wordings.append(template.format(o="it", new=new).replace("the it", "it"))
            if template.startswith("make"):
                wordings.append(clause.split()[-1])  # "... and bigger", "... and blue"
        clauses.append(clause)
        said.append(rng.choice(wordings))
        scene, last = scene.replace_object(obj, after), after
    joins = [rng.choice([" and ", ", ", ", then ", " then ", "; ", " and then "]) for _ in said[1:]]
    return clauses, said[0] + "".join(join + part for join, part in zip(joins, said[1:]))


def test_toy_world_random_compounds_are_undone_or_refused(ins: ModuleType) -> None:
    """Never a wrong reverse: every reverse of a random toy compound restores its scene."""
    import random

    from unpaired_edit.core.toy.world import sample_scene

    rng, undone, refused = random.Random(0), 0, []
    while undone + len(refused) < 300:
        scene = sample_scene(rng)
        if not scene.objects:
            continue
        clauses, text = _toy_compound(rng, scene)
        try:
            reverse = ins.invert_instruction(text)
        except ins.NotInvertible:
            refused.append(text)
            continue
        assert _apply(_apply(scene, clauses), _clauses_of(reverse)) == scene, (text, reverse)
        undone += 1
    assert len(refused) < 30, refused[:5]


@pytest.mark.parametrize("text", [
    "turn the red circle into a square and make the background sand",
    "make the red circle blue and put it on a sand background",
    "move the red circle to the left",
    "make the red circle blue and move it to the top",
    "make the red circle blue and make the red circle bigger",
])
def test_toy_world_edits_it_cannot_undo_are_refused(ins: ModuleType, text: str) -> None:
    with pytest.raises(ins.NotInvertible):
        ins.invert_instruction(text)


# --- messages -------------------------------------------------------------------------

def test_quoted_shortens_long_text(ins: ModuleType) -> None:
    assert ins.quoted("add a cat") == "'add a cat'"
    assert ins.quoted("add  a\ncat") == "'add a cat'"
    long = "add a cat " * 20
    shown = ins.quoted(long)
    assert len(shown) == SHOWN_CHARS + 2 and shown.endswith("…'") and shown.startswith("'add a cat")


def test_a_long_instruction_is_quoted_once_and_shortened(ins: ModuleType) -> None:
    long = "make it look nicer with " + " ".join(f"detail{i}" for i in range(40))
    with pytest.raises(ins.NotInvertible) as caught:
        ins.invert_instruction(long)
    message = str(caught.value)
    assert message.count("make it look nicer") == 1
    assert "…" in message and "detail39" not in message
    assert len(message) < 250
    assert caught.value.instruction == long  # the whole text stays on the exception
