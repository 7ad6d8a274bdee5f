#!/usr/bin/env python
# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
r"""DeepOmni-Tiny, step 1: pretrain the base text LLM (the role DeepSeek-V2-Lite-Chat plays for DeepOmni).

    python examples/tiny/01_pretrain_text.py --output /work/runs/tinycorpus/base-llm            # start
    python examples/tiny/01_pretrain_text.py --output /work/runs/tinycorpus/base-llm --resume   # after a kill
    python examples/tiny/01_pretrain_text.py --output /work/runs/tinycorpus/base-llm --evaluate-only
    # phase 2: a QA-heavy continuation from phase 1's model (new optimizer and schedule, same tokenizer)
    python examples/tiny/01_pretrain_text.py --output OUT2 --init-from OUT/final --data-seed 1 --qa-share 0.8 ...

(examples/tiny/README.md has the exact commands of the shipped run and their results.)

1. **Corpus.** The closed-domain QA of `deepomni_hf.data.spoken_qa`: every fact (the facts held out of the speech
   stages too: the text LLM must know them all), asked with the *train* phrasings only, one chat per question,
   rendered with DeepOmniProcessor's chat template for a text turn (`<bos>User: {q}\n\nAssistant: {a}<eos>`, byte for
   byte); plus general English: one document per WordNet synset (`lemma, lemma: gloss; "example"`, from
   `/usr/share/wordnet/data.*`) with a seeded 2 % of the synsets held out for perplexity.
2. **Tokenizer.** A byte-level BPE (like DeepSeek-V2's) trained on that corpus, DeepSeek's bos / eos names, and the
   processor's chat template; the model has a few more embedding rows than tokens (DeepSeek-V2 has 102,400 rows for
   100,015 tokens), which `deepomni convert` then fills with DeepOmni's specials.
3. **Model.** `DeepseekV2ForCausalLM` from scratch (`--size base`: hidden 256, 6 layers, layer 0 dense, 16 routed
   experts top-2 + 2 shared, MLA attention) trained with `transformers.Trainer` on packed blocks whose tokens are a
   seeded mix of QA chats (`--qa-share`) and WordNet documents, with a Switch-style router balance loss (transformers'
   DeepSeek-V2 computes none) so that every expert is in use when `deepomni assign-experts` splits them.
   Checkpoints every `--save-minutes` under `--output`; `--resume` continues from the last one. The model has an
   untied head like DeepSeek-V2-Lite-Chat: convert it with `deepomni convert --keep-source-lm-head` to keep it.
4. **Evaluation.** Greedy text-QA accuracy (normalised match: lower case, no punctuation, no articles) on the train
   phrasings and on the held-out phrasing, per type; perplexity on the held-out WordNet documents. Written to
   `OUTPUT/final/eval_results.json`, the model (float32) and tokenizer to `OUTPUT/final`.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import random
import re
import sys
import time
from pathlib import Path

import torch


BOS_TOKEN = "<｜begin▁of▁sentence｜>"
EOS_TOKEN = "<｜end▁of▁sentence｜>"
WORDNET_GLOB = "/usr/share/wordnet/data.*"
HELD_OUT_WORDNET_SHARE = 0.02
# Model sizes: `base` is the shipped recipe (7.65 M parameters, 15.3 MB in float16), `test` runs in seconds in CI.
SIZES = {
    "base": dict(hidden_size=256, intermediate_size=512, num_hidden_layers=6, num_attention_heads=4,
                 num_key_value_heads=4, kv_lora_rank=64, q_lora_rank=None, qk_nope_head_dim=32, qk_rope_head_dim=16,
                 v_head_dim=32, n_routed_experts=16, num_experts_per_tok=2, n_shared_experts=2,
                 moe_intermediate_size=64, first_k_dense_replace=1, bpe_vocab=4000, vocab_size=4096),
    "test": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=2, kv_lora_rank=16, q_lora_rank=None, qk_nope_head_dim=8, qk_rope_head_dim=8,
                 v_head_dim=8, n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=1,
                 moe_intermediate_size=16, first_k_dense_replace=1, bpe_vocab=300, vocab_size=320),
}  # fmt: skip


# ----- corpus -----------------------------------------------------------------------------------------------------


def render_text_chat(question: str, answer: str | None = None) -> str:
    """One text turn exactly as DeepOmniProcessor's chat template renders it (with `answer=None`: the generation
    prompt, ending in `Assistant:`)."""
    from transformers.utils.chat_template_utils import render_jinja_template

    from deepomni_hf.processors.processing_deepomni import DEFAULT_CHAT_TEMPLATE

    messages = [{"role": "user", "content": question}]
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    rendered, _ = render_jinja_template(conversations=[messages], chat_template=DEFAULT_CHAT_TEMPLATE,
                                        add_generation_prompt=answer is None, bos_token=BOS_TOKEN,
                                        eos_token=EOS_TOKEN, return_assistant_tokens_mask=True)  # fmt: skip
    return rendered[0]


def wordnet_documents(pattern: str = WORDNET_GLOB) -> list[str]:
    """One document per WordNet synset: `lemma, lemma: gloss; "example"` (underscores read as spaces)."""
    documents = []
    for path in sorted(glob.glob(pattern)):
        if path.endswith((".exc", ".vrb")) or not os.path.basename(path).startswith("data."):
            continue
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith(" ") or "|" not in line:
                    continue  # licence header
                head, gloss = line.split("|", 1)
                fields = head.split()
                count = int(fields[3], 16)
                lemmas = [re.sub(r"\(.*\)$", "", w).replace("_", " ") for w in fields[4 : 4 + 2 * count : 2]]
                documents.append(f"{', '.join(dict.fromkeys(lemmas))}: {' '.join(gloss.split())}")
    return documents


def split_wordnet(documents: list[str], seed: int) -> tuple[list[str], list[str]]:
    """(train, held-out) documents; a seeded `HELD_OUT_WORDNET_SHARE` of them is held out."""
    order = list(range(len(documents)))
    random.Random(f"{seed}:wordnet").shuffle(order)
    cut = max(1, round(HELD_OUT_WORDNET_SHARE * len(documents)))
    held = set(order[:cut])
    return [d for i, d in enumerate(documents) if i not in held], [d for i, d in enumerate(documents) if i in held]


def qa_texts(seed: int):
    """(train-phrasing items of every fact, held-out-phrasing items of every fact)."""
    from deepomni_hf.data.spoken_qa import spoken_qa_items

    items = spoken_qa_items(seed)
    return [i for i in items if not i.held_out_phrasing], [i for i in items if i.held_out_phrasing]


# ----- tokenizer --------------------------------------------------------------------------------------------------


def train_tokenizer(texts: list[str], bpe_vocab: int):
    """Byte-level BPE of `bpe_vocab` tokens + bos / eos, with the processor's chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from deepomni_hf.processors.processing_deepomni import DEFAULT_CHAT_TEMPLATE

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=bpe_vocab, special_tokens=[BOS_TOKEN, EOS_TOKEN],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)  # fmt: skip
    tokenizer.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=BOS_TOKEN, eos_token=EOS_TOKEN,
                                   pad_token=EOS_TOKEN, clean_up_tokenization_spaces=False)  # fmt: skip
    fast.chat_template = DEFAULT_CHAT_TEMPLATE
    return fast


