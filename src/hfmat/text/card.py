"""The cards (README.md) of the text models: a Crystal CLIP folder (template ``model_cards/crystal_clip.md``)
and its text side published alone, the text encoder (``text_encoder.md``) and the prose tokenizer
(``prose_tokenizer.md``); :mod:`hfmat.text.export` writes those two folders.

The figures come from the CLIP folder: ``training_summary.json`` (the run, and retrieval among random
candidates on the test split) and, when present, ``retrieval.json`` (the output of
``benchmarks/bench_crystal_clip.py retrieval-hard --out``: candidates of one composition, and queries
that name no composition).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hfmat.hub.cards import benchmark_eval_results, card_names, model_card

#: The optional file of a CLIP folder with the retrieval-hard benchmark's report.
HARD_RETRIEVAL = "retrieval.json"
#: The seed examples a prose tokenizer's card shows tokenized.
EXAMPLES = (
    "ZnO is a wide bandgap semiconductor",
    "SrTiO3 crystallizes in the cubic Pm-3m space group (No. 221) with the perovskite structure.",
    "TiO2 crystallizes in the tetragonal P4_2/mnm space group (No. 136)",
)
TAGS = ["hfmat", "crystals", "materials-science", "crystal-clip"]

RANDOM_NOTE = (
    "What this measures: every text style here names the crystal's composition, and compositions rarely "
    "repeat within 100 random candidates, so this retrieval is mostly matching the composition: it says "
    "that the two towers agree on chemistry, not that the model tells apart two structures of one "
    "composition. The next table asks that."
)

STRUCTURE_NOTE = (
    "What this measures: every text style here but `text_structure` names the crystal's composition, and "
    "compositions rarely repeat within 100 random candidates, so for those styles this retrieval is mostly "
    "matching the composition: it says that the two towers agree on chemistry. `text_structure` names no "
    "composition, and many candidates share its crystal system and space group, so its row is low by "
    "design. The next table asks whether the model tells apart two structures of one composition."
)


def random_note(records: dict) -> str:
    """The note under the random-candidates table (none when no test retrieval was measured)."""
    if not _test(records):
        return ""
    return STRUCTURE_NOTE if "text_structure" in records["clip"]["text_columns"] else RANDOM_NOTE


LIMITATIONS = (
    "Trained on templated descriptions of one small benchmark (the texts name the composition, the "
    "crystal system, the space group, a structure type and the dataset's properties, in a fixed "
    'wording), so free prose and words the templates never use ("wide", "semiconductor") are '
    "outside what it learned, and so are elements and structures outside the training data. Its "
    "retrieval figures are mostly composition matching (see Measured)."
)


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def read_clip_folder(folder: str | Path) -> dict[str, Any]:
    """The records a card is made from: ``record`` (training_summary.json), ``clip``
    (clip_config.json), ``hard`` (retrieval.json or None), ``text_config`` and ``crystal_config``."""
    folder = Path(folder)
    hard = folder / HARD_RETRIEVAL
    return {
        "record": json.loads((folder / "training_summary.json").read_text()),
        "clip": json.loads((folder / "clip_config.json").read_text()),
        "hard": json.loads(hard.read_text()) if hard.is_file() else None,
        "text_config": json.loads((folder / "text_encoder" / "config.json").read_text()),
        "crystal_config": json.loads((folder / "crystal_encoder" / "config.json").read_text()),
    }


def count_parameters(path: str | Path) -> int:
    """Parameters in a safetensors file (from its header)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())


def text_model(text_config: dict) -> str:
    return (
        f"a `transformers` BertModel ({text_config['hidden_size']} wide, {text_config['num_hidden_layers']} "
        f"layers, {text_config['num_attention_heads']} heads, vocabulary {text_config['vocab_size']:,}, "
        f"texts up to {text_config['max_position_embeddings']} tokens)"
    )


def crystal_model(crystal_config: dict) -> str:
    return (
        f"hfmat's `CrystalEncoder`: the diffusion denoiser's graph network ({crystal_config['hidden_dim']} wide, "
        f"{crystal_config['num_layers']} layers) on the clean crystal at t=0, atom states mean-pooled and "
        f"projected to {crystal_config['embed_dim']}; config.json + safetensors"
    )


def _test(records: dict) -> dict:
    return records["record"]["summary"].get("test") or {}


