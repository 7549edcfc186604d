"""Monte Carlo tree search decoding: steer a CIF language model towards texts a reward likes
(CrystaLLM's MCTS decoding, run in-process on the Hugging Face stack).

The tree is over the model's tokens after the prompt. Each simulation

1. *selects* a path from the root by PUCT, ``Q + c_puct * P * sqrt(N_parent) / (1 + N_child)``,
   where ``P`` is the model's sampling distribution at the parent (temperature, top-k and the
   grammar constraint applied: the same distribution plain sampling draws from) and ``Q`` the
   child's mean reward, min-max normalised over the rewards seen so far (unvisited children: 0);
2. *expands* the new node it reaches: one forward pass gives its children's priors (the top
   ``max_children`` tokens of the sampling distribution);
3. *rolls out*: the text is completed by the KV-cached sampler (``model.generate`` with a static
   cache and :class:`hfmat.lm.constraints.CifLogitsProcessor`, as :func:`hfmat.lm.generate_cifs`
   samples), and the finished text is scored by the reward;
4. *backs up* the reward along the path.

Tokens the grammar forces (tags, fixed values) are not decisions: a node follows them at once, so
depth counts real choices. ``rollout_batch`` simulations are selected together (a virtual loss
keeps them apart) and rolled out in one ``generate`` call per prompt length. Every completed
rollout is kept; the search returns the best distinct texts and its statistics. The same seed
gives the same search.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

__all__ = ["MCTSResult", "SearchCompletion", "generate_with_mcts", "mcts_search"]


@dataclass
class SearchCompletion:
    """A finished rollout: the whole text (prompt included), its reward and where it came from."""

    text: str
    reward: float
    score: object | None  # the reward's RewardScore when the reward has .score(), else None
    finished: bool  # ended with <eos> (not cut by the model's context)
    num_new_tokens: int
    simulation: int  # the simulation that first produced it (0-based)


@dataclass
class MCTSResult:
    """The best ``num_best`` distinct completions (highest reward first) and the search's
    statistics (a JSON-ready dict, see :func:`mcts_search`)."""

    prompt: str
    best: list[SearchCompletion]
    stats: dict = field(default_factory=dict)


class _Node:
    __slots__ = ("ids", "state", "children", "priors", "visits", "value", "pending", "terminal", "depth")

    def __init__(self, ids: list[int], state, terminal: bool, depth: int):
        self.ids = ids
        self.state = state
        self.terminal = terminal
        self.depth = depth
        self.children: dict[int, _Node] = {}
        self.priors: list[tuple[int, float]] | None = None  # (token, probability), likeliest first
        self.visits = 0
        self.value = 0.0  # sum of rewards
        self.pending = 0  # virtual visits of the selection in progress


class _Search:
    def __init__(
        self, model, tokenizer, constraint, reward, context, temperature, top_k, c_puct, max_children
    ):
        # context: the longest a text may get (the model's positions, or prompt + max_new_tokens)
        self.model, self.tokenizer, self.constraint, self.reward = model, tokenizer, constraint, reward
        self.context, self.temperature, self.top_k = context, temperature, top_k
        self.c_puct, self.max_children = c_puct, max_children
        self.eos = tokenizer.eos_token_id
        self.low, self.high = math.inf, -math.inf  # rewards seen, for normalising Q
        self.nodes = 0
        self.max_depth = 0

    # ---------------------------------------------------------------------------- tree
    def node(self, ids: list[int], state, depth: int) -> _Node:
        """A node at ``ids``, advanced through every token the grammar forces."""
        c = self.constraint
        while c is not None and state is not None and len(ids) < self.context and ids[-1] != self.eos:
            if c.grammar.is_end(state):
                ids = ids + [self.eos]
                break
            allowed = c.mask(state)
            if int(allowed.sum()) != 1:
                break
            token = int(allowed.nonzero()[0, 0])
            ids = ids + [token]
            state = None if token == self.eos else c.advance(state, token)
        terminal = ids[-1] == self.eos or len(ids) >= self.context
        self.nodes += 1
        self.max_depth = max(self.max_depth, depth)
        return _Node(ids, state, terminal, depth)

    def q(self, node: _Node) -> float:
        n = node.visits + node.pending
        if n == 0 or not self.high > self.low:
            return 0.0
        mean = (node.value + node.pending * self.low) / n  # a pending visit counts as the worst reward
        return (mean - self.low) / (self.high - self.low)

    def select(self, root: _Node) -> list[_Node]:
        """A path root -> leaf by PUCT; adds a virtual visit along it."""
        path = [root]
        node = root
        while not node.terminal and node.priors:
            sqrt_n = math.sqrt(max(node.visits + node.pending, 1))
            best, best_score = None, -math.inf
            for token, prior in node.priors:  # likeliest first: ties go to the likelier token
                child = node.children.get(token)
                if child is None:
                    score = self.c_puct * prior * sqrt_n
                else:
                    score = self.q(child) + self.c_puct * prior * sqrt_n / (1 + child.visits + child.pending)
                if score > best_score:
                    best, best_score = token, score
            child = node.children.get(best)
            if child is None:
                ids = node.ids + [best]
                state = None
                if self.constraint is not None and best != self.eos:
                    state = self.constraint.advance(node.state, best)
                child = self.node(ids, state, node.depth + 1)
                self.expand(child)
                node.children[best] = child
                path.append(child)
                break  # a new node is this simulation's leaf
            node = child
            path.append(node)
        for n in path:
            n.pending += 1
        return path

    def backup(self, path: list[_Node], reward: float) -> None:
        self.low, self.high = min(self.low, reward), max(self.high, reward)
        for n in path:
            n.pending -= 1
            n.visits += 1
            n.value += reward

    def expand(self, node: _Node) -> None:
        """The priors of ``node``'s children: the distribution the sampler draws its next token from
        (the model's logits, then the grammar mask, temperature and top-k, in ``generate``'s order)."""
        if node.terminal:
            return
        device = next(self.model.parameters()).device
        logits = self.model(input_ids=torch.tensor([node.ids], device=device)).logits[0, -1].float().cpu()
        logits = logits[: len(self.tokenizer)]
        if self.constraint is not None:
            logits = logits.masked_fill(~self.constraint.mask(node.state), -math.inf)
        logits = logits / self.temperature
        if self.top_k is not None and self.top_k < logits.numel():
            kth = torch.topk(logits, self.top_k).values[-1]
            logits = logits.masked_fill(logits < kth, -math.inf)
        probs = torch.softmax(logits, dim=-1)
        k = min(self.max_children, int((probs > 0).sum()))
        top = torch.topk(probs, k)
        total = float(top.values.sum())
        node.priors = [(int(t), float(p) / total) for p, t in zip(top.values, top.indices) if p > 0]

    # ---------------------------------------------------------------------------- rollouts
    def rollout(self, leaves: list[_Node], seed: int) -> list[tuple[list[int], bool]]:
        """Completed token ids (and whether each ended with <eos>) for each leaf, sampled as
        :func:`hfmat.lm.generate_cifs` samples; terminal leaves are their own completion.

        The leaves go in one call, left-padded to the longest (GPT-2 takes its positions from the
        attention mask); a padded row that the context cut short is sampled again alone."""
        out: list[tuple[list[int], bool] | None] = [None] * len(leaves)
        rows = []
        for i, leaf in enumerate(leaves):
            if leaf.terminal:
                out[i] = (leaf.ids, leaf.ids[-1] == self.eos)
            else:
                rows.append(i)
        if rows:
            done = self._generate([leaves[i].ids for i in rows], seed * 7919)
            for i, (ids, finished, padded) in zip(rows, done):
                if not finished and padded:
                    ids, finished, _ = self._generate([leaves[i].ids], seed * 7919 + 1 + i)[0]
                out[i] = (ids, finished)
        return out  # type: ignore[return-value]

    def _generate(self, prefixes: list[list[int]], seed: int) -> list[tuple[list[int], bool, bool]]:
        """(prefix + sampled tokens up to and including <eos>, finished, was padded) per prefix."""
        from transformers import LogitsProcessorList

        from hfmat.lm.constraints import CifLogitsProcessor

        device = next(self.model.parameters()).device
        width = max(map(len, prefixes))
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos
        input_ids = torch.tensor(
            [[pad] * (width - len(p)) + p for p in prefixes], dtype=torch.long, device=device
        )
        mask = torch.tensor(
            [[0] * (width - len(p)) + [1] * len(p) for p in prefixes], dtype=torch.long, device=device
        )
        torch.manual_seed(seed)
        processors = (
            LogitsProcessorList([CifLogitsProcessor(self.constraint)])
            if self.constraint is not None
            else None
        )
        gen = self.model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            max_length=self.context,
            logits_processor=processors,
            do_sample=True,
            temperature=self.temperature,
            top_k=self.top_k,
            eos_token_id=self.eos,
            pad_token_id=pad,
            use_cache=True,
            cache_implementation="static",
        )
        out = []
        for row, prefix in enumerate(prefixes):
            new = gen[row, width:].tolist()
            finished = self.eos in new
            if finished:
                new = new[: new.index(self.eos) + 1]
            out.append((prefix + new, finished, len(prefix) < width))
        return out


def _scores(reward, texts: list[str], prompts: list[str]) -> list[tuple[float, object | None]]:
    if hasattr(reward, "score"):
        return [(float(s.total), s) for s in reward.score(texts, prompts)]
    values = reward(texts, prompts)
    if len(values) != len(texts):
        raise ValueError(f"the reward returned {len(values)} values for {len(texts)} texts")
    out = []
    for text, v in zip(texts, values):
        v = float(v)
        if not math.isfinite(v):
            raise ValueError(f"the reward returned {v} for {text[:40]!r}...; a reward must be finite")
        out.append((v, None))
    return out


@torch.no_grad()
def mcts_search(
    model,
    tokenizer,
    prompt_ids: list[int],
    reward,
    simulations: int = 32,
    num_best: int = 1,
    temperature: float = 1.0,
    top_k: int | None = 10,
    c_puct: float = 1.0,
    rollout_batch: int = 8,
    max_children: int = 10,
    constraint=None,
    seed: int = 0,
    prompt: str | None = None,
    max_new_tokens: int | None = None,
) -> MCTSResult:
    """Search for high-reward completions of ``prompt_ids`` (``<bos>`` and the prompt's tokens).

    ``reward``: a :class:`hfmat.lm.rewards.CifReward`, or any ``reward(texts, prompts) -> floats``
    (finite; higher is better). ``simulations``: rollouts in all. ``constraint``: a
    :class:`~hfmat.lm.constraints.CifConstraint` to keep the grammar (None: unconstrained).
    ``max_children``: children per node (the likeliest tokens; top-k caps it too).

    ``stats``: simulations, rollouts, unique completions, reward calls, tree nodes, deepest
    decision, best and mean reward, the simulation the best was first found at, wall seconds.
    """
    if simulations < 1:
        raise ValueError(f"simulations must be at least 1, got {simulations}")
    if rollout_batch < 1 or num_best < 1 or max_children < 1:
        raise ValueError(
            f"rollout_batch, num_best and max_children must be at least 1 (got {rollout_batch}, "
            f"{num_best}, {max_children})"
        )
    if not (temperature is not None and math.isfinite(temperature) and temperature > 0):
        raise ValueError(
            f"MCTS needs a positive temperature (its priors are the sampling distribution), got {temperature}"
        )
    if c_puct < 0 or not math.isfinite(c_puct):
        raise ValueError(f"c_puct must be a non-negative number, got {c_puct}")
    context = int(getattr(model.config, "n_positions", None) or model.config.max_position_embeddings)
    if max_new_tokens is not None:
        context = min(context, len(prompt_ids) + int(max_new_tokens))
    if prompt is None:
        prompt = tokenizer.decode(prompt_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    start = time.perf_counter()
    was_training = model.training
    model.eval()
    search = _Search(model, tokenizer, constraint, reward, context, temperature, top_k, c_puct, max_children)
    state = constraint.state_of(prompt_ids) if constraint is not None else None
    if constraint is not None and state is None:
        raise ValueError(f"prompt {prompt!r} does not follow the canonical CIF grammar")
    root = search.node(list(prompt_ids), state, 0)
    search.expand(root)
    n_prompt = len(prompt_ids)
    found: dict[str, SearchCompletion] = {}
    rewards: list[float] = []
    reward_calls = 0
    done = 0
    iteration = 0
    while done < simulations:
        paths = [search.select(root) for _ in range(min(rollout_batch, simulations - done))]
        completions = search.rollout([p[-1] for p in paths], seed=int(seed) * 1_000_003 + iteration)
        texts = []
        for ids, _ in completions:
            new = [t for t in ids[n_prompt:] if t != search.eos]
            texts.append(
                prompt + tokenizer.decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
            )
        scored = _scores(reward, texts, [prompt] * len(texts))
        reward_calls += 1
        for k, (path, (ids, finished), text, (value, score)) in enumerate(
            zip(paths, completions, texts, scored)
        ):
            search.backup(path, value)
            rewards.append(value)
            if text not in found:
                found[text] = SearchCompletion(
                    text,
                    value,
                    score,
                    finished,
                    len([t for t in ids[n_prompt:] if t != search.eos]),
                    done + k,
                )
        done += len(paths)
        iteration += 1
    if was_training:
        model.train()
    ranked = sorted(found.values(), key=lambda c: (-c.reward, c.simulation))
    best = ranked[0]
    stats = {
        "simulations": done,
        "rollouts": len(rewards),
        "unique_completions": len(found),
        "reward_calls": reward_calls,
        "tree_nodes": search.nodes,
        "max_depth": search.max_depth,
        "root_visits": root.visits,
        "best_reward": best.reward,
        "mean_reward": sum(rewards) / len(rewards),
        "best_found_at": best.simulation,
        "wall_s": time.perf_counter() - start,
    }
    return MCTSResult(prompt=prompt, best=ranked[:num_best], stats=stats)


def generate_with_mcts(
    model,
    tokenizer,
    prompts: list[tuple[str, str | None]],
    encoded: list[list[int]],
    reward,
    simulations: int,
    num_samples: int,
    constraint,
    seed: int,
    validate: bool = True,
    progress: bool = False,
    **options,
) -> list:
    """:func:`hfmat.lm.generate_cifs` with ``search="mcts"``: one search per prompt (checked and
    encoded there), its ``num_samples`` best distinct texts as :class:`~hfmat.lm.GeneratedCif`
    (``reward`` and ``search`` set). When a search found fewer distinct texts than ``num_samples``
    its best ones repeat (``search["unique_completions"]`` says how many there were)."""
    from hfmat.cif.validity import check_validity
    from hfmat.lm.generation import GeneratedCif

    if reward is None:
        raise ValueError(
            'search="mcts" needs a reward (e.g. hfmat.lm.rewards.CifReward("validity=1,energy=0.1"))'
        )
    iterator = list(enumerate(zip(prompts, encoded)))
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="mcts", unit="prompt")
    out = []
    for p, ((prompt, comp), ids) in iterator:
        result = mcts_search(
            model,
            tokenizer,
            ids,
            reward,
            simulations=simulations,
            num_best=num_samples,
            constraint=constraint,
            seed=int(seed) * 1_000_003 + p,
            prompt=prompt,
            **options,
        )
        for s in range(num_samples):
            c = result.best[s % len(result.best)]
            report = check_validity(c.text, mode="strict") if validate else None
            out.append(
                GeneratedCif(
                    prompt=prompt,
                    text=c.text,
                    structure=getattr(report, "structure", None),
                    validity=report,
                    finished=c.finished,
                    num_new_tokens=c.num_new_tokens,
                    index=s,
                    composition=comp,
                    reward=c.reward,
                    search=result.stats,
                )
            )
    return out
