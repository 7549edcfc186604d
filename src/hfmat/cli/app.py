"""``hfmat app``: serve the web app (Gradio) on the shipped models or the models named: structure
prediction with the language model and the diffusion pipeline side by side, de novo generation, and
checking a CIF, each result with a 3D view, its validity checks and its CIF. Needs
``pip install "hfmat[app]"``."""

from __future__ import annotations

from hfmat import shipped
from hfmat.cli import options

EXAMPLES = """\
hfmat app                                   # the shipped models, on http://127.0.0.1:7860
hfmat app cif-gpt2-perov5 runs/my-diffusion/final --port 8000
hfmat app --host 0.0.0.0                    # reachable from other machines"""


def register(sub) -> None:
    p = options.add_parser(
        sub, "app", help="serve the web app (Gradio) for the models", description=__doc__, examples=EXAMPLES
    )
    p.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help=f"model folders, Hub repo ids or shipped names (default: {', '.join(shipped.NAMES)})",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--device", default="cpu", help="torch device for the models (default cpu)")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    p.set_defaults(func=run)


def run(args) -> int:
    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be from 1 to 65535, got {args.port}")
    options.torch_device(args.device)
    from hfmat.app import launch, require_gradio
    from hfmat.extras import MissingExtraError

    try:
        require_gradio()
    except MissingExtraError as err:
        raise ValueError(str(err)) from None
    launch(args.models or None, device=args.device, host=args.host, port=args.port, share=args.share)
    return 0
