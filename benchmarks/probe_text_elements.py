"""How much of a formula's chemistry survives a text tower's embedding: a probe.

    OMP_NUM_THREADS=1 python benchmarks/probe_text_elements.py --tower crystal-clip-perov5

Each crystal's reduced formula ("SrTiO3", the composition-style description) is embedded by the
tower (``hfmat.diffusion.text.embed_texts``) with each pooling, and a small MLP (hidden 256, full-batch
Adam, ``--epochs``) learns the element set from the embedding on the ``--train`` split; the figure is
the share of ``--test`` formulas whose top-k elements (k: the formula's own number of elements) are
exactly its elements. A text-conditioned denoiser can place only what its embedding carries, so this
bounds what a pooling can give it (docs/text_guidance.md).
"""

from __future__ import annotations

import argparse


def formulas(source: str, data_dir: str) -> list[str]:
    from pymatgen.core import Structure

    from hfmat.evaluation.io import load_reference

    _, cifs = load_reference(source, data_dir=data_dir)
    return [Structure.from_str(text, fmt="cif").composition.reduced_formula for text in cifs]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--tower", default="crystal-clip-perov5", help="Crystal CLIP, text encoder or text pipeline"
    )
    p.add_argument("--train", default="perov_5:val")
    p.add_argument("--test", default="perov_5:test")
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--epochs", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import torch
    import torch.nn.functional as F
    from pymatgen.core import Composition

    from hfmat.diffusion.element_head import exact_set_rate
    from hfmat.diffusion.text import embed_texts, load_text_tower

    encoder, tokenizer = load_text_tower(args.tower)
    train, test = formulas(args.train, args.data_dir), formulas(args.test, args.data_dir)
    elements = sorted({e.symbol for f in train + test for e in Composition(f)})

    def targets(names):
        y = torch.zeros(len(names), len(elements))
        for i, name in enumerate(names):
            for e in Composition(name):
                y[i, elements.index(e.symbol)] = 1
        return y

    y_train, y_test = targets(train), targets(test)
    results = {}
    for pooling in ("pooler", "mean"):
        x_train = embed_texts(encoder, tokenizer, train, pooling=pooling)
        x_test = embed_texts(encoder, tokenizer, test, pooling=pooling)
        torch.manual_seed(args.seed)
        net = torch.nn.Sequential(
            torch.nn.Linear(x_train.shape[1], 256), torch.nn.GELU(), torch.nn.Linear(256, len(elements))
        )
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        for _ in range(args.epochs):
            opt.zero_grad()
            F.binary_cross_entropy_with_logits(net(x_train), y_train).backward()
            opt.step()
        with torch.no_grad():
            scores = net(x_test)
        results[pooling] = exact_set_rate(scores, y_test)
        print(f"{pooling}: element set of {results[pooling]:.1%} of {len(test)} test formulas")
    return results


if __name__ == "__main__":
    main()