def random_table(records: dict, *, crystal_to_text: bool = True) -> str:
    """Retrieval among random candidates on the test split, per text column (training_summary.json)."""
    test = _test(records)
    columns = [c for c in records["clip"]["text_columns"] if c in test]
    if not columns:
        return "No held-out retrieval was measured for this model."
    n = test[columns[0]]["num_candidates"]
    head = "| text column | text → crystal top-1 | text → crystal top-5 |"
    if crystal_to_text:
        head += " crystal → text top-1 | crystal → text top-5 |"
    head += " chance top-1 / top-5 | queries |"
    rows = []
    for c in columns:
        r = test[c]
        row = f"| `{c}` | {pct(r['text_to_crystal_top1'])} | {pct(r['text_to_crystal_top5'])} |"
        if crystal_to_text:
            row += f" {pct(r['crystal_to_text_top1'])} | {pct(r['crystal_to_text_top5'])} |"
        rows.append(row + f" {pct(r['chance_top1'])} / {pct(r['chance_top5'])} | {r['queries']:,} |")
    return (
        f"Retrieval on the `{test['split']}` split ({test['pairs']:,} held-out pairs, never trained on), each "
        f"query against {n} candidates (blocks of {n} pairs drawn at random):\n\n"
        + head
        + "\n|"
        + " --- |" * (head.count("|") - 1)
        + "\n"
        + "\n".join(rows)
    )


#: The same-composition rows of the hard table: column -> what its text says.
HARD_TEXTS = {
    "text_composition": "the composition alone",
    "text_system": "composition, crystal system",
    "text_sentence": "the sentence (space group, structure type, properties)",
    "text_sentence_structure_only": "the sentence without its properties",
    "text_structure": "no formula: crystal system, space group, structure type",
}


def hard_section(records: dict) -> str | None:
    """The retrieval-hard tables (retrieval.json), or None when the folder has none."""
    hard = records["hard"]
    if not hard:
        return None
    same, free = hard["same_composition"], hard["formula_free"]
    sizes = ", ".join(str(s) for s in same["group_sizes"])
    rows = []
    for column, said in HARD_TEXTS.items():
        r = same.get(column)
        if not r:
            continue
        distinct = (
            f"{pct(r['text_to_crystal_top1_distinct'])} / {pct(r['crystal_to_text_top1_distinct'])} "
            f"({r['distinct_groups']} groups)"
            if r["distinct_groups"]
            else "no group"
        )
        rows.append(
            f"| `{column}`: {said} | {pct(r['text_to_crystal_top1'])} | {pct(r['crystal_to_text_top1'])} | "
            f"{pct(r['chance_top1'])} | {pct(r['separable'])} | {distinct} |"
        )
    free_rows = [
        f'| {name.replace("_", " ")} | "{r["example"]}" | {pct(r["hit_rate"])} | {pct(r["base_rate"])} | '
        f"{r['labels']} | {r['queries']:,} |"
        for name, r in free.items()
    ]
    return f"""### Retrieval that composition matching cannot solve

**Candidates of one composition.** The `{hard["split"]}` split has {same["groups"]} compositions with more
than one structure (groups of {sizes}; {same["crystals_in_groups"]} crystals): each text ranks the
crystals of its own composition, and each crystal those texts (a tie counts against the query, so two
equal texts score 0 crystal → text). "Texts differ" is the share of queries whose text differs from
the others of its group (the ceiling for text → crystal); the last column is top-1 over the groups
whose texts all differ, where the text says how the crystals differ.

| text | text → crystal top-1 | crystal → text top-1 | chance | texts differ | top-1 where texts differ (text → crystal / crystal → text) |
| --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

**Queries that name no composition**, each against 100 random candidates (blocks as above): a hit
when the crystal ranked first has the crystal system (or space group) the query names; the random
pick scores the share of candidates that have it.

| query names | example | hit rate | random pick | labels in the split | queries |
| --- | --- | --- | --- | --- | --- |
{chr(10).join(free_rows)}

These tables are `{HARD_RETRIEVAL}` in this repository, written by
`{hard["command"]} --out {HARD_RETRIEVAL}`.
"""


def data_paragraph(records: dict) -> str:
    cfg, summary, clip = records["record"]["config"], records["record"]["summary"], records["clip"]
    return (
        f"`{cfg['dataset']}`, split `{cfg['train_split']}`: {summary['train_pairs']:,} crystals trained on, "
        f"{summary['eval_pairs']:,} held out for the eval loss. Each crystal's text is drawn per step from the "
        f"columns {', '.join(f'`{c}`' for c in clip['text_columns'])} made by `hfmat.data.descriptions` "
        "(templates in Chemeleon's styles: the composition; composition and crystal system; a sentence with "
        "the space group, the structure type where known and the dataset's properties in words)"
        + (
            " and `hfmat.text.data` (`text_structure`: the crystal system, space group and structure type "
            'with no formula, as in "a cubic crystal in the Pm-3m space group (No. 221) with the perovskite '
            'structure")'
            if "text_structure" in clip["text_columns"]
            else ""
        )
        + ". "
        + (cfg.get("dataset_note") or "")
    ).strip()


