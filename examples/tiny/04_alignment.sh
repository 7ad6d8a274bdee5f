#!/usr/bin/env bash
# DeepOmni-Tiny, step 4 (DESIGN stage 1): align the speech adapter on ASR; the new embedding rows learn too.
source "$(dirname "$0")/common.sh"; STEP=alignment
skip_if "$RUN/stage1-alignment/train_result.json"
ASR=("$DATA/layout/asr-questions"); [ -e "$DATA/layout/asr-sentences" ] && ASR+=("$DATA/layout/asr-sentences")
train alignment alignment "$RUN/converted" "$RUN/stage1-alignment" "$ALIGN_LR" "$ALIGN_EPOCHS" "${ASR[@]}"