# ----- packed training blocks ---------------------------------------------------------------------------------------


class PackedBlocks(torch.utils.data.Dataset):
    """`num_blocks` blocks of `block_size` tokens cut from one seeded stream of documents. The stream interleaves
    shuffled passes over the QA chats and over the WordNet documents so that QA chats make up `qa_share` of the
    tokens; documents run on across block edges (plain packing, as in LLM pretraining)."""

    def __init__(self, qa_ids: list[list[int]], text_ids: list[list[int]], num_blocks: int, block_size: int,
                 qa_share: float, seed: int):  # fmt: skip
        rng = random.Random(f"{seed}:blocks")
        need = num_blocks * block_size + 1
        stream: list[int] = []
        qa_tokens = text_tokens = 0
        qa_order, text_order = [], []
        while len(stream) < need:
            use_qa = qa_tokens <= qa_share * max(1, qa_tokens + text_tokens)
            order, source = (qa_order, qa_ids) if use_qa else (text_order, text_ids)
            if not order:
                order.extend(rng.sample(range(len(source)), len(source)))
            document = source[order.pop()]
            stream.extend(document)
            qa_tokens, text_tokens = (qa_tokens + len(document), text_tokens) if use_qa else (qa_tokens, text_tokens + len(document))  # fmt: skip
        self.tokens = torch.tensor(stream[: num_blocks * block_size], dtype=torch.long).view(num_blocks, block_size)
        self.qa_share = qa_tokens / (qa_tokens + text_tokens)

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def __getitem__(self, index: int) -> dict:
        return {"input_ids": self.tokens[index], "labels": self.tokens[index]}


