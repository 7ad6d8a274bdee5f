#!/usr/bin/env bash
# DeepOmni-Tiny, step 3: the training data of every stage, built with `deepomni build-dataset` from the spoken-QA
# corpus (and WordNet sentences for ASR), then laid out once with Whisper's output cached (`deepomni layout-dataset
# --cache-audio-encoder`): Whisper is frozen in every stage, so no stage runs it again. Every build resumes.
source "$(dirname "$0")/common.sh"; STEP=datasets
skip_if "$DATA/layout/joint"
CONVERTED="$RUN/converted"
LIMIT=(); [ -n "$CORPUS_LIMIT" ] && LIMIT=(--limit "$CORPUS_LIMIT")

# the corpus: questions spoken by several voices (one held out for test), answers by the codec's voice
[ -e "$CORPUS/dataset_dict.json" ] || timed corpus $NICE $DEEPOMNI make-corpus --task spoken-qa --output "$CORPUS" \
    --voices "$QUESTION_VOICES" --test-voice "$TEST_VOICE" --answer-voice "$ANSWER_VOICE" --seed "$SEED" "${LIMIT[@]}"
# the same questions as text (train.jsonl / test.jsonl): text stage, joint stage, text evaluation
[ -e "$DATA/qa-text/train.jsonl" ] || timed qa-text $DEEPOMNI make-corpus --task spoken-qa --format jsonl \
    --output "$DATA/qa-text" --seed "$SEED" "${LIMIT[@]}"

build() {  # build NAME STAGE ARGS...: one build-dataset run (resumes an interrupted one)
    local name="$1" stage="$2"; shift 2
    [ -e "$DATA/built/$name" ] || timed "build-$name" $NICE $DEEPOMNI build-dataset --stage "$stage" \
        --output "$DATA/built/$name" --seed "$SEED" "$@"
}
build asr-questions alignment --input "$CORPUS" --split train --audio-column question_audio --text-column question
ASR=(asr-questions)
if [ "$ASR_SENTENCES" -gt 0 ]; then
    [ -e "$DATA/asr-sentences" ] || timed asr-sentences $NICE $DEEPOMNI make-corpus --output "$DATA/asr-sentences" \
        --voices "$TRAIN_VOICES" --limit "$ASR_SENTENCES" --seed "$SEED"
    build asr-sentences alignment --input "$DATA/asr-sentences"
    ASR+=(asr-sentences)
fi
build speech speech --input "$CORPUS" --split train --audio-column question_audio --tts "$ANSWER_VOICE" \
    --model "$CONVERTED"
build text text --input "$DATA/qa-text/train.jsonl"
build joint joint --input "$DATA/qa-text/train.jsonl" --question-tts "$TRAIN_VOICES" --tts "$ANSWER_VOICE" \
    --spoken-probability 0.7 --model "$CONVERTED"

for name in "${ASR[@]}" speech text joint; do
    [ -e "$DATA/layout/$name" ] || timed "layout-$name" $NICE $DEEPOMNI layout-dataset --input "$DATA/built/$name" \
        --model "$CONVERTED" --output "$DATA/layout/$name" --cache-audio-encoder
done
