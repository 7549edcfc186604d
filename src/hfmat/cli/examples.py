"""``hfmat examples``: rebuild the example CIFs under examples/."""


def register(sub) -> None:
    p = sub.add_parser("examples", help="write the example structures as CIFs")
    p.add_argument("--out", default="examples", help="output folder (default: examples)")
    p.set_defaults(func=run)


def run(args) -> int:
    from hfmat.examples import write_examples

    for path in write_examples(args.out):
        print(path)
    return 0
