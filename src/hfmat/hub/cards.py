"""Model and dataset cards filled from the templates in ``model_cards/``.

A template is a Jinja2 markdown file whose first lines are ``---``, ``{{ card_data }}``, ``---``
(huggingface_hub writes the YAML metadata there). :func:`render_card` fills it through
``huggingface_hub.ModelCard.from_template`` (``DatasetCard`` for dataset templates), refuses a
template variable that was not given, builds the ``model-index`` from :func:`eval_results`, and
records the hfmat and library versions (and the ``repo_id`` its snippets name) under the ``hfmat``
metadata key.

    results = eval_results({"match_rate@1": 41.2, "rmse@1": 0.091}, task_type="crystal-structure-prediction",
                           dataset_name="Perov-5", dataset_type="perov_5", dataset_split="test")
    card = render_card("cif_lm", metadata={"license": "mit", ...}, eval_results=results,
                       model_name="cif-gpt2-perov5", usage=...)
    card.save(out_dir / "README.md")

Model cards go through :func:`model_card` (:func:`save_model_card` writes ``folder/README.md``): a
model family (``hfmat.lm.card``, ``hfmat.diffusion.card``, ``hfmat.hub.tokenizer_card``) supplies its
template, library, tags and template fields; the metadata every model card carries (license,
``datasets`` and ``base_model`` from the training record, the versions) is built here once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hfmat.hub.errors import CardError
from hfmat.hub.versions import installed_versions

#: Templates rendered as dataset cards (the rest are model cards).
DATASET_TEMPLATES = {"dataset"}

#: Citations of the methods hfmat builds on, for templates to include (``{{ citations }}``).
CITATIONS = {
    "crystallm": """@article{antunes2024crystallm,
  title   = {Crystal structure generation with autoregressive large language modeling},
  author  = {Antunes, Luis M. and Butler, Keith T. and Grau-Crespo, Ricardo},
  journal = {Nature Communications},
  volume  = {15},
  pages   = {10570},
  year    = {2024},
  doi     = {10.1038/s41467-024-54639-7}
}""",
    "diffcsp": """@inproceedings{jiao2023diffcsp,
  title     = {Crystal Structure Prediction by Joint Equivariant Diffusion},
  author    = {Jiao, Rui and Huang, Wenbing and Lin, Peijia and Han, Jiaqi and Chen, Pin and Lu, Yutong and Liu, Yang},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  volume    = {36},
  year      = {2023}
}""",
    "chemeleon": """@article{park2025chemeleon,
  title   = {Exploration of crystal chemical space using text-guided generative artificial intelligence},
  author  = {Park, Hyunsoo and Onwuli, Anthony and Walsh, Aron},
  journal = {Nature Communications},
  volume  = {16},
  year    = {2025},
  doi     = {10.1038/s41467-025-59636-y}
}""",
    "cdvae": """@inproceedings{xie2022cdvae,
  title     = {Crystal Diffusion Variational Autoencoder for Periodic Material Generation},
  author    = {Xie, Tian and Fu, Xiang and Ganea, Octavian-Eugen and Barzilay, Regina and Jaakkola, Tommi},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2022}
}""",
}


def dataset_repo_id(name: str, org: str = "hfmat") -> str:
    """The Hub repo id of a dataset published by ``to_hub_layout`` (``perov_5`` -> ``hfmat/perov-5``),
    as model cards list it under ``datasets``."""
    return f"{org}/{name.replace('_', '-')}"


def templates_dir() -> Path:
    """The card templates: ``$HFMAT_MODEL_CARDS`` if set, else ``hfmat/hub/model_cards`` (in the
    source tree a symlink to the repository's ``model_cards/``; in a wheel, a copy of it)."""
    if os.environ.get("HFMAT_MODEL_CARDS"):
        return Path(os.environ["HFMAT_MODEL_CARDS"])
    return Path(__file__).resolve().parent / "model_cards"


def template_path(template: str | os.PathLike) -> Path:
    """Resolve a template name (``"dataset"`` -> ``model_cards/dataset.md``) or a path to a ``.md`` file."""
    path = Path(template)
    if path.suffix != ".md":
        path = templates_dir() / f"{template}.md"
    if not path.is_file():
        names = sorted(p.stem for p in templates_dir().glob("*.md"))
        raise CardError(
            f"no card template {str(template)!r} at {path} (templates in {templates_dir()}: {names})"
        )
    return path


def citations(*keys: str) -> str:
    """BibTeX entries of :data:`CITATIONS` for ``keys`` (e.g. ``citations("crystallm", "diffcsp")``)."""
    unknown = [k for k in keys if k not in CITATIONS]
    if unknown:
        raise CardError(f"unknown citation keys {unknown}; known: {sorted(CITATIONS)}")
    return "\n\n".join(CITATIONS[k] for k in keys)


def eval_results(
    metrics: Mapping[str, float],
    *,
    task_type: str,
    dataset_name: str,
    dataset_type: str,
    dataset_split: str | None = None,
    dataset_config: str | None = None,
    task_name: str | None = None,
    source_name: str | None = None,
    source_url: str | None = None,
):
    """One ``huggingface_hub.EvalResult`` per entry of ``metrics`` (all on the same task and dataset).

    Keys are the metric names as reported (``"match_rate@1"``); the ``metric_type`` is the key in
    lower case with anything but letters, digits and ``_`` turned into ``_``. Values are kept to 6
    significant digits (float noise such as ``93.60000000000001`` is dropped). Values must be numbers:
    a metric that was not measured is left out of ``metrics``, never written as a placeholder.
    """
    import math
    import re

    from huggingface_hub import EvalResult

    if not metrics:
        raise CardError("eval_results needs at least one measured metric")
    results = []
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise CardError(f"metric {name!r} must be a finite number, got {value!r}")
        results.append(
            EvalResult(
                task_type=task_type,
                task_name=task_name,
                dataset_type=dataset_type,
                dataset_name=dataset_name,
                dataset_split=dataset_split,
                dataset_config=dataset_config,
                metric_type=re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_"),
                metric_name=name,
                metric_value=float(f"{value:.6g}"),  # 93.60000000000001 -> 93.6
                source_name=source_name,
                source_url=source_url,
            )
        )
    return results


def _undeclared(template_str: str) -> set[str]:
    import jinja2
    import jinja2.meta

    try:
        ast = jinja2.Environment().parse(template_str)
    except jinja2.TemplateSyntaxError as err:
        raise CardError(
            f"card template has a Jinja syntax error on line {err.lineno}: {err.message}"
        ) from err
    return jinja2.meta.find_undeclared_variables(ast)


def render_card(
    template: str | os.PathLike,
    *,
    metadata: Mapping[str, Any] | None = None,
    eval_results: Sequence | None = None,
    **fields: Any,
):
    """Fill a template from ``model_cards/`` and return a ``ModelCard`` (``DatasetCard`` for datasets).

    ``metadata`` becomes the YAML header (``license``, ``library_name``, ``tags``, ``datasets``,
    ``pipeline_tag``, ``base_model``, ...; for datasets ``configs``, ``pretty_name``, ...).
    ``eval_results`` (from :func:`eval_results`) becomes the ``model-index``, which needs
    ``model_name``. ``fields`` fill the template's ``{{ variables }}``: every variable the template
    uses must be given (``None`` is allowed and renders as nothing under ``{% if %}``), so a card
    never ships with a silently empty section. The card data is also available to the template
    (``{{ license }}``, ``{{ model_name }}``), and so is ``citations`` (all of :data:`CITATIONS`).
    """
    from huggingface_hub import DatasetCard, DatasetCardData, ModelCard, ModelCardData

    path = template_path(template)
    template_str = path.read_text(encoding="utf-8")
    if "{{ card_data }}" not in template_str:
        raise CardError(
            f"{path} must start with ---, {{{{ card_data }}}}, --- (where the YAML metadata goes)"
        )
    meta = dict(metadata or {})
    meta.setdefault("hfmat", {"version": installed_versions().get("hfmat", "unknown"), **_library_versions()})
    if isinstance(fields.get("repo_id"), str) and isinstance(meta["hfmat"], dict):
        # the repo the card's snippets name: `hfmat push` to another repo rewrites them
        meta["hfmat"] = {**meta["hfmat"], "repo_id": fields["repo_id"]}
    is_dataset = path.stem in DATASET_TEMPLATES
    try:
        if is_dataset:
            if eval_results:
                raise CardError("a dataset card has no model-index: eval_results are for model cards")
            card_data = DatasetCardData(**meta)
        else:
            if eval_results and not (meta.get("model_name") or fields.get("model_name")):
                raise CardError("a model-index needs model_name= (the name shown with the eval results)")
            if eval_results and "model_name" not in meta:
                meta["model_name"] = fields["model_name"]
            card_data = ModelCardData(eval_results=list(eval_results) if eval_results else None, **meta)
    except (TypeError, ValueError) as err:
        if isinstance(err, CardError):
            raise
        raise CardError(f"invalid card metadata for {path.name}: {err}") from err

    given = set(fields) | set(card_data.to_dict()) | {"card_data", "citations"}
    missing = sorted(_undeclared(template_str) - given)
    if missing:
        raise CardError(f"template {path.name} needs fields that were not given: {', '.join(missing)}")
    fields.setdefault("citations", CITATIONS)
    card_cls = DatasetCard if is_dataset else ModelCard
    card = card_cls.from_template(card_data, template_str=template_str, **fields)
    check_card_text(card.content, source=path.name)
    return card


def card_names(
    folder: str | os.PathLike, record: Mapping[str, Any] | None, repo_id: str | None
) -> tuple[str, str]:
    """(model name, repo id) of a model folder's card: the training config's ``model_name``, else the
    repo's or the folder's name; the repo id defaults to ``hfmat/<model name>``."""
    config = (record or {}).get("config", {})
    name = config.get("model_name") or (repo_id.split("/")[-1] if repo_id else Path(folder).name)
    return name, repo_id or f"hfmat/{name}"


def benchmark_eval_results(
    metrics: Mapping[str, float], *, task_type: str, dataset_type: str, dataset_split: str = "test"
):
    """:func:`eval_results` on a dataset named by its loader name (``perov_5``): the benchmark's
    pretty name (``Perov-5``) for a CDVAE benchmark, the name itself otherwise."""
    from hfmat.data.catalog import BENCHMARKS

    bench = BENCHMARKS.get(dataset_type)
    return eval_results(
        metrics,
        task_type=task_type,
        dataset_name=bench.pretty_name if bench else dataset_type,
        dataset_type=dataset_type,
        dataset_split=dataset_split,
    )


def model_card(
    template: str,
    *,
    name: str,
    repo_id: str,
    library_name: str,
    tags: Sequence[str],
    pipeline_tag: str | None = None,
    license: str = "mit",
    record: Mapping[str, Any] | None = None,
    eval_results: Sequence | None = None,
    metadata: Mapping[str, Any] | None = None,
    **fields: Any,
):
    """A model family's card (a ``ModelCard``), the one place hfmat's model cards are put together.

    The family gives its ``template``, ``library_name``, ``tags`` (and ``pipeline_tag``) and the
    template's ``fields``; ``name`` and ``repo_id`` fill ``{{ model_name }}`` and ``{{ repo_id }}``.
    With a training ``record`` (``training_summary.json``, :mod:`hfmat.hub.provenance`) the metadata
    lists the Hub ``datasets`` of every stage and the ``base_model`` the model was fine-tuned from
    (:func:`~hfmat.hub.provenance.fine_tuned_from`: never this same repo, also through continued
    runs). ``metadata`` adds or overrides keys."""
    from hfmat.hub.provenance import dataset_ids, fine_tuned_from

    meta: dict[str, Any] = {"license": license, "library_name": library_name, "tags": list(tags)}
    if pipeline_tag:
        meta["pipeline_tag"] = pipeline_tag
    datasets = dataset_ids(record, repo_id)
    if datasets:
        meta["datasets"] = datasets
    base = fine_tuned_from(record, repo_id)
    if base:
        meta["base_model"] = base
    meta.update(metadata or {})
    return render_card(
        template, metadata=meta, eval_results=eval_results, model_name=name, repo_id=repo_id, **fields
    )


def save_model_card(folder: str | os.PathLike, template: str, **kwargs: Any) -> Path:
    """:func:`model_card` written to ``folder/README.md``; returns that path."""
    path = Path(folder) / "README.md"
    model_card(template, **kwargs).save(path)
    return path


def _library_versions() -> dict[str, str]:
    return {k: v for k, v in installed_versions().items() if k != "hfmat"}


def check_card_text(text: str, source: str = "card") -> None:
    """Refuse a card with YAML metadata missing or template markup left in it."""
    if not text.startswith("---\n") or text.count("\n---") < 1:
        raise CardError(f"{source} has no YAML metadata block (--- ... --- at the top)")
    for marker in ("{{", "{%", "TODO", "TBD"):
        if marker in text.split("\n---", 1)[1]:
            raise CardError(f"{source} still contains {marker!r}: fill every field before saving")
