# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""The closed-domain QA task of DeepOmni-Tiny: questions and short answers generated from the fact tables and
templates in `spoken_qa_tables/*.json` (package data).

Each table file is one question *type* with at least three *phrasings* (templates) and its facts:

| type         | facts                                                                       | example                                        |
|--------------|-----------------------------------------------------------------------------|------------------------------------------------|
| `arithmetic` | `a plus/minus/times b`, operands 0-12 (minus only for a >= b)               | What is seven plus five? → Twelve.             |
| `capital`    | capitals of 72 countries                                                    | What is the capital of France? → Paris.        |
| `sequence`   | the day / month (wrapping) / number (0-50) after or before another          | What day comes after Sunday? → Monday.         |
| `opposite`   | opposites of 44 adjective pairs, asked both ways                            | What is the opposite of hot? → Cold.           |
| `legs`       | legs of 36 animals                                                          | How many legs does a spider have? → Eight.     |
| `colour`     | the usual colour of 38 things                                               | What colour is grass? → Green.                 |

Answers are one capitalised word or name with a full stop; numbers are written as words ("Fifty-six.").

**Held out** (deterministic in `seed`, see [`spoken_qa_items`]): per type one phrasing and a share of the facts
(`test_fact_share`, 20 % by default; an opposite pair is held out as a whole). An item is in the `test` split when
its phrasing or its fact is held out, otherwise in `train`. The spoken corpus (`data.corpus.make_spoken_qa_corpus`)
also holds out one question voice entirely.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from importlib import resources


TABLES = "spoken_qa_tables"
DEFAULT_TEST_FACT_SHARE = 0.2

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]  # fmt: skip
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(n: int) -> str:
    """English words of 0 <= n < 1000, American style: 56 → "fifty-six", 144 → "one hundred forty-four"."""
    if not 0 <= n < 1000:
        raise ValueError(f"number_words covers 0..999, got {n}.")
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    hundreds, rest = divmod(n, 100)
    return f"{_ONES[hundreds]} hundred" + (f" {number_words(rest)}" if rest else "")


def as_answer(text: str) -> str:
    """A short answer: first letter upper-case, a full stop ("fifty-six" → "Fifty-six.")."""
    return text[0].upper() + text[1:] + "."


@dataclass(frozen=True)
class QAFact:
    """One fact of a type: the template slots, the answer, and the group that is held out together."""

    type: str
    group: str
    slots: dict
    answer: str


@dataclass(frozen=True)
class QAItem:
    """One question of the domain: a fact asked with one phrasing."""

    id: str
    type: str
    fact: str  # the fact's group: every phrasing of a fact (and both directions of an opposite) share it
    phrasing: int
    question: str
    answer: str
    held_out_phrasing: bool
    held_out_fact: bool

    @property
    def split(self) -> str:
        return "test" if self.held_out_phrasing or self.held_out_fact else "train"

    @property
    def held_out(self) -> str:
        """What of this item is held out: "", "phrasing", "fact" or "phrasing+fact"."""
        return "+".join(name for name, flag in (("phrasing", self.held_out_phrasing), ("fact", self.held_out_fact)) if flag)

    def to_dict(self) -> dict:
        return {**asdict(self), "split": self.split, "held_out": self.held_out}


def load_tables() -> list[dict]:
    """The table files of the package, in type order (sorted file names)."""
    folder = resources.files("deepomni_hf.data") / TABLES
    names = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".json"))
    return [json.loads((folder / name).read_text(encoding="utf-8")) for name in names]


def _arithmetic(table: dict) -> Iterator[QAFact]:
    low, high = table["operands"]
    for op in table["operations"]:
        for a in range(low, high + 1):
            for b in range(low, high + 1):
                if op == "minus" and a < b:
                    continue  # answers stay non-negative
                value = {"plus": a + b, "minus": a - b, "times": a * b}[op]
                slots = {"a": number_words(a), "op": op, "b": number_words(b)}
                yield QAFact("arithmetic", f"{a} {op} {b}", slots, as_answer(number_words(value)))


