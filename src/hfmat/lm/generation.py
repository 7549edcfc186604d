"""Sampling CIF files from a causal language model: batched, KV-cached ``model.generate``."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch

from hfmat.cif.tags import LOOPS_PREAMBLE
from hfmat.lm.constraints import CifConstraint, CifLogitsProcessor
from hfmat.lm.prompts import PromptError, composition_prompt, unconditional_prompt

__all__ = ["GeneratedCif", "generate_cifs", "check_fits_context"]

#: Decoding strategies of :func:`generate_cifs`: plain sampling, or tree search towards a reward.
SEARCHES = ("sample", "mcts")
#: Largest Wyckoff multiplicity in a conventional cell (Fm-3m 192l): a row holds at most this many atoms.
_MAX_MULTIPLICITY = 192


@dataclass
class GeneratedCif:
    """One sample: the model's text, its structure (None when it does not parse) and its validity.

    ``text`` is the raw canonical CIF the model wrote (hfmat's internal format, docs/cif_format.md:
    the asymmetric unit only, so other programs read it as a fraction of the cell); hand
    ``sample.cif``, a standard P1 CIF with every site, to other programs. ``validity`` is
    ``check_validity(text, mode="strict")``: CrystaLLM's space-group check on the generated text.
    """

    prompt: str
    text: str
    structure: object | None
    validity: object
    finished: bool  # ended with <eos> (not cut by max_new_tokens)
    num_new_tokens: int
    index: int = 0  # sample index within its prompt
    composition: str | None = field(default=None)
    reward: float | None = None  # search="mcts": the reward of this text
    search: dict | None = None  # search="mcts": the statistics of its prompt's search
    attempts: int = 1  # max_attempts > 1: the draw this sample came from (1: the first)

    @property
    def valid(self) -> bool:
        return bool(self.validity.valid)

    @property
    def valid_at_first_draw(self) -> bool:
        """Valid without a redraw: the raw rate to report beside rejection sampling's final one."""
        return self.valid and self.attempts == 1

    @property
    def cif(self) -> str | None:
        """The structure as a standard P1 CIF that pymatgen, ASE, gemmi and VESTA read whole
        (``hfmat.cif.export.structure_to_standard_cif``); None when there is no structure."""
        if self.structure is None:
            return None
        from hfmat.cif.export import structure_to_standard_cif

        return structure_to_standard_cif(self.structure)


def _context_length(model) -> int:
    return int(getattr(model.config, "n_positions", None) or model.config.max_position_embeddings)


def check_fits_context(prompt: str, tokenizer, context: int) -> int:
    """Raise :class:`PromptError` if no CIF for ``prompt``'s composition fits in ``context`` tokens.

    The bound is a skeleton CIF with the fewest atom-site rows the composition allows (one per
    element, more when an element has more atoms than the largest Wyckoff multiplicity). Returns
    that lower bound in tokens.
    """
    from hfmat.lm.grammar import formula_context

    first = prompt.split("\n", 1)[0]
    ctx = formula_context(first[len("data_") :])
    if ctx is None:
        raise PromptError(f"prompt {prompt!r} does not start with a canonical data_ line")
    rows = []
    index = 0
    for el, n in zip(ctx.elements, ctx.counts):
        for _ in range(math.ceil(n / _MAX_MULTIPLICITY)):
            rows.append(f"{el} {el}{index} 1 0.0000 0.0000 0.0000 1\n")
            index += 1
    skeleton = (
        f"{first}\n_symmetry_space_group_name_H-M P1\n"
        + "".join(f"_cell_length_{k} 1.0000\n" for k in "abc")
        + "".join(f"_cell_angle_{k} 90.0000\n" for k in ("alpha", "beta", "gamma"))
        + "_symmetry_Int_Tables_number 1\n"
        + f"_chemical_formula_structural {ctx.reduced_formula}\n_chemical_formula_sum '{ctx.formula_sum}'\n"
        + f"_cell_volume 1.0000\n_cell_formula_units_Z {ctx.formula_units}\n"
        + "".join(line + "\n" for line in LOOPS_PREAMBLE)
        + "".join(rows)
    )
    needed = len(tokenizer(skeleton, add_special_tokens=False)["input_ids"]) + 2  # <bos>, <eos>
    if needed > context:
        raise PromptError(
            f"composition {ctx.formula} ({sum(ctx.counts)} atoms) needs at least {needed} tokens, "
            f"more than the model's context of {context}"
        )
    return needed


def _check_new_tokens(max_new_tokens: int | None, context: int, longest_prompt: int) -> None:
    """Refuse a ``max_new_tokens`` that is not a positive integer; warn when it is more than the
    model's positions leave after the longest prompt (generation stops there: GPT-2 has no position
    embedding beyond its context, and ``model.generate`` past it ends in an IndexError)."""
    if max_new_tokens is None:
        return
    if isinstance(max_new_tokens, bool) or int(max_new_tokens) != max_new_tokens or max_new_tokens < 1:
        raise PromptError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    room = context - longest_prompt
    if max_new_tokens > room:
        warnings.warn(
            f"max_new_tokens={max_new_tokens} is more than the model has room for: it has {context} "
            f"positions and the longest prompt takes {longest_prompt}, so at most {room} new tokens are "
            "generated",
            UserWarning,
            stacklevel=3,
        )


