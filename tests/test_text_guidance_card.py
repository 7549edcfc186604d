"""benchmarks/text_guidance_card.py: the text-conditioned pipeline's card is written from
bench_text_guidance.py reports (their figures, targets and commands), through hfmat's diffusion card."""

from __future__ import annotations

import json
import shutil

from scripts import load_script

from hfmat import shipped


def _report(rows, pipeline="runs/p_final", prompts=200, samples=5, total_s=600.0):
    return {
        "command": f"python benchmarks/bench_text_guidance.py --pipeline {pipeline} --num-prompts {prompts} --out x",
        "pipeline": pipeline,
        "dataset": "perov_5",
        "split": "test",
        "num_prompts": prompts,
        "samples_per_prompt": samples,
        "steps": 100,
        "corrector_steps": None,
        "seed": 0,
        "unconditional_validity": 0.99,
        "rows": rows,
        "timings_s": {"total_s": total_s},
    }


def _row(style, scale, composition, system=None):
    names = {"composition": composition, "elements": composition}
    if system is not None:
        names["system"] = system
    return {
        "style": style,
        "scale": scale,
        "num_samples": 1000,
        "validity": 0.98,
        "match": names,
        "unconditional_match": {k: 0.0 for k in names},
    }


def test_the_card_text_carries_every_report_its_targets_and_commands():
    card = load_script("benchmarks/text_guidance_card.py")
    main = _report([_row("text_composition", 2.0, 0.613), _row("text_system", 2.0, 0.6, system=0.7)])
    sweep = _report([_row("text_composition", 3.0, 0.655)], prompts=100, total_s=300.0)
    text = card.evaluation_text([main, sweep], "accelerate launch t.py", name="crystal-diffusion-perov5-text")
    assert "200 crystals drawn with seed 0, 5 samples per" in text and "guidance scale 2." in text
    assert "| composition | 2 | 1000 | 98.0 % | 61.3 % (uncond. 0.0 %)" in text
    assert "| composition | 3 | 1000 | 98.0 % | 65.5 % (uncond. 0.0 %)" in text  # the further table
    assert "Composition prompts of 100 crystals" in text
    assert "**not met**" in text and "(best 65.5 %: text_composition at scale 3)" in text
    assert "--pipeline crystal-diffusion-perov5-text --num-prompts 200" in text and "runs/p_final" not in text
    assert "10.0, 5.0 minutes" in text and "OMP_NUM_THREADS=1 accelerate launch t.py" in text
    met = _report([_row("text_system", 2.0, 0.85, system=0.9)])
    assert "The issue's targets are met" in card.evaluation_text([met])


def test_the_card_is_written_into_a_pipeline_folder(tmp_path):
    card = load_script("benchmarks/text_guidance_card.py")
    folder = tmp_path / "pipe"
    shutil.copytree(shipped.shipped_model(shipped.DIFFUSION_TEXT), folder)
    (folder / "README.md").unlink()
    reports = tmp_path / "r.json"
    reports.write_text(json.dumps(_report([_row("text_composition", 2.0, 0.5)])))
    path = card.main([str(folder), str(reports), "--name", shipped.DIFFUSION_TEXT])
    text = path.read_text()
    assert path == folder / "README.md"
    assert "## Evaluation" in text and "| composition | 2 | 1000 | 98.0 % | 50.0 % (uncond. 0.0 %)" in text
    assert f'from_pretrained("hfmat/{shipped.DIFFUSION_TEXT}")' in text  # hfmat's diffusion card around it


def test_a_report_on_another_dataset_is_captioned_and_kept_out_of_the_targets():
    card = load_script("benchmarks/text_guidance_card.py")
    main = _report([_row("text_composition", 2.0, 0.5)])
    carbon = {**_report([_row("text_system", 2.0, 0.95, system=0.9)], prompts=50), "dataset": "carbon_24"}
    carbon["num_atoms"] = "target"
    text = card.evaluation_text([main, carbon], "accelerate launch t.py", tower="runs/clip_final")
    assert (
        "System prompts of 50 crystals (Carbon-24 test), 5 samples each, 100 steps, each sample with its"
        in text
    )
    assert "**not met**" in text and "95.0 %" in text  # the carbon table is shown, not counted
    assert "the text tower is Crystal CLIP's, `runs/clip_final`" in text


def test_element_guidance_is_named_in_the_protocol_and_in_a_table_that_differs():
    card = load_script("benchmarks/text_guidance_card.py")
    main = {**_report([_row("text_composition", 2.0, 0.86)]), "element_guidance": 1.0}
    off = {**_report([_row("text_composition", 2.0, 0.58)]), "element_guidance": 0.0}
    text = card.evaluation_text([main, off])
    assert "Element guidance 1: the atom types are drawn with the pipeline's element head" in text
    assert "Composition prompts of 200 crystals, 5 samples each, 100 steps, without element guidance," in text
    plain = card.evaluation_text([_report([_row("text_composition", 2.0, 0.58)])])  # older reports: no key
    assert "lement guidance" not in plain
