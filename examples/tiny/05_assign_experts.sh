#!/usr/bin/env bash
# DeepOmni-Tiny, step 5: split every MoE layer's routed experts into speech and text experts by modality load.
source "$(dirname "$0")/common.sh"; STEP=assign-experts
skip_if "$RUN/stage1-experts/speech_experts.json"
timed assign-experts $NICE $DEEPOMNI assign-experts --model "$RUN/stage1-alignment" --speech-data "$DATA/layout/speech" \
    --text-data "$DATA/layout/text" --output "$RUN/stage1-experts" --rule "$EXPERT_RULE" --batch-size "$BATCH"
