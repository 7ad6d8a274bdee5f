"""`deepomni make-corpus --task spoken-qa`: determinism, what the test split holds out, correct answers, audio."""

import json
from collections import Counter, defaultdict

import numpy as np
import pytest

from deepomni_hf.cli import main as deepomni_main
from deepomni_hf.data.spoken_qa import answer_vocabulary, load_tables, number_words, spoken_qa_items
from deepomni_hf.data.spoken_qa_corpus import corpus_rows, pick_test_voice


@pytest.fixture(scope="module")
def items():
    return spoken_qa_items(seed=0)


def test_generator_is_deterministic_and_seeded(items):
    assert spoken_qa_items(seed=0) == items
    other = spoken_qa_items(seed=1)
    assert [(i.question, i.answer) for i in other] == [(i.question, i.answer) for i in items]  # same domain
    assert [i.split for i in other] != [i.split for i in items]  # other held-out choices


def test_tables_cover_the_domain(items):
    tables = {t["type"]: t for t in load_tables()}
    assert set(tables) == {"arithmetic", "capital", "sequence", "opposite", "legs", "colour"}
    assert all(len(t["phrasings"]) >= 4 for t in tables.values())  # three stay in train when one is held out
    assert len(tables["capital"]["facts"]) >= 60
    questions = [i.question for i in items]
    assert len(questions) == len(set(questions))  # every question is asked once, so it has one answer


@pytest.mark.parametrize(
    "question, answer",
    [
        ("What is seven times eight?", "Fifty-six."),
        ("What is seven plus five?", "Twelve."),
        ("What is twelve minus five?", "Seven."),
        ("What is twelve times twelve?", "One hundred forty-four."),
        ("What is zero times nine?", "Zero."),
        ("What day comes after Sunday?", "Monday."),
        ("What day comes before Monday?", "Sunday."),
        ("What month comes after December?", "January."),
        ("What month comes before March?", "February."),
        ("What number comes after nineteen?", "Twenty."),
        ("What number comes before forty?", "Thirty-nine."),
        ("What is the capital of France?", "Paris."),
        ("What is the capital of Japan?", "Tokyo."),
        ("What is the capital of Australia?", "Canberra."),
        ("What is the opposite of hot?", "Cold."),
        ("What is the opposite of cold?", "Hot."),
        ("How many legs does a spider have?", "Eight."),
        ("How many legs does a bird have?", "Two."),
        ("What colour is grass?", "Green."),
        ("What colour is a banana?", "Yellow."),
    ],
)
def test_hand_checked_answers(items, question, answer):
    assert {i.question: i.answer for i in items}[question] == answer


def test_number_words():
    assert [number_words(n) for n in (0, 13, 20, 56, 100, 144)] == [
        "zero", "thirteen", "twenty", "fifty-six", "one hundred", "one hundred forty-four"]  # fmt: skip
    with pytest.raises(ValueError, match="0..999"):
        number_words(1000)


def test_test_split_holds_out_one_phrasing_per_type_and_a_fifth_of_the_facts(items):
    by_type = defaultdict(list)
    for item in items:
        by_type[item.type].append(item)
    for kind, rows in by_type.items():
        held_phrasings = {i.phrasing for i in rows if i.held_out_phrasing}
        assert len(held_phrasings) == 1, kind
        facts = {i.fact for i in rows}
        held_facts = {i.fact for i in rows if i.held_out_fact}
        assert abs(len(held_facts) / len(facts) - 0.2) < 0.02, kind
        train = [i for i in rows if i.split == "train"]
        assert not {i.phrasing for i in train} & held_phrasings
        assert not {i.fact for i in train} & held_facts
        # every held-out fact is asked with every phrasing in test, every fact with the held-out phrasing
        test = {(i.fact, i.phrasing) for i in rows if i.split == "test"}
        assert {(f, p) for f in held_facts for p in {i.phrasing for i in rows}} <= test
        assert {(f, p) for f in facts for p in held_phrasings} <= test
    # both directions of an opposite pair are held out together
    opposite = {i.question: i for i in items if i.type == "opposite"}
    hot, cold = opposite["What is the opposite of hot?"], opposite["What is the opposite of cold?"]
    assert hot.fact == cold.fact and hot.held_out_fact == cold.held_out_fact


