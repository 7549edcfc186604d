"""The web app served on a free loopback port and driven over HTTP with gradio_client, as another
program (or a Space's API user) would: a structure prediction, a file that is not a CIF answered
with its message, then a good request that still works (the server keeps serving after errors)."""

from __future__ import annotations

import os
import socket
import zipfile
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

pytestmark = pytest.mark.slow  # a server start and the models' first calls: ~40 s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def client():
    from gradio_client import Client

    from hfmat.app import build_app

    demo = build_app()
    demo.queue(default_concurrency_limit=1)
    _, url, _ = demo.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True
    )
    assert url.startswith("http://127.0.0.1:")
    yield Client(url, verbose=False)
    demo.close()


#: What /predict returns over HTTP (states and layout boxes are not part of the API): the command,
#: notes, the zip, then per panel (language model, diffusion) its table, menu, plot, checks and CIF.
COMMAND, NOTES, ZIP, LM_TABLE, DIFF_TABLE, DIFF_PLOT = 0, 1, 2, 3, 8, 10


def predict(client, composition: str, seed: int = 0):
    # composition, space group, samples, language model, diffusion pipeline, seed, steps, physics
    return client.predict(
        composition,
        "",
        2,
        "cif-gpt2-perov5",
        "crystal-diffusion-perov5",
        seed,
        10,
        False,
        api_name="/predict",
    )


def rows(table: dict) -> list[dict]:
    return [dict(zip(table["headers"], row)) for row in table["data"]]


def test_predict_then_errors_then_predict_again(client, tmp_path, examples_dir):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    out = predict(client, "SrTiO3")
    command, zip_path, lm_table, diff_table = out[COMMAND], out[ZIP], out[LM_TABLE], out[DIFF_TABLE]
    assert command.splitlines()[0].startswith(
        "hfmat generate --model cif-gpt2-perov5 --composition SrTiO3 -n 2"
    )
    assert command.splitlines()[1].startswith("hfmat diffuse --model crystal-diffusion-perov5")
    for table, model in ((lm_table, "cif-gpt2-perov5"), (diff_table, "crystal-diffusion-perov5")):
        assert [(r["#"], r["model"]) for r in rows(table)] == [(0, model), (1, model)]
    assert all(r["formula"] == "Sr1Ti1O3" for r in rows(diff_table))
    with zipfile.ZipFile(zip_path) as archive:
        assert len(archive.namelist()) == 4
    plot = out[DIFF_PLOT]  # the diffusion panel's first sample: a plotly figure
    assert plot["type"] == "plotly" and '"name":"Sr"' in plot["plot"]

    bad = tmp_path / "notes.txt"
    bad.write_text("these are notes, not a crystal\n")
    with pytest.raises(AppError, match="notes.txt: not a CIF hfmat can read"):
        client.predict(handle_file(str(bad)), False, api_name="/check_cif")
    with pytest.raises(AppError, match="unknown element 'Qq'"):
        predict(client, "Qq3")

    again = predict(client, "BaTiO3", seed=1)
    assert all(r["formula"] == "Ba1Ti1O3" for r in rows(again[DIFF_TABLE]))
    table, _, checks, canonical, cif = client.predict(
        handle_file(str(examples_dir / "NaCl_rocksalt.cif")), False, api_name="/check_cif"
    )
    assert rows(table)[0]["space group"] == "Fm-3m (225)" and canonical.startswith("data_")
    assert [r["result"] for r in rows(checks)] == ["pass"] * len(checks["data"])
    assert Path(cif).read_text().count("Na") >= 4  # the standard CIF lists every site of the cell


def test_de_novo_over_http(client):
    out = client.predict("crystal-diffusion-perov5-gen", 2, 5, 0, 5, "", 1, False, "", api_name="/generate")
    assert (
        out[0]
        == "hfmat diffuse --model crystal-diffusion-perov5-gen --num-atoms 5 -n 2 --steps 5 --seed 0 --out denovo"
    )
    assert [r["#"] for r in rows(out[3])] == [0, 1]
