"""hfmat.lm.mcts: tree search finds the better of two completions the model ranks the other way
(a toy model and reward), is reproducible under a seed, keeps the CIF grammar with the shipped
model, and ``generate_cifs(search="mcts")`` / ``hfmat generate --search mcts`` return the best
texts with the search statistics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hfmat.lm import CifConstraint, PromptError, generate_cifs
from hfmat.lm.mcts import mcts_search
from hfmat.lm.rewards import CifReward

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "checkpoints" / "cif-gpt2-perov5"


@pytest.fixture(scope="module")
def toy():
    """A one-layer GPT-2 over the words a b x y, trained until it writes "a x" four times out of
    five after <bos> and "b y" otherwise, with its tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<bos>": 1, "<eos>": 2, "a": 3, "b": 4, "x": 5, "y": 6}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>"
    )
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=7, n_positions=8, n_embd=16, n_layer=1, n_head=2, bos_token_id=1, eos_token_id=2
    )
    model = GPT2LMHeadModel(config)
    data = torch.tensor([[1, 3, 5, 2]] * 4 + [[1, 4, 6, 2]])
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(40):
        loss = model(input_ids=data, labels=data).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), tok


def toy_reward(texts, prompts):
    return [1.0 if "b" in t.split() else 0.0 for t in texts]


def test_toy_model_prefers_the_worse_completion(toy):
    model, tok = toy
    with torch.no_grad():
        p = torch.softmax(model(input_ids=torch.tensor([[1]])).logits[0, -1], -1)
        greedy = model.generate(input_ids=torch.tensor([[1]]), do_sample=False, max_length=4, pad_token_id=0)
    assert 0.7 < float(p[3]) < 0.9 and 0.1 < float(p[4]) < 0.3
    assert tok.decode(greedy[0], skip_special_tokens=True).split() == ["a", "x"]


def test_mcts_finds_the_better_of_two_completions(toy):
    model, tok = toy
    result = mcts_search(model, tok, [1], toy_reward, simulations=12, rollout_batch=1, num_best=2, seed=0)
    best = result.best[0]
    assert best.text.split() == ["b", "y"] and best.reward == 1.0 and best.finished
    assert [c.text.split() for c in result.best] == [["b", "y"], ["a", "x"]]
    s = result.stats
    assert s["simulations"] == s["rollouts"] == 12 and s["unique_completions"] == 2
    assert s["best_reward"] == 1.0 and 0 < s["mean_reward"] < 1 and s["root_visits"] == 12
    # the tree holds both first words: the search went down the branch the model doubts
    assert s["tree_nodes"] >= 3


@pytest.mark.parametrize("batch", [1, 4])
def test_mcts_is_reproducible_under_a_seed(toy, batch):
    model, tok = toy

    def run(seed):
        r = mcts_search(model, tok, [1], toy_reward, simulations=8, rollout_batch=batch, seed=seed)
        stats = {k: v for k, v in r.stats.items() if k != "wall_s"}
        return [c.text for c in r.best], stats

    assert run(3) == run(3)


def test_mcts_refuses_bad_settings(toy):
    model, tok = toy
    with pytest.raises(ValueError, match="simulations must be at least 1"):
        mcts_search(model, tok, [1], toy_reward, simulations=0)
    with pytest.raises(ValueError, match="positive temperature"):
        mcts_search(model, tok, [1], toy_reward, temperature=0)
    with pytest.raises(ValueError, match="finite"):
        mcts_search(model, tok, [1], lambda t, p: [float("nan")] * len(t), simulations=1)


@pytest.fixture(scope="module")
def shipped():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(SHIPPED), AutoTokenizer.from_pretrained(SHIPPED)


def test_generate_cifs_mcts_keeps_the_grammar_and_reports_the_search(shipped):
    model, tok = shipped
    constraint = CifConstraint(tok)
    reward = CifReward("validity=1,spacegroup=1")
    samples = generate_cifs(
        model,
        tok,
        compositions=["SrTiO3"],
        spacegroup="Pm-3m",
        num_samples=2,
        search="mcts",
        reward=reward,
        simulations=4,
        search_options={"rollout_batch": 2},
        constraint=constraint,
    )
    assert len(samples) == 2 and [s.index for s in samples] == [0, 1]
    assert all(constraint.accepts(s.text) for s in samples)
    assert samples[0].reward >= samples[1].reward
    assert samples[0].reward == reward([samples[0].text], [samples[0].prompt])[0]
    assert samples[0].search["simulations"] == 4 and samples[0].search["reward_calls"] == 2
    assert samples[0].text.startswith("data_Sr1Ti1O3\n_symmetry_space_group_name_H-M Pm-3m\n")
    with pytest.raises(PromptError, match="search must be one of"):
        generate_cifs(model, tok, compositions=["SrTiO3"], search="beam")
    with pytest.raises(PromptError, match="needs a reward"):
        generate_cifs(model, tok, compositions=["SrTiO3"], search="mcts", simulations=1)


def test_cli_generate_search_mcts(tmp_path, capsys):
    from hfmat.cli import main

    out = tmp_path / "run"
    args = ["generate", "--composition", "SrTiO3", "-n", "1", "--search", "mcts", "--simulations", "3"]
    assert main([*args, "--reward", "validity=1,composition=1", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["search"]["method"] == "mcts" and summary["search"]["reward"] == "validity=1, composition=1"
    )
    (entry,) = summary["files"]
    assert entry["reward"] is not None and entry["search"]["simulations"] == 3
    assert main([*args[:-1], "0", "--out", str(tmp_path / "bad")]) == 2
    assert "--simulations" in capsys.readouterr().err
