"""benchmarks/bench_diffusion.py on a tiny structure-prediction pipeline: its JSON records every
figure and names no folder of this machine (hfmat.hub.provenance.portable_config), and
``--card-from`` turns it into the pipeline's card and eval_metrics.json."""

from __future__ import annotations

import json
from pathlib import Path

from scripts import load_script

REPO = Path(__file__).resolve().parents[1]


def test_result_json_is_portable_and_becomes_a_card(tiny_diffusion_pipeline, shared_data, tmp_path):
    pipe = tiny_diffusion_pipeline(False)
    folder = tmp_path / "pipe"
    pipe.save_pretrained(folder)
    bench = load_script("benchmarks/bench_diffusion.py")
    out = tmp_path / "result.json"
    bench.main(
        ["--pipeline", str(folder), "--targets", "3", "--k", "2", "--steps", "2", "--train-steps", "0",
         "--threads", "1", "--json", str(out)]
    )  # fmt: skip
    text = out.read_text()
    result = json.loads(text)
    (row,) = result["rows"]
    assert row["targets"] == 3 and row["k"] == 2 and row["structures"] == 6
    assert 0 <= row["match_rate_k1"] <= row["match_rate"] <= 100
    assert not Path(result["args"]["data_dir"]).is_absolute()  # no folder of this machine
    assert str(REPO) not in text
    bench.main(["--pipeline", str(folder), "--card-from", str(out)])
    card = (folder / "README.md").read_text()
    assert "a seeded random subset, 3 at most, not all 3,785" in card
    assert json.loads((folder / "eval_metrics.json").read_text())["runs"][0]["rows"] == result["rows"]
