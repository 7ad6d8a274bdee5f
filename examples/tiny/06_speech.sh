#!/usr/bin/env bash
# DeepOmni-Tiny, step 6 (stage 2-speech): spoken QA; speech experts train, text experts frozen and masked out.
source "$(dirname "$0")/common.sh"; STEP=speech
skip_if "$RUN/stage2-speech/train_result.json"
train speech speech "$RUN/stage1-experts" "$RUN/stage2-speech" "$SPEECH_LR" "$STAGE_EPOCHS" "$DATA/layout/speech"
