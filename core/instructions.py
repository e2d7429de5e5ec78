"""Rule-based inversion of image-editing instructions, for cycle edits.

A cycle edit applies an instruction, then edits the result back with the reverse
instruction. :func:`invert_instruction` writes that reverse instruction for the common
forms, matched case-insensitively after dropping a leading/trailing "please", trailing
punctuation and extra whitespace. The user's object wording is kept; only articles
change ("add a cat" -> "remove the cat", "remove the hat" -> "add a hat"). It is right
or it refuses: whatever it cannot undo exactly raises :class:`NotInvertible`.

Covered:

* add/put/insert/place/draw X [to/onto/into/on/in Y]  <->  remove/delete/erase/take away/
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
* move X left/right/up/down [a bit, slightly, further (to the) ...]  ->  the opposite way.
* compounds: clauses joined by "and", "then", commas or ";" are each inverted and put in
  reverse order ("add a cat and remove the dog" -> "add a dog and remove the cat"). A
  clause may leave out the verb ("make the cat bigger and the dog smaller") or the verb
  and the object ("make the red circle blue and bigger"), or name the object "it"; the
  reverse names every object as it is at that point of the undoing ("make the blue circle
  smaller and make the blue circle red"). "red and blue", "salt and pepper" and
  "swap A and B" stay one clause.

Refused with :class:`NotInvertible`, because the original state cannot be recovered
from the instruction: a new colour without the old one ("make the circle red"), a new
background/sky/weather/style/... without "from A to B" (also removing or adding one), an
attribute set to a bare value ("change the weather to rainy"), seasons ("make it winter" -
it might have been autumn), a move to a place without where from (also "move X to the
left": to the left side, or further left?), an object named by what the edit changes
("make the small dog bigger"), turning or removing a pronoun ("turn it into a dog",
"remove it"), anything no rule recognises, and a compound with any such clause, that
reads in more than one way, or whose later clause names an object by what an earlier
clause changed ("make the red circle blue and make the red circle bigger").
"""

from __future__ import annotations

import re
from itertools import product
from typing import Callable, Iterator, NamedTuple

from .errors import shortened

__all__ = ["NotInvertible", "invert_instruction", "quoted", "reverse_or_invert"]


def quoted(text: str) -> str:
    """``text`` in single quotes, whitespace collapsed and shortened: a long instruction cannot
    flood a message."""
    return f"'{shortened(' '.join(text.split()))}'"


class NotInvertible(ValueError):
    """An instruction whose reverse cannot be written automatically.

    ``problem`` says so, quoting the instruction once (shortened); ``str()`` adds the fix.
    """

    def __init__(self, instruction: str, reason: str) -> None:
        self.instruction, self.reason = instruction, reason
        self.problem = f"Cannot invert {quoted(instruction)} automatically: {reason}."
        super().__init__(f"{self.problem} Type the reverse instruction yourself (e.g. in the node's "
                         "`reverse_instruction` input).")


class _Refused(Exception):
    """Raised by a rule that recognises its form but knows the reverse is undefined."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _NoRule(Exception):
    """No rule reads this clause (so a reading of a compound that needs it is not one)."""


class _Inverse(NamedTuple):
    """A clause's reverse, and what the clause does to the objects it names."""

    text: str
    before: str | None = None  # the object the clause changes, named as before it (None: new, or none)
    after: str | None = None  # ... and as after it (None: removed, or not one object)
    refers: tuple[str, ...] = ()  # phrases naming things that are there before the clause
    old: frozenset[str] = frozenset()  # what else describes the object before ("red" of "from red to blue")
    new: frozenset[str] = frozenset()  # ... and after


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

