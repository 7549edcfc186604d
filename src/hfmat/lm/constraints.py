"""Constrained decoding: a ``transformers.LogitsProcessor`` that keeps generation inside the
canonical CIF grammar (:mod:`hfmat.lm.grammar`).

Speed: a token is allowed in a grammar state when every one of its characters is. The allowed
set of a state is found by walking a character trie of the whole vocabulary from that state
(only the branches the grammar accepts are visited) and is cached as a boolean mask; the state
reached by (state, token) is cached too. Inside fixed text (tags, fixed values) only the longest
matching tokens are offered, so a tag is written as one token, as the tokenizer writes it. Each row's state is advanced incrementally from the
tokens added since the previous call, never by re-reading the whole text.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

from hfmat.lm.grammar import CifGrammar

__all__ = ["CifConstraint", "CifLogitsProcessor", "ConstraintError"]


class ConstraintError(ValueError):
    """A prompt does not follow the canonical CIF grammar."""


class CifConstraint:
    """Token-level view of :class:`CifGrammar` for one tokenizer (shareable across batches)."""

    def __init__(self, tokenizer, grammar: CifGrammar | None = None):
        self.vocab_size = len(tokenizer)
        self.eos_token_id = tokenizer.eos_token_id
        self.special_ids = frozenset(int(i) for i in tokenizer.all_special_ids)
        self.token_text: list[str | None] = [None] * self.vocab_size
        self._trie: dict = {}
        for token_id in range(self.vocab_size):
            if token_id in self.special_ids:
                continue
            text = tokenizer.decode([token_id], skip_special_tokens=False, clean_up_tokenization_spaces=False)
            if not text:
                continue
            self.token_text[token_id] = text
            node = self._trie
            for ch in text:
                node = node.setdefault(ch, {})
            node.setdefault(None, []).append(token_id)
        from hfmat.chemistry import space_group_symbols

        sg_texts = {" " + sg for sg in space_group_symbols()}
        self.sg_token_ids = frozenset(i for i, t in enumerate(self.token_text) if t in sg_texts)
        if grammar is None:
            # a vocabulary without a token for every element symbol spells symbols letter by letter
            from hfmat.chemistry import ELEMENTS

            whole = set(ELEMENTS) <= {t for t in self.token_text if t is not None}
            grammar = CifGrammar(spelled_symbols=not whole)
        self.grammar = grammar
        self._masks: dict = {}
        self._next: dict = {}
        # token -> the tokens whose text strictly extends its text
        self._extensions: dict[int, list[int]] = {}
        for token_id, text in enumerate(self.token_text):
            if text is None:
                continue
            node = self._trie
            for ch in text:
                node = node[ch]
            found, stack = [], [n for k, n in node.items() if k is not None]
            while stack:
                n = stack.pop()
                found.extend(n.get(None, ()))
                stack.extend(v for k, v in n.items() if k is not None)
            self._extensions[token_id] = found

    # --------------------------------------------------------------------------------
    def initial(self):
        return self.grammar.initial()

    def advance(self, state, token_id: int):
        """The state after ``token_id`` (None if the grammar refuses it)."""
        key = (state, token_id)
        try:
            return self._next[key]
        except KeyError:
            pass
        text = self.token_text[token_id] if 0 <= token_id < self.vocab_size else None
        new = None if text is None or state is None else self.grammar.feed(state, text)
        if new is not None and not self.grammar.can_rest(new):
            new = None
        self._next[key] = new
        return new

    def allowed_ids(self, state) -> list[int]:
        if self.grammar.is_end(state):
            return [self.eos_token_id]
        out: list[int] = []
        stack = [(self._trie, state)]
        step = self.grammar.step
        while stack:
            node, st = stack.pop()
            for ch, child in node.items():
                if ch is None:
                    continue
                nxt = step(st, ch)
                if nxt is None:
                    continue
                ids = child.get(None)
                if ids and self.grammar.can_rest(nxt):
                    out.extend(ids)
                    for token_id in ids:
                        self._next[(state, token_id)] = nxt
                stack.append((child, nxt))
        g = self.grammar
        if self.sg_token_ids and not g.at_space_group(g.step(state, " ")):
            # a space-group token (" Pm") is the space group, nowhere else (not " Pm" of "PmMg")
            out = [t for t in out if t not in self.sg_token_ids]
        if len(out) > 1:
            # fixed text is written as the tokenizer writes it: a token that stops inside fixed
            # text (or on the space before the space group) is not offered when a longer allowed
            # token extends it (a tag is one token, not "_" + "c" + ...)
            allowed = set(out)
            keep = []
            for t in out:
                after = self._next.get((state, t))
                if (g.is_literal(after) or g.at_space_group(after)) and any(
                    u in allowed for u in self._extensions[t]
                ):
                    continue
                keep.append(t)
            out = keep
        return out

    def mask(self, state) -> torch.Tensor:
        """Boolean mask over the vocabulary: True where the token may come next."""
        m = self._masks.get(state)
        if m is None:
            m = torch.zeros(self.vocab_size, dtype=torch.bool)
            ids = self.allowed_ids(state) or [self.eos_token_id]  # a dead end ends the text
            if ids:
                m[torch.tensor(ids)] = True
            self._masks[state] = m
        return m

    def state_of(self, token_ids) -> object:
        """The state after a prompt's tokens (special tokens are skipped); None if refused."""
        state = self.initial()
        for token_id in token_ids:
            token_id = int(token_id)
            if token_id in self.special_ids:
                continue
            state = self.advance(state, token_id)
            if state is None:
                return None
        return state

    def accepts(self, text: str) -> bool:
        """Whether ``text`` is a complete canonical CIF under the grammar."""
        state = self.grammar.feed(self.initial(), text)
        return state is not None and self.grammar.is_end(state)


