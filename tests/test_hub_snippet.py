"""The "Use a published model" snippets of README.md and docs/finetuning.md run as written against an offline
Hugging Face cache holding the published repo names. The repos hold the tiny compatibility
fixtures, which keeps this test cheap: it checks the code as written (imports, repo ids, calls,
outputs) against today's API; tests/test_hub_shipped.py loads the shipped checkpoints by repo id."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "docs" / "finetuning.md"]
PUBLISHED = {
    "hfmat/cif-tokenizer": "tokenizer",
    "hfmat/cif-gpt2-perov5": "tests/fixtures/lm-tiny",
    "hfmat/crystal-diffusion-perov5": "tests/fixtures/pipeline-tiny",
}


def published_snippet(doc: Path) -> str:
    section = doc.read_text(encoding="utf-8").split("## Use a published model", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no python block under '## Use a published model'"
    return match.group(1)


@pytest.mark.slow  # two samplers: ~20-40 s on 2 busy cores
@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_use_a_published_model_snippet_runs_offline(hf_cache, doc):
    code = published_snippet(doc)
    for repo_id, folder in PUBLISHED.items():
        if f'"{repo_id}"' in code:
            hf_cache(repo_id, REPO / folder)
    assert all(f'"{repo_id}"' in code for repo_id in PUBLISHED if repo_id != "hfmat/cif-tokenizer")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(doc), "exec"), {"__name__": "__snippet__"})
    lines = out.getvalue().splitlines()
    if '"hfmat/cif-tokenizer"' in code:
        assert "['Zn', 'O']" in lines
    assert sum(line.startswith("LM: ") for line in lines) == 2
    diffusion = [line for line in lines if line.startswith("diffusion: ")]
    assert len(diffusion) == 2 and all(line.startswith("diffusion: SrTiO3 [") for line in diffusion)
