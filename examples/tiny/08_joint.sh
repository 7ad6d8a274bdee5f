#!/usr/bin/env bash
# DeepOmni-Tiny, step 8 (stage 3): the joint mix (text questions spoken with probability 0.7), routing over all experts.
source "$(dirname "$0")/common.sh"; STEP=joint
skip_if "$RUN/stage3-joint/train_result.json"
train joint joint "$RUN/stage2-text" "$RUN/stage3-joint" "$JOINT_LR" "$STAGE_EPOCHS" "$DATA/layout/joint"
