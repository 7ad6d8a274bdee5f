#!/usr/bin/env bash
# DeepOmni-Tiny, step 7 (stage 2-text): text QA; text experts train, speech experts frozen and masked out.
source "$(dirname "$0")/common.sh"; STEP=text
skip_if "$RUN/stage2-text/train_result.json"
train text text "$RUN/stage2-speech" "$RUN/stage2-text" "$TEXT_LR" "$STAGE_EPOCHS" "$DATA/layout/text"
