"""What the demo's voices say when they say none of the words: the ``_unknown_`` speech.

Three kinds, in equal shares: other words, near misses of the six (they share a vowel or a
consonant frame with a word: what a spotter confuses first; ``kwsops demo-data --near-misses``
replaces the list), and stretches of ordinary sentences (what a stream is mostly made of;
Preprocess cuts them into clip-length pieces). None holds one of the six words.
"""

from __future__ import annotations

UNKNOWN_KINDS = ("word", "near miss", "sentence")

OTHER_WORDS = (
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "zero", "one",
    "two", "three", "four", "five", "six", "seven", "eight", "nine", "bed", "bird", "cat",
    "dog", "happy", "house", "marvin", "sheila", "tree", "wow", "forward", "follow", "learn",
    "visual", "table", "window", "garden", "yellow", "morning", "paper", "water", "music",
)  # fmt: skip

NEAR_MISSES = (
    "cash", "match", "patch", "cats", "kitsch", "latch",  # catch
    "gum", "gone", "fun", "done", "gull", "gown",  # gun
    "indie", "insects", "indent", "endless", "industry", "inner",  # index
    "lime", "lake", "bike", "lick", "light", "lie",  # like
    "relay", "relapse", "really", "Alex", "relics", "relish",  # relax
    "rack", "wok", "ruck", "frock", "rook", "lock",  # rock
)  # fmt: skip

SENTENCES = (
    "The weather was cold and grey for most of the morning.",
    "She put the kettle on and waited by the window.",
    "We should leave early if we want to find a seat on the train.",
    "My brother moved to a small town near the coast last year.",
    "Please remember to turn off the lights when you go out.",
    "The meeting has been moved to Thursday afternoon at three.",
    "He read the letter twice before he folded it away.",
    "There is a new bakery on the corner of our street.",
    "The children played in the garden until it got dark.",
    "Could you tell me where the nearest post office is?",
    "I think the film was better than the book, for once.",
    "They painted the kitchen a pale shade of green.",
    "Our flight was delayed by nearly two hours.",
    "The old bridge over the river is closed for repairs.",
    "Most people in the office take the bus to work.",
    "After dinner we went for a long walk along the canal.",
    "The price of fresh fruit has gone up again this month.",
    "He forgot his umbrella and got soaked on the way home.",
    "The library opens at nine on weekdays and ten on Sundays.",
    "A small dog was barking at the postman across the road.",
    "We are planning a trip to the mountains in the summer.",
    "The soup needs a little more salt and some pepper.",
    "She answered every question without looking at her notes.",
    "The radio said there would be snow later in the week.",
)


def unknown_text(kind: str, index: int, near_misses: tuple[str, ...] = NEAR_MISSES) -> str:
    """The text of the ``index``-th unknown recording of ``kind``."""
    pool = {"word": OTHER_WORDS, "near miss": near_misses or NEAR_MISSES, "sentence": SENTENCES}
    texts = pool[kind]
    return texts[index % len(texts)]
