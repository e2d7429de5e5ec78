"""Rule-based inversion of image-editing instructions, for cycle edits.

A cycle edit applies an instruction, then edits the result back with the reverse
instruction. :func:`invert_instruction` writes that reverse instruction for the common
forms, matched case-insensitively after dropping a leading/trailing "please", trailing
punctuation and extra whitespace. The user's object wording is kept; only articles
change ("add a cat" -> "remove the cat", "remove the hat" -> "add a hat").

Covered:

* add/put/insert/place X [to/onto/into/on/in Y]  <->  remove/delete/erase/take away/
  get rid of X [from Y]; "on/in Y" only when Y is definite ("in the bowl", not "in a
  red shirt"); other places ("next to Y", "at the top") stay part of X.
* change/turn/make/move/... X from A to B  ->  ... X from B to A (colours, backgrounds,
  positions, anything).
* make/turn/change/transform/convert A into/to B  ->  ... B into/to A;
  make A a B  ->  make B a A; replace A with B  ->  replace B with A;
  swap A for/with B  ->  swap B for/with A; swap A and B  ->  swap B and A.
* colours, when the old colour is named on the object: make the red circle blue  ->
  make the blue circle red (also "turn/paint/change ... [to/into] <colour>").
* make X <word> for the antonym pairs in ``_ANTONYM_PAIRS`` (bigger/smaller,
  brighter/darker, day/night, ...), optionally softened ("a bit", "slightly", ...).
* enlarge X <-> shrink X, scale up X <-> scale down X.
* move X [to the] left/right/up/down/top/bottom[-left/right]  ->  the opposite side.

Refused with :class:`NotInvertible`, because the original state cannot be recovered
from the instruction: a new colour without the old one ("make the circle red"), a new
background/sky/weather/style/... without "from A to B" (also removing one), an
attribute set to a bare value ("change the weather to rainy"), seasons ("make it winter" -
it might have been autumn), a move to a place without where from, turning or removing
a pronoun ("turn it into a dog", "remove it"), and anything no rule recognises.
"""

from __future__ import annotations

import re
from typing import Callable

__all__ = ["NotInvertible", "invert_instruction", "reverse_or_invert"]


class NotInvertible(ValueError):
    """An instruction whose reverse cannot be written automatically."""

    def __init__(self, instruction: str, reason: str) -> None:
        self.instruction, self.reason = instruction, reason
        super().__init__(
            f"Cannot invert '{instruction}' automatically: {reason}. Type the reverse "
            "instruction yourself (e.g. in the node's `reverse_instruction` input)."
        )


