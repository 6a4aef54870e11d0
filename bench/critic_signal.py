"""What a trained VelocityGAN critic can tell apart: true maps, the generator's maps, and junk.

Batches of ``--batch`` maps from a split go through the critic of a checkpoint two ways:
"train mode", as during training (BatchNorm normalises each batch with its own statistics;
real and generated batches go through separate forwards, as in the WGAN-GP critic step), and
"eval mode" (the running statistics). For each kind of batch it prints the mean score and
the share of (true map, other map) pairs the critic ranks the right way round (AUC: 1 =
always, 0.5 = cannot tell, 0 = always the wrong way); then the Wasserstein estimate
mean D(true) - mean D(generated).

The junk batches (uniform noise, the map upside down, one constant velocity) are maps no
geologist would accept: a critic whose train-mode batch mean barely moves for them cannot give
the generator a signal about realism.

Example (bench/results/critic_signal.md)::

    .venv/bin/python bench/critic_signal.py --checkpoint RUN/last.pt --split DIR/test/train.txt
"""

from __future__ import annotations

import argparse
import copy
import platform
import sys

import torch

from velocitygan.checkpoint import load_checkpoint, load_generator
from velocitygan.data import OpenFWIDataset
from velocitygan.models import build_discriminator


def auc(pos: torch.Tensor, neg: torch.Tensor) -> float:
    """P(score of a random positive > score of a random negative), ties counting half."""
    diff = pos.view(-1, 1) - neg.view(1, -1)
    return float((diff > 0).float().mean() + 0.5 * (diff == 0).float().mean())


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="a velocitygan checkpoint with a critic")
    ap.add_argument("--split", required=True, help="split file of labelled maps")
    ap.add_argument("--batch", type=int, default=32, help="critic batch (the training batch)")
    ap.add_argument("--batches", type=int, default=8)
    args = ap.parse_args()
    torch.manual_seed(0)
    ckpt = load_checkpoint(args.checkpoint)
    if not ckpt.get("discriminator"):
        sys.exit(f"{args.checkpoint}: holds no critic (an InversionNet run, or slimmed "
                 "weights such as pretrained:NAME); give a VelocityGAN run's last.pt")
    critic = build_discriminator(ckpt["model"]["discriminator"])
    critic.load_state_dict(ckpt["discriminator"])
    generator, spec, _ = load_generator(args.checkpoint)
    ds = OpenFWIDataset(args.split, spec)
    n = args.batch * args.batches
    if len(ds) < n:
        sys.exit(f"{args.split}: {len(ds)} maps, fewer than --batch x --batches = {n}")
    xs, ys = zip(*(ds[i] for i in range(n)), strict=True)
    real, fake = torch.stack(ys), torch.cat(
        [generator(torch.stack(xs[i:i + args.batch])) for i in range(0, n, args.batch)])
    kinds = {"true maps": real, "generated maps": fake,
             "uniform noise": torch.rand_like(real) * 2 - 1,
             "true maps upside down": real.flip(2),
             "one constant velocity": torch.zeros_like(real)}
    print(f"{args.checkpoint}: critic {ckpt['model']['discriminator']}, {n} maps of "
          f"{args.split} in batches of {args.batch}; torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}")
    print("| batch | mean D, train mode | mean D, eval mode | AUC vs true maps, train mode | "
          "AUC vs true maps, eval mode |\n|---|---:|---:|---:|---:|")
    scores = {}
    for mode in ("train", "eval"):
        c = copy.deepcopy(critic).train(mode == "train")  # train mode updates running stats
        scores[mode] = {k: torch.cat([c(v[i:i + args.batch]) for i in range(0, n, args.batch)])
                        for k, v in kinds.items()}
    for k in kinds:
        t, e = scores["train"], scores["eval"]
        aucs = "| — | — |" if k == "true maps" else (
            f"| {auc(t['true maps'], t[k]):.3f} | {auc(e['true maps'], e[k]):.3f} |")
        print(f"| {k} | {t[k].mean():.4f} | {e[k].mean():.4f} {aucs}")
    for mode in ("train", "eval"):
        w = scores[mode]["true maps"].mean() - scores[mode]["generated maps"].mean()
        print(f"{mode} mode: Wasserstein estimate mean D(true) - mean D(generated) = {w:.4f}")


if __name__ == "__main__":
    main()