def test_held_out_voice_speaks_only_test(items):
    voices = ["flite:awb", "flite:slt", "flite:kal16", "espeak:en-us"]
    held = pick_test_voice(voices, seed=0)
    assert held == pick_test_voice(voices, seed=0) and held in voices
    rows = corpus_rows(items, voices, held, seed=0, voices_per_question=2)
    train = [r for r in rows if r["split"] == "train"]
    test = [r for r in rows if r["split"] == "test"]
    assert {r["question_tts"] for r in test} == {held}
    assert held not in {r["question_tts"] for r in train}
    assert Counter(r["id"].rsplit("-v", 1)[0] for r in train).most_common(1)[0][1] == 2
    assert rows == corpus_rows(items, voices, held, seed=0, voices_per_question=2)
    with pytest.raises(ValueError, match="not one of the question voices"):
        pick_test_voice(voices, seed=0, test_voice="flite:rms")


def test_ambiguous_tables_are_refused():
    table = {"type": "capital", "phrasings": ["Capital of {country}?", "Where is {country}'s capital?"],
             "facts": [["Georgia", "Tbilisi"], ["Georgia", "Atlanta"]]}  # fmt: skip
    with pytest.raises(ValueError, match="has two answers"):
        spoken_qa_items(tables=[table])


def test_jsonl_export_for_evaluate_and_shared_answer_vocabulary(items, tmp_path):
    assert deepomni_main(["make-corpus", "--task", "spoken-qa", "--format", "jsonl", "--output", str(tmp_path)]) == 0
    rows = {split: [json.loads(line) for line in (tmp_path / f"{split}.jsonl").open()] for split in ("train", "test")}
    assert len(rows["train"]) + len(rows["test"]) == len(items)
    assert {"question", "answer", "type"} <= set(rows["test"][0])
    assert sum(i.split == "test" for i in items) == len(rows["test"])
    vocabulary = answer_vocabulary(items)
    assert {"Fifty-six.", "Paris.", "Monday.", "Cold.", "Eight.", "Green."} <= set(vocabulary)
    assert len(vocabulary) == len(set(vocabulary))
    with pytest.raises(FileExistsError, match="--overwrite"):
        deepomni_main(["make-corpus", "--task", "spoken-qa", "--format", "jsonl", "--output", str(tmp_path)])


def test_spoken_corpus_with_flite(tmp_path):
    pytest.importorskip("soundfile")
    import shutil

    import datasets

    if shutil.which("flite") is None:
        pytest.skip("flite is not installed")
    output = tmp_path / "corpus"
    args = ["make-corpus", "--task", "spoken-qa", "--output", str(output), "--voices", "flite:awb,flite:slt,flite:kal16",
            "--test-voice", "flite:kal16", "--limit", "3"]  # fmt: skip
    assert deepomni_main(args) == 0
    corpus = datasets.load_from_disk(str(output))
    assert set(corpus) == {"train", "test"} and len(corpus["train"]) == len(corpus["test"]) == 3
    assert set(corpus["test"]["question_voice"]) == {"flite:kal16"}
    assert "flite:kal16" not in corpus["train"]["question_voice"]
    assert set(corpus["train"]["answer_voice"]) == {"flite:rms"} and set(corpus["train"]["voice"]) == {"M29"}
    for row in corpus["train"]:
        for column in ("question_audio", "answer_audio"):
            samples = row[column].get_all_samples()
            waveform = samples.data.numpy().reshape(-1)
            assert samples.sample_rate > 0 and waveform.size > samples.sample_rate // 4  # over 0.25 s
            assert np.sqrt(np.mean(waveform**2)) > 0.01  # not silent
    info = json.loads((output / "corpus_info.json").read_text())
    assert info["test_voice"] == "flite:kal16" and info["answer_voice"] == "flite:rms"
    assert not (tmp_path / "corpus.work").exists()