def hard_negative_sentence(summary: dict) -> str:
    """What the run's hard-negative batches were (training_summary.json), or "" for shuffled batches."""
    hard = summary.get("hard_negatives")
    if not hard:
        return ""
    return (
        f" Hard negatives (`hfmat.text.sampling.HardNegativeBatchSampler`): up to {100 * hard['fraction']:.0f} % "
        f"of every batch is crystals that share `{hard['key']}` with another crystal of the batch "
        f"({hard['rows_in_groups']:,} of the {hard['rows']:,} training crystals are in {hard['groups']:,} such "
        f"groups), {hard['same_key_pairs_per_batch']:.1f} same-`{hard['key']}` pairs per batch against "
        f"{hard['same_key_pairs_per_random_batch']:.2f} in a shuffled batch."
    )


def training_paragraph(records: dict) -> str:
    cfg, summary = records["record"]["config"], records["record"]["summary"]
    batch = cfg["per_device_batch_size"]
    return (
        f"{summary['step']:,} optimizer steps ({summary['epochs']:.1f} epochs) in {summary['wall_s'] / 60:.1f} "
        f"minutes; train loss {summary['first_train_loss']:.3f} at the first step, {summary['train_loss']:.3f} at "
        f"the last (batch {batch}; log({batch}) = {math.log(batch):.3f} is the loss of a model that knows "
        f"nothing); eval loss {summary['eval']['loss']:.3f}." + hard_negative_sentence(summary)
    )


def reproduce(records: dict, model_path: str) -> str:
    cfg, summary = records["record"]["config"], records["record"]["summary"]
    test = _test(records)
    lines = [summary["command"]]
    if test:
        lines.append(
            f"python benchmarks/bench_crystal_clip.py retrieval --model {model_path} --dataset {cfg['dataset']} "
            f"--split {test['split']}"
        )
    if records["hard"]:
        lines.append(f"{records['hard']['command']} --out {HARD_RETRIEVAL}")
    return "\n".join(lines)


def eval_results(records: dict, *, crystal_to_text: bool = True):
    """The model-index: text -> crystal (and crystal -> text) top-1/top-5 per text column."""
    test, cfg = _test(records), records["record"]["config"]
    metrics = {}
    for c in records["clip"]["text_columns"]:
        if c not in test:
            continue
        n = test[c]["num_candidates"]
        directions = ("text_to_crystal", "crystal_to_text") if crystal_to_text else ("text_to_crystal",)
        for d in directions:
            for k in (1, 5):
                metrics[f"{d}_top{k}@{n} ({c})"] = 100 * test[c][f"{d}_top{k}"]
    if not metrics:
        return None
    return benchmark_eval_results(
        metrics, task_type="text-crystal-retrieval", dataset_type=cfg["dataset"], dataset_split=test["split"]
    )


def clip_card(
    folder: str | Path,
    repo_id: str | None = None,
    *,
    text_encoder_repo: str | None = None,
    tokenizer_repo: str | None = None,
    model_path: str | None = None,
    license: str = "mit",
):
    """The ``ModelCard`` of a Crystal CLIP folder published as ``repo_id`` (default
    ``hfmat/<model_name>``); ``text_encoder_repo`` / ``tokenizer_repo`` name the repositories its text
    side is published as alone (:mod:`hfmat.text.export`; the card mentions them only when given);
    ``model_path`` is the model as the reproduce commands name it (default: the model's name)."""
    folder = Path(folder)
    records = read_clip_folder(folder)
    name, repo_id = card_names(folder, records["record"], repo_id)
    text_params = count_parameters(folder / "text_encoder" / "model.safetensors")
    crystal_params = count_parameters(folder / "crystal_encoder" / "diffusion_pytorch_model.safetensors")
    return model_card(
        "crystal_clip",
        name=name,
        repo_id=repo_id,
        library_name="transformers",
        tags=TAGS,
        license=license,
        record=records["record"],
        eval_results=eval_results(records),
        parameters=(
            f"{text_params + crystal_params:,} parameters: {text_params:,} in the text encoder, "
            f"{crystal_params:,} in the crystal encoder (and the learned temperature, in clip_config.json)."
        ),
        text_model=text_model(records["text_config"]),
        crystal_model=crystal_model(records["crystal_config"]),
        text_encoder_repo=text_encoder_repo,
        tokenizer_repo=tokenizer_repo,
        data=data_paragraph(records),
        random_table=random_table(records),
        random_note=random_note(records),
        hard_section=hard_section(records),
        training=training_paragraph(records),
        reproduce=reproduce(records, model_path or name),
        limitations=LIMITATIONS,
    )


