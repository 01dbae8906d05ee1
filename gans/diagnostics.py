"""Why late epochs go weird, measured: the per-evaluation diagnostics of discriminator overfitting,
sample precision and recall, and memorisation, as small pure functions of discriminator logits and
extractor features (tensors in, floats out).

Owns the formulas (their record keys, `DIAGNOSTICS`, are declared in `gans.metric_keys`):

- `overfit_rt`: r_t = E[sign(D(x_train))] on training images (Karras et al. 2020, "Training
  Generative Adversarial Networks with Limited Data"): 0 when D cannot tell training images from
  fakes, towards 1 as D becomes sure of every training image;
- `d_train`, `d_heldout`: D's mean sigmoid output on as many training and held-out real images; an
  overfitting D scores the images it trains on higher than new ones of the same distribution;
- `knn_precision`, `knn_recall`: Kynkäänniemi et al. 2019 ("Improved Precision and Recall Metric for
  Assessing Generative Models"), k-nearest-neighbour manifolds in the extractor's feature space
  against held-out images;
- `memorisation`: the median distance from generated samples to their nearest training image over
  the median distance from held-out real images to theirs: about 1 when samples are as far from the
  training images as new real images are, well below 1 when samples copy training images.

`gans.metrics.Evaluator` computes them at evaluated epochs beside FID/KID (from the features it has
already extracted), when the run has a held-out reference.
"""

from __future__ import annotations

import math

import torch

DIAG_REAL = 1000
"""real images (the first ones of the training and of the held-out set, as many of each) that D scores"""

PRC_K = 3
"""neighbourhood size of the k-NN manifolds (Kynkäänniemi et al.'s default, torch-fidelity's too)"""

# Rows of query x reference distance matrices computed at once: 256 x 60,000 float64 is 123 MB.
DIST_CHUNK = 256


def overfit_rt(logits: torch.Tensor) -> float:
    """r_t = mean(sign(logits)) of D's logits on training images, in [-1, 1] (a logit of 0 counts 0)."""
    if logits.numel() == 0:
        raise ValueError("no logits")
    return float(torch.sign(logits.double()).mean())


def mean_sigmoid(logits: torch.Tensor) -> float:
    """D's mean output (probability of 'real') from its logits."""
    if logits.numel() == 0:
        raise ValueError("no logits")
    return float(torch.sigmoid(logits.double()).mean())


def _check(*features: torch.Tensor) -> None:
    width = {f.shape[1] if f.dim() == 2 else -1 for f in features}
    if len(width) != 1 or -1 in width or any(len(f) == 0 for f in features):
        shapes = [tuple(f.shape) for f in features]
        raise ValueError(f"expected non-empty N x D feature matrices of one width, got {shapes}")


def nearest_distances(query: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Euclidean distance from each row of `query` to its nearest row of `reference` (float64)."""
    _check(query, reference)
    ref = reference.to(query.device).double()
    return torch.cat([torch.cdist(query[i:i + DIST_CHUNK].double(), ref).min(1).values
                      for i in range(0, len(query), DIST_CHUNK)])


def memorisation(fake: torch.Tensor, train: torch.Tensor, heldout: torch.Tensor) -> float:
    """median_nn(fake -> train) / median_nn(heldout -> train): 0 when the samples are training images,
    about 1 when they are as far from the training images as held-out real images are; NaN when the
    held-out images themselves sit on training images (median distance 0)."""
    _check(fake, train, heldout)
    held = float(nearest_distances(heldout, train).median())
    fake_nn = float(nearest_distances(fake, train).median())
    return fake_nn / held if held > 0 else math.nan


def knn_radii(features: torch.Tensor, k: int = PRC_K) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row (the radius of its k-NN ball)."""
    _check(features)
    if len(features) <= k:
        raise ValueError(f"k-NN radii with k={k} need more than {k} points, got {len(features)}")
    x = features.double()
    # The smallest distance is the point to itself (0): the k-th neighbour is the (k+1)-th smallest.
    return torch.cat([torch.cdist(x[i:i + DIST_CHUNK], x).kthvalue(k + 1, dim=1).values
                      for i in range(0, len(x), DIST_CHUNK)])


def _covered(query: torch.Tensor, manifold: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """For each query row: does it lie inside any manifold point's k-NN ball?"""
    m, r = manifold.to(query.device).double(), radii.to(query.device)
    return torch.cat([(torch.cdist(query[i:i + DIST_CHUNK].double(), m) <= r).any(1)
                      for i in range(0, len(query), DIST_CHUNK)])


def precision_recall(fake: torch.Tensor, real: torch.Tensor, k: int = PRC_K) -> tuple[float, float]:
    """(precision, recall) of Kynkäänniemi et al. 2019: the share of generated samples inside the
    real manifold (the union of the real points' k-NN balls), and the share of real points inside
    the generated manifold. Compare values at equal sample sizes: the balls shrink as N grows."""
    _check(fake, real)
    precision = float(_covered(fake, real, knn_radii(real, k)).double().mean())
    recall = float(_covered(real, fake, knn_radii(fake, k)).double().mean())
    return precision, recall


def diagnostics(*, train_logits: torch.Tensor, heldout_logits: torch.Tensor, fake: torch.Tensor,
                train: torch.Tensor, heldout: torch.Tensor, k: int = PRC_K) -> dict[str, float]:
    """Every diagnostic of one evaluation under its record key: D's logits on training and held-out
    real images (as many of each), and the features of the generated samples, of the training images
    and of the held-out images. Precision and recall compare the samples with as many held-out
    images (the first ones) as there are samples, or all of them when there are fewer."""
    n = min(len(fake), len(heldout))
    precision, recall = precision_recall(fake[:n], heldout[:n], k)
    return {"overfit_rt": overfit_rt(train_logits), "d_train": mean_sigmoid(train_logits),
            "d_heldout": mean_sigmoid(heldout_logits), "knn_precision": precision, "knn_recall": recall,
            "memorisation": memorisation(fake, train, heldout[:len(fake)])}
