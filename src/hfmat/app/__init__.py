"""A Gradio web app for hfmat's models (``hfmat app``, or ``python app.py`` in a Hub Space): structure
prediction with the language model and the diffusion pipeline side by side, de novo generation, and
checking an uploaded CIF; each result with a 3D view of the cell, its validity checks and its CIF.

Needs the optional extra ``pip install "hfmat[app]"`` (Gradio). The modules: :mod:`~hfmat.app.models`
(what the app serves), :mod:`~hfmat.app.sampling` (what the buttons do, without Gradio),
:mod:`~hfmat.app.results` (tables and files), :mod:`~hfmat.app.viewer` (the 3D view),
:mod:`~hfmat.app.commands` (the equivalent CLI commands), :mod:`~hfmat.app.physics` (energies, with
the physics extra) and :mod:`~hfmat.app.layout` (the page).
"""

from __future__ import annotations

__all__ = ["build_app", "launch", "require_gradio"]


def require_gradio():
    """The ``gradio`` module, or :class:`hfmat.extras.MissingExtraError` naming the app extra."""
    from hfmat.extras import require

    return require("gradio")


def build_app(models=None, device: str = "cpu"):
    """The Gradio ``Blocks`` of the app for ``models`` (names, folders or repo ids; default: the
    shipped models). Raises MissingExtraError when Gradio is not installed."""
    from hfmat.app.layout import build_app as _build
    from hfmat.app.models import Models

    require_gradio()  # before resolving anything: the missing extra is the first thing to say
    if models is None or isinstance(models, (list, tuple)):
        models = Models.from_names(list(models) if models else None, device=device)
    return _build(models)


def launch(
    models=None,
    *,
    device: str = "cpu",
    host: str | None = None,
    port: int | None = None,
    share: bool = False,
    **kwargs,
):
    """Build the app and serve it (blocks until stopped unless ``prevent_thread_lock=True``)."""
    from hfmat.app.sampling import MAX_UPLOAD_BYTES

    demo = build_app(models, device=device)
    demo.queue(default_concurrency_limit=1)
    return demo.launch(
        server_name=host, server_port=port, share=share, max_file_size=MAX_UPLOAD_BYTES, **kwargs
    )