def _prompts(compositions, spacegroup, formula_units) -> list[tuple[str, str | None]]:
    if compositions is None:
        if spacegroup is not None:
            raise PromptError(
                "a space group needs a composition (the space-group line follows the data_ line)"
            )
        return [(unconditional_prompt(), None)]
    if isinstance(compositions, str) or not hasattr(compositions, "__iter__"):
        compositions = [compositions]
    compositions = list(compositions)
    if not compositions:
        raise PromptError("no compositions given")
    if spacegroup is None or isinstance(spacegroup, (str, int)):
        groups = [spacegroup] * len(compositions)
    else:
        groups = list(spacegroup)
        if len(groups) != len(compositions):
            raise PromptError(f"{len(groups)} space groups for {len(compositions)} compositions")
    out = []
    for comp, sg in zip(compositions, groups):
        prompt = composition_prompt(comp, sg, formula_units)
        out.append((prompt, prompt.split("\n", 1)[0][len("data_") :]))
    return out


def model_temperature(model) -> float:
    """The sampling temperature a checkpoint asks for in its ``generation_config.json``: its
    ``temperature`` (1.0 when it names none), or 0 (greedy) when it sets ``do_sample`` false."""
    config = getattr(model, "generation_config", None)
    if config is None:
        return 1.0
    if getattr(config, "do_sample", True) is False:
        return 0.0
    temperature = getattr(config, "temperature", None)
    return 1.0 if temperature is None else float(temperature)