_DIRECTIONS = {"left", "right", "up", "down", "top", "bottom"}
# The words that say where something is on the scale an antonym moves it along: after
# "make the small dog bigger" it is not "the small dog" any more. ("light" is left out of
# brightness: it is a noun as often, "make the light warmer".)
_SCALES = [
    {"big", "bigger", "large", "larger", "small", "smaller", "tiny", "little", "huge"},
    {"bright", "brighter", "dark", "darker", "dim", "lighter"},
    {"warm", "warmer", "cool", "cooler", "cold", "hot"}, {"old", "older", "young", "younger"},
    {"wide", "wider", "narrow", "narrower"}, {"tall", "taller", "short", "shorter"},
    {"day", "night"}, {"open", "closed"}, {"happy", "sad"}, _DIRECTIONS,
]
_SCALE = {word: scale for scale in _SCALES for word in scale}

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
_SOFTENS = r"(?:a (?:bit|little|lot)|slightly|much|even|far|way|somewhat|further)\b"
# Words that name no particular thing, left out when comparing how clauses name objects.
_FUNCTION_WORDS = {"a", "an", "the", "some", "one", "ones", "of", "with", "in", "on", "at", "from",
                   "to", "into", "onto", "next", "near", "behind", "beside", "under", "above",
                   "below", "and", "that", "which", "who", "this", "these", "those", "my", "your",
                   "his", "her", "its", "our", "their", "it", "them", "him", "everything"}


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


def _head(phrase: str) -> str:
    """"the man with a hat" -> "the man"."""
    return _HEAD_END.split(phrase, maxsplit=1)[0]


def _is_plural(phrase: str) -> bool:
    head = _head(phrase).split()[-1].lower()
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


def _content(phrase: str) -> set[str]:
    """The words of a phrase that say which thing it is: "the red one" -> {"red"}."""
    return set(re.findall(r"[a-z]+", phrase.lower())) - _FUNCTION_WORDS


def _colours(phrase: str) -> frozenset[str]:
    """The colour words of a phrase ("from light blue to red" -> {"light", "blue", "red"})."""
    return frozenset(_content(" ".join(c[0] for c in re.finditer(_COLOUR, phrase, re.IGNORECASE))))


def _describes(word: str) -> bool:
    """A word that describes rather than names (a colour, "bigger", "left")."""
    return bool(re.fullmatch(_COLOUR, word, re.IGNORECASE)) or word.lower() in _OPPOSITE


def _named_by_change(obj: str, word: str) -> None:
    """Refuse an object named by where it is on the scale the edit moves it along, or by
    nothing but a description ("enlarge the red")."""
    if _describes(_head(obj).split()[-1]):
        raise _Refused(f"{quoted(obj)} names no object")
    named = _content(obj) & _SCALE.get(word.lower(), set())
    if named:
        raise _Refused(f"{quoted(obj)} is named by what the edit changes ('{sorted(named)[0]}'), "
                       "so the reverse cannot name it that way")


def _check_object(obj: str) -> None:
    """Refuse adding or removing what is not one object: a background, a pronoun, "a red"."""
    attribute = re.search(rf"\b{_ATTRIBUTE}\b", obj, re.IGNORECASE)
    if attribute:
        attr = attribute[0].lower()
        raise _Refused(f"the original {attr} is unknown (name it, e.g. 'change the {attr} from A to B')")
    head = _head(obj).split()
    if re.fullmatch(_PRONOUN, head[0], re.IGNORECASE):
        raise _Refused(f"what '{head[0]}' refers to is unknown")
    if _describes(head[-1]) or head[-1].lower() in _SCALES[0]:
        raise _Refused(f"{quoted(obj)} names no object")


# --- rules: each handler gets the match and returns the reverse, or raises _Refused ---

Handler = Callable[[re.Match[str]], _Inverse]


def _refuse(reason: str) -> Handler:
    def handler(m: re.Match[str]) -> _Inverse:
        raise _Refused(reason.format(**m.groupdict()))
    return handler


def _from_to(m: re.Match[str]) -> _Inverse:
    obj = m["obj"]
    if obj and _content(obj) & _content(m["a"]):  # "change the red circle from red to blue"
        raise _Refused(f"{quoted(obj)} is named by the old value {quoted(m['a'])}, so the reverse "
                       "cannot name it that way")
    text = f"{m['verb'].lower()} {obj + ' ' if obj else ''}from {m['b']} to {m['a']}"
    if not obj:
        return _Inverse(text)
    return _Inverse(text, obj, obj, (obj,), _colours(m["a"]), _colours(m["b"]))


def _antonym(m: re.Match[str]) -> _Inverse:
    obj, adj = m["obj"], m["adj"]
    _named_by_change(obj, adj)
    return _Inverse(f"make {obj} {m['soft']}{_OPPOSITE[adj.lower()]}", obj, obj, (obj,))


