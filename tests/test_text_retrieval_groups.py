"""hfmat.text.retrieval beyond random candidates: retrieval inside groups that share a composition, and
retrieval by an attribute (crystal system, space group) that many candidates share."""

from __future__ import annotations

import pytest
import torch

from hfmat.text.retrieval import attribute_retrieval, grouped_retrieval

EYE = torch.eye(4)


def test_grouped_retrieval_finds_partners_and_counts_ties_against():
    # pairs 0-1 and 2-3 share a composition; identical embeddings: every partner ranks first
    out = grouped_retrieval(EYE, EYE, [[0, 1], [2, 3]], texts=["a", "b", "c", "d"])
    assert out["text_to_crystal_top1"] == 1.0 and out["crystal_to_text_top1"] == 1.0
    assert out["chance_top1"] == 0.5 and out["queries"] == 4 and out["separable"] == 1.0
    assert out["distinct_groups"] == 2 and out["text_to_crystal_top1_distinct"] == 1.0
    # swapped crystals inside each group: every query ranks the wrong one first
    swapped = EYE[[1, 0, 3, 2]]
    assert grouped_retrieval(EYE, swapped, [[0, 1], [2, 3]])["text_to_crystal_top1"] == 0.0
    # one text for both crystals of a group: a tie, so crystal -> text never wins there
    same_text = EYE.clone()
    same_text[1] = same_text[0]
    out = grouped_retrieval(same_text, EYE, [[0, 1], [2, 3]], texts=["x", "x", "c", "d"])
    assert out["crystal_to_text_top1"] == 0.5 and out["separable"] == 0.5
    assert out["distinct_groups"] == 1 and out["crystal_to_text_top1_distinct"] == 1.0


def test_grouped_retrieval_skips_singletons_and_refuses_no_group():
    out = grouped_retrieval(EYE, EYE, [[0], [1, 2, 3]])
    assert out["groups"] == 1 and out["queries"] == 3 and out["chance_top1"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="at least one group"):
        grouped_retrieval(EYE, EYE, [[0], [1]])
    with pytest.raises(ValueError, match="one shape"):
        grouped_retrieval(EYE, EYE[:3], [[0, 1]])


def test_attribute_retrieval_scores_the_label_of_the_first_crystal():
    labels = ["cubic", "cubic", "tetragonal", "tetragonal"]
    # a query that points at a cubic crystal scores a hit whatever cubic crystal it is
    queries = EYE[[1, 0, 2, 3]]
    out = attribute_retrieval(queries, labels, EYE, labels, num_candidates=4)
    assert out["hit_rate"] == 1.0 and out["base_rate"] == 0.5 and out["queries"] == 4
    wrong = EYE[[2, 3, 0, 1]]  # every query points at a crystal of the other system
    assert attribute_retrieval(wrong, labels, EYE, labels, num_candidates=4)["hit_rate"] == 0.0
    with pytest.raises(ValueError, match="fewer than num_candidates"):
        attribute_retrieval(EYE, labels, EYE, labels, num_candidates=5)
    with pytest.raises(ValueError, match="query labels"):
        attribute_retrieval(EYE, labels[:3], EYE, labels, num_candidates=4)