class CifLogitsProcessor(LogitsProcessor):
    """Masks every token the canonical CIF grammar does not allow next.

    Use one instance per ``generate`` call (it keeps each row's state); share the
    :class:`CifConstraint` between calls so its caches carry over. Rows that have produced
    ``<eos>`` are left alone (``generate`` pads them).
    """

    def __init__(self, constraint: CifConstraint):
        self.constraint = constraint
        self.states: list | None = None
        self.done: list[bool] = []
        self.seen = 0

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        c = self.constraint
        rows = input_ids.tolist()
        if self.states is None or len(self.states) != len(rows):
            self.states = []
            for i, ids in enumerate(rows):
                state = c.state_of(ids)
                if state is None:
                    text = "".join(c.token_text[t] or "" for t in ids if t not in c.special_ids)
                    raise ConstraintError(
                        f"prompt of row {i} does not follow the canonical CIF grammar: {text!r}"
                    )
                self.states.append(state)
            self.done = [False] * len(rows)
        else:
            for i, ids in enumerate(rows):
                if self.done[i]:
                    continue
                for token_id in ids[self.seen :]:
                    if token_id == c.eos_token_id:
                        self.done[i] = True
                        break
                    self.states[i] = c.advance(self.states[i], token_id)
                    if self.states[i] is None:  # cannot happen when every step went through the mask
                        self.done[i] = True
                        break
        self.seen = len(rows[0])
        full = torch.ones(c.vocab_size, dtype=torch.bool)
        masks = torch.stack([full if self.done[i] else c.mask(s) for i, s in enumerate(self.states)])
        masks = masks.to(scores.device)
        if masks.shape[1] < scores.shape[1]:  # the model's embedding may be padded past the vocabulary
            pad = torch.zeros(
                masks.shape[0], scores.shape[1] - masks.shape[1], dtype=torch.bool, device=scores.device
            )
            masks = torch.cat([masks, pad], dim=1)
        return scores.masked_fill(~masks, float("-inf"))