def _move_direction(m: re.Match[str]) -> _Inverse:
    obj, to = m["obj"], m["to"] or ""
    if to.lower().startswith("to ") and not m["soft"]:  # a side of the picture, or a step that way?
        raise _Refused(f"the original position is unknown ('{to}{m['dir']}' may mean that side of the "
                       "picture: say e.g. 'move the cat left' for a step that way, or name where from, "
                       "'move the cat from the center to the left')")
    _named_by_change(obj, "left")
    flipped = re.sub(r"[a-z]+", lambda w: _OPPOSITE[w[0].lower()], m["dir"],
                     flags=re.IGNORECASE)
    return _Inverse(f"{m['verb'].lower()} {obj} {m['soft']}{to}{flipped}", obj, obj, (obj,))


def _resize(m: re.Match[str]) -> _Inverse:
    obj = m["obj"]
    _named_by_change(obj, "bigger")
    return _Inverse(f"{_SIZE_VERBS[m['verb'].lower()]} {obj}", obj, obj, (obj,))


def _add(m: re.Match[str]) -> _Inverse:
    obj, where = m["obj"], m["where"]
    _check_object(obj)
    added = _definite(obj)
    reverse = f"remove {added}"
    if m["prep"]:
        prep = m["prep"].lower()
        kept = re.fullmatch(_KEPT_PLACE, prep)
        reverse = f"{reverse} {prep if kept else 'from'} {where}"
    return _Inverse(reverse, None, added, (where,) if where else ())


def _remove(m: re.Match[str]) -> _Inverse:
    obj, where = m["obj"], m["where"]
    _check_object(obj)
    reverse = f"add {_indefinite(obj)}"
    if where:
        return _Inverse(f"{reverse} to {where}", obj, None, (obj, where))
    return _Inverse(reverse, obj, None, (obj,))


def _recolour(m: re.Match[str]) -> _Inverse:
    obj, target = m["obj"], m["target"]
    old = list(re.finditer(_COLOUR, obj, re.IGNORECASE))
    if not old:
        raise _Refused("the original colour is unknown (name it, e.g. 'change the circle "
                       "from red to blue' or 'make the red circle blue')")
    if len(old) > 1:
        raise _Refused(f"{quoted(obj)} names several colours, so which one to change back is "
                       "ambiguous")
    start, end = old[0].span()
    recoloured = f"{obj[:start]}{target}{obj[end:]}"
    prep = f"{m['prep'].lower()} " if m["prep"] else ""
    # "the colour of the red circle" names the circle, which later clauses may go on about
    name = re.compile(r"^the colou?r of\s+", re.IGNORECASE)
    return _Inverse(f"{m['verb'].lower()} {recoloured} {prep}{old[0][0]}", name.sub("", obj),
                    name.sub("", recoloured), (obj,))


def _exchanged(verb: str, a: str, b: str, link: str) -> _Inverse:
    """"<verb> A <link> B" -> "<verb> B <link> A", A becoming B (turn/replace/swap/make)."""
    new_a, new_b = _swap(a, b)
    text = f"{verb} {new_a} {link} {new_b}"
    if _is_bare(a):  # "turn day into night": no object to go on about
        return _Inverse(text)
    return _Inverse(text, a, new_a, (a,))


def _transform(m: re.Match[str]) -> _Inverse:
    a, b = m["a"], m["b"]
    if _is_bare(b) and not _is_bare(a):  # "change the weather to rainy"
        raise _Refused(f"the original value that {quoted(b)} replaced is unknown")
    return _exchanged(m["verb"].lower(), a, b, m["prep"].lower())


def _make_a(m: re.Match[str]) -> _Inverse:
    new_a, new_b = _swap(m["a"], m["b"])
    return _Inverse(f"make {new_a} {new_b}", m["a"], new_a, (m["a"],))


def _replace(m: re.Match[str]) -> _Inverse:
    return _exchanged("replace", m["a"], m["b"], "with")


def _swap_for(m: re.Match[str]) -> _Inverse:
    return _exchanged("swap", m["a"], m["b"], m["prep"].lower())


