#!/usr/bin/env bash
# DeepOmni-Tiny, step 10: the reproduction's other arms, from the same checkpoints and data.
#   (c) naive: from the aligned model (stage 1, shared with the recipe), one fine-tuning of every parameter but Whisper
#       on the speech + text + joint data together, routing over all experts, no expert split; the same epochs over
#       the same examples as stages 2-speech + 2-text + 3 together, so the same number of training positions.
#   (d) per_token: the recipe's joint stage with per_token routing (each position within its modality's experts).
source "$(dirname "$0")/common.sh"; STEP=baselines
[ -e "$RUN/baseline-naive/train_result.json" ] || train naive naive "$RUN/stage1-alignment" "$RUN/baseline-naive" \
    "$NAIVE_LR" "$STAGE_EPOCHS" "$DATA/layout/speech" "$DATA/layout/text" "$DATA/layout/joint"
[ -e "$RUN/baseline-per-token/train_result.json" ] || train per-token joint "$RUN/stage2-text" \
    "$RUN/baseline-per-token" "$JOINT_LR" "$STAGE_EPOCHS" "$DATA/layout/joint" -- --routing-mode per_token