def _sequence(table: dict) -> Iterator[QAFact]:
    for unit, spec in table["units"].items():
        if "numbers" in spec:
            low, high = spec["numbers"]
            items = [number_words(n) for n in range(low, high + 1)]
        else:
            items = spec["items"]
        for relation in table["relations"]:
            step = 1 if relation == "after" else -1
            for index, item in enumerate(items):
                target = index + step
                if not spec["wraps"] and not 0 <= target < len(items):
                    continue
                answer = items[target % len(items)]
                slots = {"unit": unit, "relation": relation, "item": item}
                yield QAFact("sequence", f"{unit} {relation} {item}", slots, as_answer(answer))


def _opposite(table: dict) -> Iterator[QAFact]:
    for first, second in table["pairs"]:
        for word, answer in ((first, second), (second, first)):
            yield QAFact("opposite", f"{first}/{second}", {"word": word}, as_answer(answer))


def _legs(table: dict) -> Iterator[QAFact]:
    for animal, legs in table["facts"]:
        yield QAFact("legs", animal, {"animal": animal}, as_answer(number_words(legs)))


def _capital(table: dict) -> Iterator[QAFact]:
    for country, capital in table["facts"]:
        yield QAFact("capital", country, {"country": country}, as_answer(capital))


def _colour(table: dict) -> Iterator[QAFact]:
    for thing, colour in table["facts"]:
        yield QAFact("colour", thing, {"thing": thing}, as_answer(colour))


_FACT_READERS = {"arithmetic": _arithmetic, "sequence": _sequence, "opposite": _opposite, "legs": _legs,
                 "capital": _capital, "colour": _colour}  # fmt: skip


def table_facts(table: dict) -> list[QAFact]:
    """The facts of one table (see the module docstring for the table kinds)."""
    kind = table["type"]
    if kind not in _FACT_READERS:
        raise ValueError(f"Unknown spoken-QA table type {kind!r}; known: {sorted(_FACT_READERS)}.")
    return list(_FACT_READERS[kind](table))


def spoken_qa_items(seed: int = 0, test_fact_share: float = DEFAULT_TEST_FACT_SHARE,
                    tables: list[dict] | None = None) -> list[QAItem]:  # fmt: skip
    """Every (fact, phrasing) pair of the domain, in table / fact / phrasing order, with its held-out flags.

    Per type, a `random.Random(f"{seed}:{type}")` (stable across Python versions) picks the held-out phrasing and
    `round(test_fact_share * groups)` held-out fact groups. Raises `ValueError` when two facts ask the same question
    with different answers."""
    if not 0.0 <= test_fact_share < 1.0:
        raise ValueError(f"test_fact_share must be in [0, 1), got {test_fact_share}.")
    items, answers_of = [], {}
    for table in tables if tables is not None else load_tables():
        kind, phrasings = table["type"], table["phrasings"]
        if len(phrasings) < 2:
            raise ValueError(f"Type {kind!r} needs at least two phrasings (one is held out), has {len(phrasings)}.")
        facts = table_facts(table)
        groups = list(dict.fromkeys(fact.group for fact in facts))
        rng = random.Random(f"{seed}:{kind}")
        test_phrasing = rng.randrange(len(phrasings))
        test_groups = set(rng.sample(groups, round(test_fact_share * len(groups))))
        for fact_index, fact in enumerate(facts):
            for phrasing, template in enumerate(phrasings):
                question = template.format(**fact.slots)
                if answers_of.setdefault(question, fact.answer) != fact.answer:
                    raise ValueError(f"{question!r} has two answers: {answers_of[question]!r} and {fact.answer!r}.")
                items.append(QAItem(
                    id=f"{kind}-{fact_index:04d}-p{phrasing}", type=kind, fact=f"{kind}:{fact.group}",
                    phrasing=phrasing, question=question, answer=fact.answer,
                    held_out_phrasing=phrasing == test_phrasing, held_out_fact=fact.group in test_groups,
                ))  # fmt: skip
    return items


def answer_vocabulary(items: list[QAItem]) -> list[str]:
    """Every distinct answer text, in first-seen order."""
    return list(dict.fromkeys(item.answer for item in items))


__all__ = [
    "DEFAULT_TEST_FACT_SHARE",
    "QAFact",
    "QAItem",
    "answer_vocabulary",
    "as_answer",
    "load_tables",
    "number_words",
    "spoken_qa_items",
    "table_facts",
]