def _swap_and(m: re.Match[str]) -> _Inverse:
    return _Inverse(f"swap {m['b']} and {m['a']}", refers=(m["a"], m["b"]))


_ADJ = "|".join(sorted(_OPPOSITE, key=len, reverse=True))
_DIRECTION = r"(?:left|right|up|down|top|bottom)(?:[ -](?:left|right))?"
_MOVE_VERB = r"(?:move|shift|slide|nudge)"
_MOVE_SOFTENER = r"(?:(?:a (?:bit|little)|slightly|further)\s+)?"
# Places an added object keeps in its removal ("remove the dog next to the cat").
_KEPT_PLACE = r"(?:next to|close to|on top of|in front of)"
_REMOVE_VERB = r"(?:remove|delete|erase|take away|get rid of)"
_ATTRIBUTE = (r"(?:background|backdrop|sky|weather|season|time of day|lighting|art style|"
              r"style|colou?r scheme|setting|scene|mood|expression)")
# Every verb a rule starts with: a compound's clause that starts with none borrows one.
_VERB = re.compile(r"(?:get rid of|take away|scale up|scale down|add|put|insert|place|draw|remove|delete|"
                   r"erase|change|turn|make|switch|move|shift|slide|nudge|relocate|convert|transform|"
                   r"paint|colou?r|recolou?r|dye|replace|swap|enlarge|shrink|set)\b", re.IGNORECASE)
# Verbs that are nouns too ("salt and colour"): alone after "and" they start no clause.
_NOUNS_TOO = {"colour", "color", "paint", "dye", "place", "set", "switch", "change", "turn"}
# A verb with its object: what starts a clause ("make it ...", "add a ..."; not "colour" alone).
_CLAUSE = re.compile(rf"{_VERB.pattern}\s+(?:{_DETERMINER}|{_PRONOUN})\b", re.IGNORECASE)
# "it" in these is the picture ("add a bird and make it night") ...
_SCENE_CHANGE = re.compile(rf"make it {_SOFTENER}(?:day|night)", re.IGNORECASE)
# ... and in these it may be the picture or the object the clause before made.
_EITHER_CHANGE = re.compile(rf"make (?:it|them) {_SOFTENER}(?:brighter|darker|lighter|warmer|cooler)|"
                            r"(?:change|turn|make|switch|convert|transform) (?:it|them) from .+", re.IGNORECASE)

