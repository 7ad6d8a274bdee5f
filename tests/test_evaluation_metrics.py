"""Evaluation metrics against hand-computed values (DESIGN §6): normalisation, number words, containment, WER,
relative drop."""

import pytest

from deepomni_hf.evaluation.metrics import (
    answer_is_correct,
    code_error_rate,
    normalize_answer,
    normalize_transcript,
    numbers_to_digits,
    relative_drop,
    word_error_rate,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The Eiffel Tower!", "eiffel tower"),  # lower case, punctuation and the article dropped
        ("Twenty-one.", "21"),
        ("one hundred and five", "105"),
        ("twelve hundred", "1200"),
        ("It costs 1,000 dollars", "it costs 1000 dollars"),
        ("one two three", "1 2 3"),  # three numbers, not one hundred and twenty-three
        ("two and three", "2 and 3"),  # `and` between numbers stays a word
        ("An apple, a pear", "apple pear"),
        ("", ""),
        (None, ""),
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_transcript_normalisation_keeps_articles():
    assert normalize_transcript("The answer is Seven.") == "the answer is 7"
    assert numbers_to_digits(["nineteen", "eighty", "four"]) == ["19", "84"]
    assert numbers_to_digits(["forty", "two", "cats"]) == ["42", "cats"]


@pytest.mark.parametrize(
    "reference, reply, correct",
    [
        ("Twelve.", "12", True),  # number words <-> digits
        ("12", "The answer is twelve.", True),  # contained in a longer reply
        ("Paris.", "The capital of France is Paris.", True),
        ("Paris.", "Parisian food", False),  # whole words only
        ("The Nile", "nile", True),  # articles do not count
        ("Four.", "fourteen", False),
        ("Four.", "", False),
        ("", "anything", False),  # an empty reference never matches
    ],
)
def test_answer_is_correct(reference, reply, correct):
    assert answer_is_correct(reference, reply) is correct


def test_word_error_rate_by_hand():
    # "a b c" -> "a x c": 1 substitution; "d e" -> "d": 1 deletion; 5 reference words.
    rate = word_error_rate(["a b c", "d e"], ["a x c", "d"])
    assert (rate.errors, rate.reference_words, rate.value) == (2, 5, 0.4)
    # Insertions count: "a" -> "a b c" is 2 errors over 1 word.
    assert word_error_rate(["a"], ["a b c"]).value == 2.0


def test_word_error_rate_empty_hypotheses_and_references():
    # An empty hypothesis deletes every reference word; a pair with an empty reference is left out and counted.
    rate = word_error_rate(["one two three", "x y", ""], ["", "x y", "something"])
    assert (rate.errors, rate.reference_words, rate.pairs, rate.skipped_empty_references) == (3, 5, 2, 1)
    assert rate.value == pytest.approx(0.6)
    assert word_error_rate([""], ["a"]).value is None
    # Normalisation first: case, punctuation and number words do not count as errors.
    assert word_error_rate(["Seven plus five is twelve."], ["7 plus 5 is 12"]).value == 0.0
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        word_error_rate(["a", "b"], ["a"])


def test_relative_drop():
    assert relative_drop(0.8, 0.6) == pytest.approx(0.25)  # (0.8 - 0.6) / 0.8
    assert relative_drop(0.5, 0.6) == pytest.approx(-0.2)  # a gain is a negative drop
    assert relative_drop(0.0, 0.3) is None
    assert relative_drop(None, 0.3) is None


def test_code_error_rate_by_hand():
    reference = [[1, 2, 3, 4, 5, 6, 7], [8, 9, 10, 11, 12, 13, 14]]
    assert code_error_rate(reference, reference).value == 0.0
    # One frame missing: one deletion in each of the 7 slots, over 14 reference codes.
    assert code_error_rate(reference, reference[:1]).value == 0.5
    # One code different: 1 substitution over 14.
    assert code_error_rate(reference, [[1, 2, 3, 4, 5, 6, 7], [8, 9, 10, 11, 12, 13, 99]]).value == pytest.approx(1 / 14)
    assert code_error_rate(reference, [[0] * 7][:0]).value == 1.0  # no speech at all