# ----- model and trainer ------------------------------------------------------------------------------------------


def model_config(size: str, tokenizer):
    from transformers import DeepseekV2Config

    spec = dict(SIZES[size])
    spec.pop("bpe_vocab")
    return DeepseekV2Config(**spec, max_position_embeddings=4096, tie_word_embeddings=False,
                            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                            pad_token_id=tokenizer.eos_token_id, router_aux_loss_coef=0.01)  # fmt: skip


def make_trainer_class():
    from transformers import Trainer, TrainerCallback
    from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

    class PretrainTrainer(Trainer):
        """LM loss + `router_aux_loss_coef` × the Switch balance loss over the MoE layers' router logits."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            outputs = model(**inputs, output_router_logits=True)
            loss = outputs.loss
            config = model.config
            if outputs.router_logits:
                aux = load_balancing_loss_func(outputs.router_logits, config.n_routed_experts, config.num_experts_per_tok)
                loss = loss + config.router_aux_loss_coef * aux
            return (loss, outputs) if return_outputs else loss

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            # `save_pretrained` writes the experts as legacy per-expert keys, which Trainer's own resume loads with
            # `load_state_dict` and so silently skips (transformers 5.24); `from_pretrained` fuses them back.
            model = model if model is not None else self.model
            model.load_state_dict(type(model).from_pretrained(resume_from_checkpoint).state_dict())

    class SaveEveryMinutes(TrainerCallback):
        """Asks the Trainer to save a checkpoint every `minutes` of wall time (CPU step times vary with load)."""

        def __init__(self, minutes: float):
            self.seconds, self.last = minutes * 60, time.time()

        def on_step_end(self, args, state, control, **kwargs):
            if time.time() - self.last >= self.seconds:
                control.should_save, self.last = True, time.time()
            return control

    return PretrainTrainer, SaveEveryMinutes


# ----- evaluation -------------------------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """Lower case, punctuation and articles dropped, spaces collapsed ("Fifty-six." → "fifty six")."""
    words = re.sub(r"[^\w\s]", " ", text.lower()).split()
    return " ".join(w for w in words if w not in ("a", "an", "the"))


@torch.no_grad()
def greedy_answers(model, tokenizer, questions: list[str], batch_size: int = 64, max_new_tokens: int = 12) -> list[str]:
    tokenizer.padding_side = "left"
    answers = []
    for start in range(0, len(questions), batch_size):
        prompts = [render_text_chat(q) for q in questions[start : start + batch_size]]
        batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
        answers += tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    return [a.strip() for a in answers]


def qa_accuracy(model, tokenizer, items) -> dict:
    replies = greedy_answers(model, tokenizer, [i.question for i in items])
    per_type: dict[str, list[int]] = {}
    for item, reply in zip(items, replies):
        per_type.setdefault(item.type, []).append(int(normalise(reply) == normalise(item.answer)))
    total = [hit for hits in per_type.values() for hit in hits]
    return {"accuracy": sum(total) / len(total), "n": len(total),
            "per_type": {k: round(sum(v) / len(v), 4) for k, v in sorted(per_type.items())},
            "examples": [{"question": i.question, "answer": i.answer, "reply": r} for i, r in list(zip(items, replies))[:5]]}  # fmt: skip


@torch.no_grad()
def perplexity(model, tokenizer, documents: list[str], batch_size: int = 32) -> float:
    """exp(mean token NLL) of `<bos>document<eos>` over the documents."""
    tokenizer.padding_side = "right"
    total_nll, total_tokens = 0.0, 0
    for start in range(0, len(documents), batch_size):
        texts = [BOS_TOKEN + d + EOS_TOKEN for d in documents[start : start + batch_size]]
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False, truncation=True, max_length=512)
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        logits = model(**batch).logits[:, :-1].float()
        target = labels[:, 1:]
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                                ignore_index=-100, reduction="sum")  # fmt: skip
        total_nll += nll.item()
        total_tokens += int((target != -100).sum())
    return math.exp(total_nll / total_tokens)


def evaluate(model, tokenizer, train_items, held_items, held_docs, args) -> dict:
    model.eval()
    rng = random.Random(f"{args.seed}:eval")
    train_sample = rng.sample(train_items, min(args.eval_train_sample, len(train_items)))
    held_sample = rng.sample(held_items, min(args.eval_held_out_sample or len(held_items), len(held_items)))
    return {
        "text_qa_train_phrasings": qa_accuracy(model, tokenizer, train_sample),
        "text_qa_held_out_phrasing": qa_accuracy(model, tokenizer, held_sample),
        "wordnet_held_out_perplexity": round(perplexity(model, tokenizer, held_docs), 3),
        "wordnet_held_out_documents": len(held_docs),
    }


# ----- main -------------------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="run folder: checkpoints, tokenizer, final model")
    parser.add_argument("--size", choices=sorted(SIZES), default="base")
    parser.add_argument("--seed", type=int, default=0, help="the corpus split (held-out phrasing / facts) and init")
    parser.add_argument("--data-seed", type=int, default=None, help="order of the packed documents (default: --seed)")
    parser.add_argument("--init-from", default=None, help="continue from a trained model folder (its weights and "
                        "tokenizer; a new optimizer and schedule), e.g. a QA-heavy second phase")  # fmt: skip
    parser.add_argument("--max-steps", type=int, default=1600)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--qa-share", type=float, default=0.4, help="share of training tokens that are QA chats")
    parser.add_argument("--wordnet-limit", type=int, default=None, help="use only the first N WordNet documents")
    parser.add_argument("--save-minutes", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval-train-sample", type=int, default=600, help="train-phrasing questions scored at the end")
    parser.add_argument("--eval-held-out-sample", type=int, default=None, help="held-out-phrasing questions scored "
                        "at the end (default: all)")  # fmt: skip
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output")
    parser.add_argument("--evaluate-only", action="store_true", help="score OUTPUT/final again")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from transformers import DeepseekV2ForCausalLM, PreTrainedTokenizerFast, TrainingArguments, set_seed
    from transformers.trainer_utils import get_last_checkpoint

    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    train_items, held_items = qa_texts(args.seed)
    documents = wordnet_documents()[: args.wordnet_limit]
    if not documents:
        sys.exit(f"No WordNet data at {WORDNET_GLOB}: apt-get install wordnet-base.")
    train_docs, held_docs = split_wordnet(documents, args.seed)
    final = output / "final"
    if args.evaluate_only:
        model = DeepseekV2ForCausalLM.from_pretrained(final).eval()
        tokenizer = PreTrainedTokenizerFast.from_pretrained(final)
        results = evaluate(model, tokenizer, train_items, held_items, held_docs, args)
        (final / "eval_results.json").write_text(json.dumps(results, indent=2))
        print(json.dumps({k: v if not isinstance(v, dict) else {"accuracy": v["accuracy"], "per_type": v["per_type"]}
                          for k, v in results.items()}, indent=2))  # fmt: skip
        return results

    chats = [render_text_chat(i.question, i.answer) for i in train_items]
    tokenizer_dir = output / "tokenizer"
    if args.init_from:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(args.init_from)
        tokenizer.save_pretrained(tokenizer_dir)
    elif args.resume and (tokenizer_dir / "tokenizer.json").is_file():
        tokenizer = PreTrainedTokenizerFast.from_pretrained(tokenizer_dir)
    else:
        tokenizer = train_tokenizer(chats + train_docs, SIZES[args.size]["bpe_vocab"])
        tokenizer.save_pretrained(tokenizer_dir)
    print(f"[pretrain] {len(chats)} QA chats, {len(train_docs)} WordNet documents (+{len(held_docs)} held out), "
          f"{len(tokenizer)} tokens", flush=True)  # fmt: skip
    qa_ids = tokenizer(chats, add_special_tokens=False)["input_ids"]
    text_ids = tokenizer([BOS_TOKEN + d + EOS_TOKEN for d in train_docs], add_special_tokens=False)["input_ids"]
    data_seed = args.seed if args.data_seed is None else args.data_seed
    blocks = PackedBlocks(qa_ids, text_ids, args.max_steps * args.batch_size, args.block_size, args.qa_share, data_seed)
    print(f"[pretrain] {blocks.tokens.numel():,} training tokens, QA share {blocks.qa_share:.3f}; "
          f"one pass over the QA chats is {sum(map(len, qa_ids)):,} tokens, over WordNet {sum(map(len, text_ids)):,}", flush=True)  # fmt: skip

    set_seed(args.seed)
    if args.init_from:
        model = DeepseekV2ForCausalLM.from_pretrained(args.init_from)
    else:
        model = DeepseekV2ForCausalLM(model_config(args.size, tokenizer))
    print(f"[pretrain] {sum(p.numel() for p in model.parameters()) / 1e6:.3f} M parameters", flush=True)
    PretrainTrainer, SaveEveryMinutes = make_trainer_class()
    training_args = TrainingArguments(
        output_dir=str(output), max_steps=args.max_steps, per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate, lr_scheduler_type="cosine", warmup_steps=max(1, args.max_steps // 50),
        weight_decay=0.1, adam_beta2=0.95, max_grad_norm=1.0, logging_steps=max(1, min(20, args.max_steps // 10)),
        save_strategy="steps", save_steps=10**9, save_total_limit=2, seed=args.seed, data_seed=data_seed,
        use_cpu=True, dataloader_num_workers=0, report_to=[], disable_tqdm=False,
    )  # fmt: skip
    trainer = PretrainTrainer(model=model, args=training_args, train_dataset=blocks,
                              callbacks=[SaveEveryMinutes(args.save_minutes)])  # fmt: skip
    resume = get_last_checkpoint(str(output)) if args.resume else None
    if resume:
        print(f"[pretrain] resuming from {resume}", flush=True)
    start = time.time()
    trainer.train(resume_from_checkpoint=resume)
    wall = time.time() - start
    trainer.save_model(str(final))
    tokenizer.save_pretrained(final)
    model.generation_config.update(do_sample=False, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id)
    model.generation_config.save_pretrained(final)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    results = evaluate(model, tokenizer, train_items, held_items, held_docs, args)
    results.update(train_wall_seconds_this_run=round(wall, 1), max_steps=args.max_steps, seed=args.seed,
                   first_logged_loss=losses[0] if losses else None, last_logged_loss=losses[-1] if losses else None,
                   training_tokens=blocks.tokens.numel(), qa_token_share=round(blocks.qa_share, 4))  # fmt: skip
    (final / "eval_results.json").write_text(json.dumps(results, indent=2))
    print("[pretrain] " + json.dumps({k: (v["accuracy"] if isinstance(v, dict) else v) for k, v in results.items()}), flush=True)
    return results


if __name__ == "__main__":
    main()