# Tried in order; the first pattern that matches with every slot one phrase decides
# (see _one_phrase). True: the "obj" slot may be a list ("make the cat and the dog bigger").
_RULES: list[tuple[re.Pattern[str], Handler, bool]] = [
    (re.compile(p, re.IGNORECASE), h, lists) for p, h, lists in [
        (r"(?P<verb>change|turn|make|switch|move|shift|convert|transform|paint|"
         r"colou?r|recolou?r)\s+(?:(?P<obj>.+?)\s+)?from\s+(?P<a>.+?)\s+to\s+(?P<b>.+)",
         _from_to, False),
        (rf"make\s+(?P<obj>.+?)\s+(?P<soft>{_SOFTENER})(?P<adj>{_ADJ})", _antonym, True),
        (rf"(?P<verb>{_MOVE_VERB})\s+(?P<obj>.+?)\s+(?P<soft>{_MOVE_SOFTENER})"
         rf"(?P<to>(?:to|towards?)\s+the\s+)?(?P<dir>{_DIRECTION})", _move_direction, True),
        (r"(?:move|shift|relocate)\s+(?P<obj>.+?)\s+(?:to|onto|into|towards?)\s+(?P<place>.+)",
         _refuse("the original position is unknown (name it, e.g. 'move the cat from "
                 "the sofa to the floor')"), False),
        (r"(?P<verb>enlarge|shrink|scale up|scale down)\s+(?P<obj>.+)", _resize, False),
        (r"(?:make|turn|change|set|switch|transform|convert)\s+(?P<rest>.*)\b"
         r"(?:winter|summer|spring|autumn)",
         _refuse("the original season is unknown (it could have been any of the others)"), False),
        (rf"(?:make|turn|change|set|switch|replace|swap|transform|convert|{_REMOVE_VERB})"
         rf"\s+(?:the\s+)?(?P<attr>{_ATTRIBUTE})\b(?P<rest>.*)",
         _refuse("the original {attr} is unknown (name it, e.g. 'change the {attr} "
                 "from A to B')"), False),
        (rf"(?:make|turn|change|transform|convert)\s+(?P<what>{_PRONOUN})\s+"
         r"(?:into|to|a|an)\b(?P<rest>.*)",
         _refuse("what '{what}' was before the edit is unknown"), False),
        (rf"{_REMOVE_VERB}\s+(?P<what>{_PRONOUN})",
         _refuse("what '{what}' refers to is unknown"), False),
        (rf"(?:add|put|insert|place|draw)\s+(?P<obj>.+?)(?:\s+(?P<prep>{_KEPT_PLACE}|to|onto|into|"
         rf"(?:on|in)(?=\s+(?:the|{_OWN_DETERMINER})\s))\s+(?P<where>.+))?", _add, False),
        (rf"{_REMOVE_VERB}\s+(?P<obj>.+?)(?:\s+from\s+(?P<where>.+))?", _remove, False),
        (rf"(?P<verb>make|turn|change|paint|colou?r|recolou?r|dye)\s+(?P<obj>.+?)\s+"
         rf"(?:(?P<prep>to|into)\s+)?(?P<target>{_COLOUR})", _recolour, False),
        (r"replace\s+(?P<a>.+?)\s+(?:with|by)\s+(?P<b>.+)", _replace, False),
        (r"swap\s+(?P<a>.+?)\s+(?P<prep>for|with)\s+(?P<b>.+)", _swap_for, False),
        (r"swap\s+(?P<a>.+?)\s+and\s+(?P<b>.+)", _swap_and, False),
        (r"(?P<verb>make|turn|change|transform|convert)\s+(?P<a>.+?)\s+"
         r"(?P<prep>into|to)\s+(?P<b>.+)", _transform, False),
        (rf"make\s+(?P<a>(?:the|{_OWN_DETERMINER})\s+.+?)\s+"
         r"(?P<b>(?:a|an)\s+(?!(?:bit|little|lot)\b).+)", _make_a, False),
    ]
]


def _one_phrase(slot: str, thing: bool, lists: bool) -> bool:
    """Whether a rule's slot holds one phrase rather than a clause boundary it swallowed:
    "red and blue", "salt and pepper" are one; "a square and make the sky red", "the cat
    bigger and the dog", "bigger and slightly darker" are not. ``thing``: the slot names a
    thing (so ends in a noun, not "the cat and red"); ``lists`` admits lists of things
    ("the cat and the dog")."""
    if re.search(r"[,;.]|\b(?:then|also)\b", slot, re.IGNORECASE) or _starts_clause(slot):
        return False
    words = slot.lower().split()
    if thing and "and" in words and _describes(words[-1]):
        return False
    for i, word in enumerate(words):
        if word != "and":
            continue
        if i in (0, len(words) - 1):
            return False
        left, right, rest = words[i - 1], words[i + 1], " ".join(words[i + 1:])
        if left in _OPPOSITE or right in _OPPOSITE or _starts_clause(rest) or re.match(_SOFTENS, rest):
            return False
        if re.fullmatch(_DETERMINER, right) and (not lists or _describes(left)):
            return False
        if i + 2 < len(words) and re.fullmatch(_DETERMINER, words[i + 2]) and not re.fullmatch(_DETERMINER, right):
            return False  # "a cat and rotate the dog": a verb no rule knows, with its object
    return True


def _starts_clause(text: str) -> bool:
    """"add white hats", "paint the door": a verb (not one that is a noun too, alone)."""
    verb = _VERB.match(text)
    return bool(verb and verb[0].lower() not in _NOUNS_TOO or _CLAUSE.match(text))


def _invert_clause(text: str) -> _Inverse:
    for pattern, handler, lists in _RULES:
        m = pattern.fullmatch(text)
        if m and all(_one_phrase(slot, name == "obj", lists and name == "obj")
                     for name, slot in m.groupdict().items() if slot and name != "verb"):
            return handler(m)
    raise _NoRule