def write_clip_card(folder: str | Path, repo_id: str | None = None, **kwargs) -> Path:
    """:func:`clip_card` written to ``folder/README.md``."""
    path = Path(folder) / "README.md"
    clip_card(folder, repo_id, **kwargs).save(path)
    return path


def text_side_name(clip_name: str, part: str) -> str:
    """``crystal-clip-perov5`` -> ``crystal-text-encoder-perov5`` (``part="text-encoder"``) or
    ``prose-tokenizer-perov5`` (``part="tokenizer"``); any other name gets a suffix."""
    prefix = "crystal-clip"
    stem = clip_name[len(prefix) :] if clip_name.startswith(prefix) else f"-{clip_name}"
    return f"crystal-text-encoder{stem}" if part == "text-encoder" else f"prose-tokenizer{stem}"


def text_encoder_card(
    clip_folder: str | Path, repo_id: str, *, clip_repo: str, tokenizer_repo: str, license: str = "mit"
):
    """The card of the text encoder published alone (:func:`hfmat.text.export.export_text_encoder`)."""
    clip_folder = Path(clip_folder)
    records = read_clip_folder(clip_folder)
    return model_card(
        "text_encoder",
        name=repo_id.split("/")[-1],
        repo_id=repo_id,
        library_name="transformers",
        pipeline_tag="feature-extraction",
        tags=[*TAGS, "text-encoder", "bert"],
        license=license,
        record=records["record"],
        eval_results=eval_results(records, crystal_to_text=False),
        metadata={"base_model": clip_repo},
        text_model=text_model(records["text_config"]),
        params=f"{count_parameters(clip_folder / 'text_encoder' / 'model.safetensors'):,}",
        clip_repo=clip_repo,
        tokenizer_repo=tokenizer_repo,
        data=data_paragraph(records),
        random_table=random_table(records, crystal_to_text=False),
        random_note=random_note(records),
        hard_section=hard_section(records),
        limitations=LIMITATIONS,
    )


def tokenizer_examples(tokenizer) -> str:
    rows = [f"| {text} | {' '.join(f'`{t}`' for t in tokenizer.tokenize(text))} |" for text in EXAMPLES]
    return "| text | tokens |\n| --- | --- |\n" + "\n".join(rows)


def prose_tokenizer_card(
    clip_folder: str | Path, repo_id: str, *, clip_repo: str, text_encoder_repo: str, license: str = "mit"
):
    """The card of the prose tokenizer published alone (:func:`hfmat.text.export.export_prose_tokenizer`)."""
    from transformers import AutoTokenizer

    clip_folder = Path(clip_folder)
    records = read_clip_folder(clip_folder)
    cfg = records["record"]["config"]
    tok = AutoTokenizer.from_pretrained(clip_folder / "tokenizer")
    return model_card(
        "prose_tokenizer",
        name=repo_id.split("/")[-1],
        repo_id=repo_id,
        library_name="transformers",
        tags=["hfmat", "crystals", "materials-science", "tokenizer", "chemistry"],
        license=license,
        record=records["record"],
        clip_repo=clip_repo,
        text_encoder_repo=text_encoder_repo,
        vocab_size=f"{len(tok):,}",
        learned=f"at most {cfg['tokenizer_vocab_size']:,}" if cfg.get("tokenizer_vocab_size") else "some",
        special_tokens=", ".join(f"`{t}`" for t in tok.all_special_tokens),
        examples=tokenizer_examples(tok),
        data=(
            f"Trained (`hfmat.text.train_prose_tokenizer`) on the descriptions of the crystals Crystal CLIP "
            f"trained on: `{cfg['dataset']}`, split `{cfg['train_split']}`, every text column "
            f"({', '.join(f'`{c}`' for c in records['clip']['text_columns'])}). "
            + (cfg.get("dataset_note") or "")
        ).strip(),
        limitations=(
            "The learned part of the vocabulary comes from templated descriptions of one benchmark, so "
            "everyday words those templates never use are spelled in short pieces (see the first example); "
            "the chemistry rules do not depend on the training text. Space-group symbols are cut out whole "
            "only where the text marks them (`... space group`, `(No. ...)`); elsewhere `Pm` reads as "
            "promethium. Characters outside ASCII other than Å, °, – and × become `[UNK]`."
        ),
    )