@torch.no_grad()
def generate_cifs(
    model,
    tokenizer,
    compositions=None,
    spacegroup=None,
    num_samples: int = 1,
    temperature: float | None = None,
    top_k: int | None = 10,
    max_new_tokens: int | None = None,
    batch_size: int = 32,
    seed: int = 0,
    constrained: bool = True,
    formula_units: int | None = None,
    validate: bool = True,
    progress: bool = False,
    constraint: CifConstraint | None = None,
    cache_implementation: str | None = "static",
    search: str = "sample",
    reward=None,
    simulations: int = 32,
    search_options: dict | None = None,
    max_attempts: int = 1,
) -> list[GeneratedCif]:
    """Sample ``num_samples`` CIFs per composition (or unconditionally when ``compositions`` is None).

    Returns one :class:`GeneratedCif` per sample, composition-major (all samples of the first
    composition first). Every input is checked before anything is generated: unknown elements,
    empty or unparseable compositions, unknown space groups and compositions whose CIF cannot
    fit in the model's context raise :class:`PromptError`. Sampling is reproducible under
    ``seed`` for the same ``batch_size``. ``temperature=None`` takes the model's own
    (:func:`model_temperature`: its ``generation_config.json``, 1.0 when it names none);
    ``temperature=0`` means greedy decoding.
    ``cache_implementation`` is passed to ``generate``: "static" preallocates the KV cache (the
    default dynamic cache re-concatenates it at every step, which dominates on CPU).

    ``search="mcts"``: Monte Carlo tree search towards ``reward`` (a
    :class:`hfmat.lm.rewards.CifReward` or ``reward(texts, prompts) -> floats``) with
    ``simulations`` rollouts per prompt, returning the ``num_samples`` best distinct texts of each
    search with ``reward`` and ``search`` (its statistics) set; ``search_options`` go to
    :func:`hfmat.lm.mcts.mcts_search` (``c_puct``, ``rollout_batch``, ``max_children``). See
    docs/reward_guidance.md.

    ``max_attempts > 1`` is rejection sampling: a sample that fails a validity check is drawn again
    (a fresh draw for the same prompt, seeded) up to ``max_attempts`` draws in all; each sample
    records the draw it came from in ``attempts``, and one that never passes keeps its last draw.
    Report the first-draw validity (``valid_at_first_draw``) next to the final one.
    """
    from transformers import LogitsProcessorList

    from hfmat.cif.validity import check_validity

    if num_samples < 1:
        raise PromptError(f"num_samples must be at least 1, got {num_samples}")
    if batch_size < 1:
        raise PromptError(f"batch_size must be at least 1, got {batch_size}")
    if temperature is None:
        temperature = model_temperature(model)
    if not (math.isfinite(temperature) and temperature >= 0):
        raise PromptError(f"temperature must be 0 (greedy) or positive, got {temperature}")
    if search not in SEARCHES:
        raise PromptError(f"search must be one of {', '.join(SEARCHES)}, got {search!r}")
    if isinstance(max_attempts, bool) or int(max_attempts) != max_attempts or max_attempts < 1:
        raise PromptError(f"max_attempts must be a positive integer, got {max_attempts!r}")
    if max_attempts > 1 and not validate:
        raise PromptError("max_attempts > 1 redraws invalid samples, so it needs validate=True")
    if max_attempts > 1 and temperature == 0:
        raise PromptError(
            "max_attempts > 1 needs sampling (temperature > 0): greedy decoding redraws the same text"
        )
    if max_attempts > 1 and search != "sample":
        raise PromptError(f'max_attempts > 1 is rejection sampling: search must be "sample", got {search!r}')
    if search == "mcts" and (
        isinstance(simulations, bool) or int(simulations) != simulations or simulations < 1
    ):
        raise PromptError(f"simulations must be a positive integer, got {simulations!r}")
    if search == "mcts" and reward is None:
        raise PromptError(
            'search="mcts" needs a reward, e.g. hfmat.lm.rewards.CifReward("validity=1,energy=0.1")'
        )
    context = _context_length(model)
    prompts = _prompts(compositions, spacegroup, formula_units)
    encoded = []
    for prompt, _ in prompts:
        ids = [tokenizer.bos_token_id] + tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if tokenizer.unk_token_id is not None and tokenizer.unk_token_id in ids:
            raise PromptError(f"prompt {prompt!r} has text the tokenizer cannot represent")
        if compositions is not None:
            check_fits_context(prompt, tokenizer, context)
        if len(ids) >= context:
            raise PromptError(f"prompt {prompt!r} is {len(ids)} tokens, the model's context is {context}")
        encoded.append(ids)
    _check_new_tokens(max_new_tokens, context, max(map(len, encoded)))
    if constrained and constraint is None:
        constraint = CifConstraint(tokenizer)
    if constrained:
        for (prompt, _), ids in zip(prompts, encoded):
            if constraint.state_of(ids) is None:
                raise PromptError(f"prompt {prompt!r} does not follow the canonical CIF grammar")
    if search == "mcts":
        from hfmat.lm.mcts import generate_with_mcts

        options = dict(search_options or {})
        if max_new_tokens is not None:
            options["max_new_tokens"] = int(max_new_tokens)
        return generate_with_mcts(
            model,
            tokenizer,
            prompts,
            encoded,
            reward=reward,
            simulations=int(simulations),
            num_samples=num_samples,
            constraint=constraint if constrained else None,
            seed=seed,
            validate=validate,
            progress=progress,
            temperature=temperature,
            top_k=top_k,
            **options,
        )

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    sampling = temperature is not None and temperature > 0

    def draw(jobs, draw_seed, attempt):
        """One sample per (prompt, sample) job, batched by prompt length so no batch needs padding."""
        jobs = sorted(jobs, key=lambda job: len(encoded[job[0]]))
        batches, start = [], 0
        while start < len(jobs):
            length, end = len(encoded[jobs[start][0]]), start
            while end < len(jobs) and end - start < batch_size and len(encoded[jobs[end][0]]) == length:
                end += 1
            batches.append(jobs[start:end])
            start = end
        iterator = batches
        if progress:
            from tqdm.auto import tqdm

            desc = "generate" if attempt == 1 else f"redraw {attempt}/{max_attempts}"
            iterator = tqdm(batches, desc=desc, unit="batch")
        drawn = {}
        for b, batch in enumerate(iterator):
            input_ids = torch.tensor([encoded[p] for p, _ in batch], dtype=torch.long, device=device)
            limit = context - input_ids.shape[1]
            new_tokens = limit if max_new_tokens is None else min(int(max_new_tokens), limit)
            torch.manual_seed(int(draw_seed) * 1_000_003 + b)
            kwargs = (
                dict(do_sample=sampling, temperature=temperature, top_k=top_k)
                if sampling
                else dict(do_sample=False)
            )
            out = model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_length=input_ids.shape[1] + new_tokens,  # overrides generation_config.max_length
                # a fresh processor per call: it keeps each row's grammar state
                logits_processor=LogitsProcessorList([CifLogitsProcessor(constraint)])
                if constrained
                else None,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                use_cache=True,
                cache_implementation=cache_implementation,
                **kwargs,
            )
            for row, (p, s) in enumerate(batch):
                new = out[row, input_ids.shape[1] :].tolist()
                finished = tokenizer.eos_token_id in new
                if finished:
                    new = new[: new.index(tokenizer.eos_token_id)]
                new = [t for t in new if t != tokenizer.pad_token_id]
                prompt, comp = prompts[p]
                text = prompt + tokenizer.decode(
                    new, skip_special_tokens=True, clean_up_tokenization_spaces=False
                )
                report = check_validity(text, mode="strict") if validate else None
                drawn[(p, s)] = GeneratedCif(
                    prompt=prompt,
                    text=text,
                    structure=getattr(report, "structure", None),
                    validity=report,
                    finished=finished,
                    num_new_tokens=len(new),
                    index=s,
                    composition=comp,
                    attempts=attempt,
                )
        return drawn

    results = draw([(p, s) for p in range(len(prompts)) for s in range(num_samples)], seed, 1)
    for attempt in range(2, int(max_attempts) + 1):
        redo = [job for job, sample in results.items() if not sample.valid]
        if not redo:
            break
        results.update(draw(redo, int(seed) + 7919 * (attempt - 1), attempt))
    if was_training:
        model.train()
    return [results[(p, s)] for p in range(len(prompts)) for s in range(num_samples)]