def _parses(text: str) -> bool:
    """Whether some rule reads ``text`` (to undo it or to refuse it)."""
    try:
        _invert_clause(text)
    except _NoRule:
        return False
    except _Refused:
        pass
    return True


# --- compounds ----------------------------------------------------------------------

# Where a compound may split: commas, ";", sentence ends, "and", "then", "and then".
_SEPARATOR = re.compile(r"(\s*(?:[,;]|\.(?=\s))\s*(?:and\s+(?:then|also)\s+|and\s+|then\s+)?|"
                        r"\s+and\s+(?:then|also)\s+|\s+and\s+|\s+then\s+)", re.IGNORECASE)
_MAX_SEPARATORS = 8  # 2**8 readings at most
_PLACE = re.compile(r"\b(?:from|to|onto|into|on|in|at|next to|near|behind|beside|under|above|below)\b",
                    re.IGNORECASE)
_MORE = rf"(?:{_SOFTENER}(?:{_ADJ})|{_COLOUR})"  # "bigger", "a bit darker", "blue"
_FURTHER = rf"{_MOVE_SOFTENER}(?:(?:to|towards?)\s+the\s+)?{_DIRECTION}"  # "up", "a bit to the left"


def _readings(text: str) -> Iterator[list[str]]:
    """Every way to cut ``text`` into clauses at its separators, the uncut text first."""
    pieces = _SEPARATOR.split(text)
    parts, separators = pieces[0::2], pieces[1::2]
    for cuts in product((False, True), repeat=len(separators)):
        clauses = [parts[0]]
        for cut, separator, part in zip(cuts, separators, parts[1:]):
            if cut:
                clauses.append(part)
            else:
                clauses[-1] += separator + part
        yield clauses


def _complete(clause: str, done: list[tuple[str, _Inverse]]) -> tuple[str, str | None]:
    """The clause with what a compound leaves out said again, from the clause before: the
    verb ("... and the dog smaller"), the verb and the object ("... and bigger"), and the
    object that "it"/"them" stands for, named as it is by then; and that object's name
    when it was filled in (None when the clause names its objects itself)."""
    clause = re.sub(r"^(?:first|also)\s+", "", clause, flags=re.IGNORECASE)
    if not done:
        return clause, None
    previous, effect = done[-1]
    verb = _VERB.match(previous)
    moves = bool(verb) and re.fullmatch(_MOVE_VERB, verb[0], re.IGNORECASE)
    if _VERB.match(clause):
        text = clause
    elif moves and re.fullmatch(_FURTHER, clause, re.IGNORECASE):
        return _going_on(verb[0], clause, effect)
    elif re.fullmatch(_MORE, clause, re.IGNORECASE) and clause.split()[-1].lower() not in _DIRECTIONS:
        return _going_on("make", clause, effect)
    elif verb and re.match(rf"{_DETERMINER}\s", clause, re.IGNORECASE):
        text = f"{verb[0]} {clause}"
        if _PLACE.search(clause) and not _PLACE.search(previous[verb.end():]) and _parses(text):
            raise _Refused(f"whether its place is also meant for {quoted(previous)} is unclear")
    else:
        raise _NoRule
    pronoun = re.search(r"\b(?:it|them)\b", text, re.IGNORECASE)
    if not pronoun or _SCENE_CHANGE.fullmatch(text):
        return text, None
    after = effect.after
    # an unclear "it" refuses a clause some rule reads; in any other text this is no reading
    if after is None or (pronoun[0].lower() == "them" and not _is_plural(after)):
        if _parses(text):
            raise _Refused(f"what '{pronoun[0]}' refers to is unclear")
        raise _NoRule
    if _EITHER_CHANGE.fullmatch(text) and _parses(text):
        raise _Refused(f"whether '{pronoun[0]}' is the picture or {quoted(after)} is unclear")
    return re.sub(r"\b(?:it|them)\b", after, text, flags=re.IGNORECASE), after


def _going_on(verb: str, clause: str, effect: _Inverse) -> tuple[str, str]:
    """A clause that left out its verb and object ("... and bigger"): about the object the
    clause before acted on, named as it left it."""
    if effect.after is None:
        if _parses(f"{verb} it {clause}"):
            raise _Refused("which object it is about is unclear")
        raise _NoRule
    return f"{verb} {effect.after} {clause}", effect.after