class _Refused(Exception):
    """Raised by a rule that recognises its form but knows the reverse is undefined."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- word tables ------------------------------------------------------------------

_ANTONYM_PAIRS = (
    ("bigger", "smaller"), ("larger", "smaller"), ("brighter", "darker"),
    ("lighter", "darker"), ("warmer", "cooler"), ("older", "younger"),
    ("wider", "narrower"), ("taller", "shorter"), ("day", "night"),
    ("open", "closed"), ("happy", "sad"), ("left", "right"), ("up", "down"),
    ("top", "bottom"),
)


def _opposites() -> dict[str, str]:
    """Both directions of every pair; the first pair listed wins (smaller -> bigger)."""
    table: dict[str, str] = {}
    for a, b in _ANTONYM_PAIRS:
        table.setdefault(a, b)
        table.setdefault(b, a)
    return table


_OPPOSITE = _opposites()

_SIZE_VERBS = {"enlarge": "shrink", "shrink": "enlarge", "scale up": "scale down",
               "scale down": "scale up"}

_COLOUR = (
    r"\b(?:(?:light|dark|pale|bright|deep)[ -])?"
    r"(?:red|orange|yellow|green|blue|purple|violet|pink|brown|black|white|grey|gray|"
    r"cyan|magenta|teal|turquoise|navy|beige|golden|gold|silver|maroon|indigo|lime|"
    r"olive|crimson)\b"
)
_OWN_DETERMINER = r"(?:this|that|these|those|my|your|his|her|its|our|their)"
_DETERMINER = rf"(?:a|an|the|some|{_OWN_DETERMINER}|one|two|three|four|five|\d+)"
_PRONOUN = r"(?:it|this|that|them|him|her|everything)"
# Words after which a noun phrase's head noun has ended ("the man with a hat").
_HEAD_END = re.compile(r"\s+(?:of|with|in|on|at|from|for|wearing|holding|that|which|who|"
                       r"next|near|behind|beside|under|above|below)\s+", re.IGNORECASE)
_IRREGULAR_PLURALS = {"people", "children", "men", "women", "mice", "feet", "teeth"}
_SOFTENER = r"(?:(?:a (?:bit|little|lot)|slightly|much|even|far|way|somewhat)\s+)?"


# --- noun-phrase helpers ----------------------------------------------------------

def _split_article(phrase: str) -> tuple[str, str]:
    """("a"/"an"/"the"/"some" or "", rest of the phrase)."""
    m = re.match(r"(a|an|the|some)\s+(.+)", phrase, re.IGNORECASE)
    return (m[1].lower(), m[2]) if m else ("", phrase)


def _is_bare(phrase: str) -> bool:
    return not re.match(rf"{_DETERMINER}\s", phrase, re.IGNORECASE)


def _has_own_determiner(phrase: str) -> bool:
    """True for "his hat", "these cups": determiners to keep as the user wrote them."""
    return bool(re.match(rf"{_OWN_DETERMINER}\s", phrase, re.IGNORECASE))


def _is_plural(phrase: str) -> bool:
    head = _HEAD_END.split(phrase, maxsplit=1)[0].split()[-1].lower()
    return head in _IRREGULAR_PLURALS or (
        head.endswith("s") and not head.endswith(("ss", "us", "is")))


def _definite(phrase: str) -> str:
    """"a red cat" -> "the red cat"; "his hat" stays."""
    if _has_own_determiner(phrase):
        return phrase
    return f"the {_split_article(phrase)[1]}"


def _indefinite(phrase: str) -> str:
    """"the red cat" -> "a red cat"; "the clouds" -> "clouds"; bare or "his hat" stay."""
    article, rest = _split_article(phrase)
    if article not in ("a", "an", "the"):
        return phrase
    if _is_plural(rest):
        return rest
    return f"{'an' if rest[0].lower() in 'aeiou' else 'a'} {rest}"


def _swap(a: str, b: str) -> tuple[str, str]:
    """The two phrases of "turn A into B", exchanged with fitting articles."""
    new_a = _split_article(b)[1] if _is_bare(a) else _definite(b)
    new_b = _indefinite(a) if _split_article(b)[0] in ("a", "an") else a
    return new_a, new_b


# --- rules: each handler gets the match and returns the reverse, or raises _Refused ---

Handler = Callable[[re.Match[str]], str]


def _refuse(reason: str) -> Handler:
    def handler(m: re.Match[str]) -> str:
        raise _Refused(reason.format(**m.groupdict()))
    return handler


def _from_to(m: re.Match[str]) -> str:
    obj = f"{m['obj']} " if m["obj"] else ""
    return f"{m['verb'].lower()} {obj}from {m['b']} to {m['a']}"


def _antonym(m: re.Match[str]) -> str:
    return f"make {m['obj']} {m['soft']}{_OPPOSITE[m['adj'].lower()]}"


def _move_direction(m: re.Match[str]) -> str:
    flipped = re.sub(r"[a-z]+", lambda w: _OPPOSITE[w[0].lower()], m["dir"],
                     flags=re.IGNORECASE)
    return f"{m['verb'].lower()} {m['obj']} {m['lead']}{flipped}"


def _resize(m: re.Match[str]) -> str:
    return f"{_SIZE_VERBS[m['verb'].lower()]} {m['obj']}"


def _add(m: re.Match[str]) -> str:
    reverse = f"remove {_definite(m['obj'])}"
    if not m["prep"]:
        return reverse
    prep = m["prep"].lower()
    kept = re.fullmatch(_KEPT_PLACE, prep)
    return f"{reverse} {prep if kept else 'from'} {m['where']}"


def _remove(m: re.Match[str]) -> str:
    reverse = f"add {_indefinite(m['obj'])}"
    return f"{reverse} to {m['where']}" if m["where"] else reverse


def _recolour(m: re.Match[str]) -> str:
    obj, target = m["obj"], m["target"]
    old = list(re.finditer(_COLOUR, obj, re.IGNORECASE))
    if not old:
        raise _Refused("the original colour is unknown (name it, e.g. 'change the circle "
                       "from red to blue' or 'make the red circle blue')")
    if len(old) > 1:
        raise _Refused(f"'{obj}' names several colours, so which one to change back is "
                       "ambiguous")
    start, end = old[0].span()
    prep = f"{m['prep'].lower()} " if m["prep"] else ""
    return f"{m['verb'].lower()} {obj[:start]}{target}{obj[end:]} {prep}{old[0][0]}"


def _transform(m: re.Match[str]) -> str:
    a, b = m["a"], m["b"]
    if _is_bare(b) and not _is_bare(a):  # "change the weather to rainy"
        raise _Refused(f"the original value that '{b}' replaced is unknown")
    new_a, new_b = _swap(a, b)
    return f"{m['verb'].lower()} {new_a} {m['prep'].lower()} {new_b}"


def _make_a(m: re.Match[str]) -> str:
    new_a, new_b = _swap(m["a"], m["b"])
    return f"make {new_a} {new_b}"


def _replace(m: re.Match[str]) -> str:
    new_a, new_b = _swap(m["a"], m["b"])
    return f"replace {new_a} with {new_b}"


def _swap_for(m: re.Match[str]) -> str:
    new_a, new_b = _swap(m["a"], m["b"])
    return f"swap {new_a} {m['prep'].lower()} {new_b}"


def _swap_and(m: re.Match[str]) -> str:
    return f"swap {m['b']} and {m['a']}"


_ADJ = "|".join(sorted(_OPPOSITE, key=len, reverse=True))
_DIRECTION = r"(?:left|right|up|down|top|bottom)(?:[ -](?:left|right))?"
# Places an added object keeps in its removal ("remove the dog next to the cat").
_KEPT_PLACE = r"(?:next to|close to|on top of|in front of)"
_REMOVE_VERB = r"(?:remove|delete|erase|take away|get rid of)"
_ATTRIBUTE = (r"(?:background|backdrop|sky|weather|season|time of day|lighting|art style|"
              r"style|colou?r scheme|setting|scene|mood|expression)")

# Tried in order; the first pattern that matches decides.
_RULES: list[tuple[re.Pattern[str], Handler]] = [
    (re.compile(p, re.IGNORECASE), h) for p, h in [
        (r"(?P<verb>change|turn|make|switch|move|shift|convert|transform|paint|"
         r"colou?r|recolou?r)\s+(?:(?P<obj>.+?)\s+)?from\s+(?P<a>.+?)\s+to\s+(?P<b>.+)",
         _from_to),
        (rf"make\s+(?P<obj>.+?)\s+(?P<soft>{_SOFTENER})(?P<adj>{_ADJ})", _antonym),
        (rf"(?P<verb>move|shift|slide|nudge)\s+(?P<obj>.+?)\s+(?P<lead>"
         rf"(?:(?:a (?:bit|little)|slightly|further)\s+)?(?:(?:to|towards?)\s+the\s+)?)"
         rf"(?P<dir>{_DIRECTION})", _move_direction),
        (r"(?:move|shift|relocate)\s+.+?\s+(?:to|onto|into|towards?)\s+.+",
         _refuse("the original position is unknown (name it, e.g. 'move the cat from "
                 "the sofa to the floor')")),
        (r"(?P<verb>enlarge|shrink|scale up|scale down)\s+(?P<obj>.+)", _resize),
        (r"(?:make|turn|change|set|switch|transform|convert)\s+.*\b"
         r"(?:winter|summer|spring|autumn)",
         _refuse("the original season is unknown (it could have been any of the others)")),
        (rf"(?:make|turn|change|set|switch|replace|swap|transform|convert|{_REMOVE_VERB})"
         rf"\s+(?:the\s+)?(?P<attr>{_ATTRIBUTE})\b.*",
         _refuse("the original {attr} is unknown (name it, e.g. 'change the {attr} "
                 "from A to B')")),
        (rf"(?:make|turn|change|transform|convert)\s+(?P<what>{_PRONOUN})\s+"
         r"(?:into|to|a|an)\b.*",
         _refuse("what '{what}' was before the edit is unknown")),
        (rf"{_REMOVE_VERB}\s+(?P<what>{_PRONOUN})",
         _refuse("what '{what}' refers to is unknown")),
        (rf"(?:add|put|insert|place)\s+(?P<obj>.+?)(?:\s+(?P<prep>{_KEPT_PLACE}|to|onto|into|"
         rf"(?:on|in)(?=\s+(?:the|{_OWN_DETERMINER})\s))\s+(?P<where>.+))?", _add),
        (rf"{_REMOVE_VERB}\s+(?P<obj>.+?)(?:\s+from\s+(?P<where>.+))?", _remove),
        (rf"(?P<verb>make|turn|change|paint|colou?r|recolou?r|dye)\s+(?P<obj>.+?)\s+"
         rf"(?:(?P<prep>to|into)\s+)?(?P<target>{_COLOUR})", _recolour),
        (r"replace\s+(?P<a>.+?)\s+(?:with|by)\s+(?P<b>.+)", _replace),
        (r"swap\s+(?P<a>.+?)\s+(?P<prep>for|with)\s+(?P<b>.+)", _swap_for),
        (r"swap\s+(?P<a>.+?)\s+and\s+(?P<b>.+)", _swap_and),
        (r"(?P<verb>make|turn|change|transform|convert)\s+(?P<a>.+?)\s+"
         r"(?P<prep>into|to)\s+(?P<b>.+)", _transform),
        (rf"make\s+(?P<a>(?:the|{_OWN_DETERMINER})\s+.+?)\s+"
         r"(?P<b>(?:a|an)\s+.+)", _make_a),
    ]
]


def _normalise(instruction: str) -> str:
    text = " ".join(instruction.split())
    text = re.sub(r"^please\b[\s,]*", "", text, flags=re.IGNORECASE).rstrip(" .!?;,")
    return re.sub(r"[\s,]+please$", "", text, flags=re.IGNORECASE).rstrip(" .!?;,")


def invert_instruction(instruction: str) -> str:
    """The instruction that undoes ``instruction``, or :class:`NotInvertible`."""
    given = instruction.strip()
    text = _normalise(given)
    if not text:
        raise NotInvertible(given, "the instruction is empty")
    for pattern, handler in _RULES:
        m = pattern.fullmatch(text)
        if m:
            try:
                return handler(m)
            except _Refused as refused:
                raise NotInvertible(given, refused.reason) from None
    raise NotInvertible(given, "no rule for this form")


def reverse_or_invert(instruction: str, reverse: str | None) -> str:
    """The user's ``reverse`` instruction when it is not blank, else the inverted one."""
    if reverse and reverse.strip():
        return reverse.strip()
    return invert_instruction(instruction)
