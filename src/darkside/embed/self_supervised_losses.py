"""Losses of DaCo and of the self-supervised baselines of its tables (SimCLR, MoCo, NPID, SimSiam), as pure
functions of L2-normalised embeddings; the queues and memory banks they read are passed in and returned updated,
so a learner owns (and checkpoints) its state.

Each follows leftthomas/DaCo's definition (reference notes §3.11):

* NT-Xent (SimCLR): of 2B embeddings, each anchor's positive is its pair; the denominator sums exp(s / tau) over
  the 2B - 1 others (the positive included, the anchor itself not); the mean over the 2B anchors.
* DaCo: NTX(o1, o2) + NTX(g1, g2) + lambda [NTX(o1, g1) + NTX(o1, g2)], o two views of an image, g two views of its
  translation into the other domain; Table 5 adds lambda [NTX(o2, g1) + NTX(o2, g2)].
* MoCo: a query's logits are its key and the queue's negatives over tau, cross-entropy with the key as the class;
  the queue is first-in first-out, the batch's keys replacing its oldest rows; the key encoder follows the
  query encoder by momentum.
* NPID: noise-contrastive estimation against a memory bank of every training image: for each image its own bank
  entry and ``negs`` entries drawn uniformly (the draw may hit the image itself, as DaCo's does), P(i|v) =
  exp(v . bank_i / tau) / Z with Z fixed from the first batch (mean x bank size), noise probability negs / n;
  the bank entry becomes normalise(m v + (1 - m) bank_i).
* SimSiam: -(p1 . sg(z2) + p2 . sg(z1)) / 2 over the batch mean, the stop-gradient on the encoder's side.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's NT-Xent of the pairs (z1[i], z2[i]), (B, D) each, L2-normalised."""
    z = torch.cat([z1, z2])
    n = len(z)
    logits = z @ z.t() / temperature
    logits = logits.masked_fill(torch.eye(n, dtype=torch.bool, device=z.device), float("-inf"))
    positive = torch.cat([torch.arange(len(z1), n), torch.arange(len(z1))]).to(z.device)
    return F.cross_entropy(logits, positive)


def daco_loss(o1: torch.Tensor, o2: torch.Tensor, g1: torch.Tensor, g2: torch.Tensor, lam: float,
              temperature: float, extra_cross: bool = False) -> torch.Tensor:
    """DaCo's loss: the two within-domain NT-Xent terms plus ``lam`` times the two cross-domain ones (o1 with each
    view of the translation); ``extra_cross`` adds o2's two, NTX(o2, g1) + NTX(o2, g2), at the same weight (DaCo's
    Table 5, which leaves their weight unstated: lam, as the terms they mirror)."""
    within = nt_xent(o1, o2, temperature) + nt_xent(g1, g2, temperature)
    cross = nt_xent(o1, g1, temperature) + nt_xent(o1, g2, temperature)
    if extra_cross:
        cross = cross + nt_xent(o2, g1, temperature) + nt_xent(o2, g2, temperature)
    return within + lam * cross


def moco_loss(query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor, temperature: float) -> torch.Tensor:
    """MoCo's InfoNCE: (B, D) queries against their (B, D) keys (no gradient expected) and the (N, D) queue."""
    logits = torch.cat([(query * key).sum(1, keepdim=True), query @ queue.t()], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(query), dtype=torch.long, device=query.device))


def fifo_enqueue(queue: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """The queue (N, D) with ``keys`` (B, D) appended and its B oldest rows dropped."""
    return torch.cat([queue, keys.detach()])[len(keys):]


@torch.no_grad()
def momentum_update(target: torch.nn.Module, online: torch.nn.Module, momentum: float) -> None:
    """MoCo's key encoder: every parameter becomes m target + (1 - m) online (buffers copied)."""
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.mul_(momentum).add_(o.detach(), alpha=1.0 - momentum)
    for t, o in zip(target.buffers(), online.buffers(), strict=True):
        t.copy_(o)


def npid_loss(features: torch.Tensor, bank: torch.Tensor, samples: torch.Tensor, temperature: float,
              normaliser: float | None) -> tuple[torch.Tensor, float]:
    """NPID's NCE loss of (B, D) ``features`` against bank rows ``samples`` (B, 1 + negs), the first column each
    image's own entry; ``normaliser`` Z (None: estimated from this batch, as the first batch does) is returned
    for the next calls. The loss is summed over the positive and negative terms and averaged over the batch."""
    n, negs = len(bank), samples.shape[1] - 1
    # every drawn row's dot product is one of the batch's n with the bank: compute those n once and pick, rather
    # than gathering B x (1 + negs) rows of D (DaCo's 4,096 draws from a bank that may hold fewer images)
    sims = features @ bank.to(features.device).t()
    out = torch.exp(torch.gather(sims, 1, samples.to(features.device)) / temperature)
    if normaliser is None:
        normaliser = float(out.detach().mean()) * n
    p = out / normaliser
    noise = negs / n
    positive = torch.log(p[:, 0] / (p[:, 0] + noise))
    negative = torch.log(noise / (p[:, 1:] + noise))
    return -(positive.sum() + negative.sum()) / len(features), normaliser


def npid_bank_update(bank: torch.Tensor, features: torch.Tensor, index: torch.Tensor,
                     momentum: float) -> torch.Tensor:
    """The bank with rows ``index`` replaced by normalise(m features + (1 - m) bank[index]) (DaCo's weighting:
    the new feature gets ``momentum``)."""
    out = bank.clone()
    out[index] = F.normalize(momentum * features.detach().to(bank.device) + (1.0 - momentum) * bank[index], dim=-1)
    return out


def simsiam_loss(z1: torch.Tensor, z2: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
    """SimSiam's symmetric negative cosine of the predictions ``p`` against the stopped-gradient encodings ``z``
    of the other view (all L2-normalised, (B, D))."""
    return -0.5 * ((p1 * z2.detach()).sum(1).mean() + (p2 * z1.detach()).sum(1).mean())