def _check_names(inverse: _Inverse, done: list[tuple[str, _Inverse]], filled_in: str | None) -> None:
    """Refuse a clause that names an object as it was before an earlier clause changed it. In
    "make the red circle blue and make the red circle bigger" a person means one circle, but
    no red circle is left after the first clause, so no reverse is right for both readings.
    (Naming it as the earlier clause left it, "... and make the blue circle bigger", is fine.)"""
    for phrase in inverse.refers:
        words = _content(phrase)
        for previous, earlier in done:
            if not words or earlier.before is None or phrase == filled_in:
                continue
            if not _may_name(words, _content(earlier.before) | earlier.old):
                continue
            if earlier.after is None:
                raise _Refused(f"{quoted(phrase)} is gone after {quoted(previous)}")
            if not _may_name(words, _content(earlier.after) | earlier.new):
                raise _Refused(f"{quoted(phrase)} may mean what {quoted(previous)} changed, which is "
                               f"{quoted(earlier.after)} by then (say 'it' or {quoted(earlier.after)})")


def _may_name(words: set[str], described: set[str]) -> bool:
    """Whether a phrase of ``words`` may name a thing ``described`` so ("the cat" and "the red
    cat" may both name a red cat; "the blue cat" may not)."""
    return words <= described or described <= words


def _invert_reading(clauses: list[str]) -> list[_Inverse]:
    """The inverse of each clause of one reading, in the order of the clauses; _NoRule when a
    clause is no instruction, _Refused when all are but one cannot be undone."""
    done: list[tuple[str, _Inverse]] = []
    refusal = None
    for clause in clauses:
        forward = clause
        try:
            forward, filled_in = _complete(clause, done)
            inverse = _invert_clause(forward)
            _check_names(inverse, done, filled_in)
        except _Refused as refused:
            refusal = refusal or (clause, refused.reason)
            inverse = _Inverse("")  # what it did is unknown: clauses that go on about it are refused
        done.append((forward, inverse))
    if refusal:
        clause, reason = refusal
        raise _Refused(f"in {quoted(clause)}, {reason}" if len(clauses) > 1 else reason)
    return [inverse for _, inverse in done]


def _joined(clauses: list[str]) -> str:
    return clauses[0] if len(clauses) == 1 else f"{', '.join(clauses[:-1])} and {clauses[-1]}"


def _normalise(instruction: str) -> str:
    text = " ".join(instruction.split())
    text = re.sub(r"^please\b[\s,]*", "", text, flags=re.IGNORECASE).rstrip(" .!?;,")
    return re.sub(r"[\s,]+please$", "", text, flags=re.IGNORECASE).rstrip(" .!?;,")


def invert_instruction(instruction: str) -> str:
    """The instruction that undoes ``instruction``, or :class:`NotInvertible`.

    Every reading of a compound (every way to cut it into clauses) that the rules read is
    inverted; the reverse is returned only if they agree and none of them is refused.
    """
    given = instruction.strip()
    text = _normalise(given)
    if not text:
        raise NotInvertible(given, "the instruction is empty")
    if len(_SEPARATOR.findall(text)) > _MAX_SEPARATORS:
        raise NotInvertible(given, f"it has more than {_MAX_SEPARATORS + 1} parts")
    reverses: set[str] = set()
    refusal = None
    for clauses in _readings(text):
        try:
            inverses = _invert_reading(clauses)
        except _NoRule:
            continue
        except _Refused as refused:
            refusal = refusal or refused.reason
            continue
        reverses.add(_joined([inverse.text for inverse in reversed(inverses)]))
    if refusal:
        raise NotInvertible(given, refusal)
    if len(reverses) > 1:
        ways = " or ".join(quoted(reverse) for reverse in sorted(reverses)[:2])
        raise NotInvertible(given, f"it reads in more than one way (undone by {ways})")
    if not reverses:
        raise NotInvertible(given, "no rule for this form")
    return reverses.pop()


def reverse_or_invert(instruction: str, reverse: str | None) -> str:
    """The user's ``reverse`` instruction when it is not blank, else the inverted one."""
    if reverse and reverse.strip():
        return reverse.strip()
    return invert_instruction(instruction)
