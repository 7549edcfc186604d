"""Batches with hard negatives for Crystal CLIP: rows that share a key (a composition, a crystal
system) are put in the same batch, so the contrastive loss has to tell them apart by what differs.

With random batches of 128 from perov-5, two structures of one composition almost never meet in a
batch, and the InfoNCE loss is solved by matching the composition alone; a batch that holds both
only scores low when the text's structure words (space group, crystal system, structure type,
properties) are read.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class HardNegativeBatchSampler(Sampler[list[int]]):
    """A seeded batch sampler (``DataLoader(batch_sampler=...)``) that puts rows sharing a key in the
    same batch.

    ``keys[i]`` is row i's key (e.g. its reduced formula). Rows whose key is shared by another row
    form groups; each epoch the groups are shuffled and cut into chunks of at most
    ``round(hard_negative_fraction * batch_size)`` rows, and every batch takes whole chunks up to that
    many rows, then fills up with rows whose key is unique. When those run out, chunks fill the
    batches (split where one does not fit); when the groups run out, batches are unique rows only.
    The batches are then shuffled, so the ones with hard negatives are spread over the epoch.

    Every row is used exactly once per epoch; with ``drop_last`` the incomplete last batch is left
    out (fewer than ``batch_size`` rows, different ones each epoch). The order depends only on
    ``seed`` and the epoch: :meth:`set_epoch` (called by Accelerate's loaders) picks the epoch, and
    each iteration moves on to the next one.
    """

    def __init__(
        self,
        keys: Sequence,
        batch_size: int,
        *,
        hard_negative_fraction: float = 0.5,
        seed: int = 0,
        drop_last: bool = True,
    ):
        if batch_size < 2:
            raise ValueError(f"HardNegativeBatchSampler: batch_size must be at least 2, got {batch_size}")
        if not 0.0 < hard_negative_fraction <= 1.0:
            raise ValueError(
                "HardNegativeBatchSampler: hard_negative_fraction must be in (0, 1], got "
                f"{hard_negative_fraction}"
            )
        if len(keys) == 0:
            raise ValueError("HardNegativeBatchSampler: no rows (keys is empty)")
        self.keys = list(keys)
        self.batch_size = int(batch_size)
        self.hard_rows = max(2, round(hard_negative_fraction * batch_size))
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        by_key: dict = {}
        for i, key in enumerate(self.keys):
            by_key.setdefault(key, []).append(i)
        self.groups = [rows for rows in by_key.values() if len(rows) >= 2]
        self.singles = [rows[0] for rows in by_key.values() if len(rows) == 1]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = len(self.keys)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def batches(self, epoch: int) -> list[list[int]]:
        """The batches of ``epoch`` (the last one incomplete when the rows do not fill it)."""
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)

        def shuffled(items: list) -> list:
            return [items[int(i)] for i in torch.randperm(len(items), generator=g)]

        chunks: list[list[int]] = []
        for group in shuffled(self.groups):
            rows = shuffled(group)
            chunks.extend(rows[i : i + self.hard_rows] for i in range(0, len(rows), self.hard_rows))
        pending, singles = deque(chunks), deque(shuffled(self.singles))
        out: list[list[int]] = []
        while pending or singles:
            batch: list[int] = []
            while pending and len(batch) + len(pending[0]) <= self.hard_rows:
                batch.extend(pending.popleft())
            while singles and len(batch) < self.batch_size:
                batch.append(singles.popleft())
            while pending and len(batch) < self.batch_size:
                room = self.batch_size - len(batch)
                chunk = pending.popleft()
                batch.extend(chunk[:room])
                if len(chunk) > room:
                    pending.appendleft(chunk[room:])
            out.append(batch)
        full = [b for b in out if len(b) == self.batch_size]
        last = [b for b in out if len(b) < self.batch_size]  # at most one: the rows ran out
        return shuffled(full) + last

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.batches(self.epoch)
        self.epoch += 1
        for batch in batches:
            if self.drop_last and len(batch) < self.batch_size:
                continue
            yield batch

    def stats(self, epoch: int = 0) -> dict:
        """How hard one epoch's batches are: rows in groups, and the mean number of same-key pairs
        per batch (against a shuffled batch's, for comparison)."""
        batches = [b for b in self.batches(epoch) if not self.drop_last or len(b) == self.batch_size]
        pairs = 0
        for batch in batches:
            counts: dict = {}
            for i in batch:
                counts[self.keys[i]] = counts.get(self.keys[i], 0) + 1
            pairs += sum(c * (c - 1) // 2 for c in counts.values())
        n, b = len(self.keys), self.batch_size
        # two rows of one key share a random batch of b (out of n rows) with probability (b - 1) / (n - 1)
        random_pairs = (
            sum(len(g) * (len(g) - 1) // 2 for g in self.groups) * (b - 1) / max(n - 1, 1) / (n / b)
        )
        return {
            "rows": n,
            "rows_in_groups": sum(len(g) for g in self.groups),
            "groups": len(self.groups),
            "batches": len(batches),
            "same_key_pairs_per_batch": pairs / max(len(batches), 1),
            "same_key_pairs_per_random_batch": random_pairs,
        }
