"""FID and KID of feature matrices in torch (gans.metrics): equal to torch-fidelity's own functions on
synthetic features, known answers for Gaussians of known statistics, and the evaluator built on them
equal to `calculate()` on the same generated images."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import pytest
import torch

pytest.importorskip("torch_fidelity")

from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric  # noqa: E402
from torch_fidelity.metric_kid import kid_features_to_metric  # noqa: E402

from gans import metrics as M  # noqa: E402
from gans.config import TrainConfig  # noqa: E402
from gans.data import load_images  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    """One BLAS and one torch thread: the matrices here are small, and on a shared two-core machine
    more threads than free cores made NumPy's eigvals 10-100x slower."""
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(before)


def gaussian_pair(n1: int, n2: int, dim: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two float64 feature sets of different means and covariances."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n1, dim, generator=g, dtype=torch.float64)
    noise = torch.randn(dim, dim, generator=g, dtype=torch.float64)
    mix = torch.eye(dim, dtype=torch.float64) + 0.5 * noise / dim ** 0.5
    b = torch.randn(n2, dim, generator=g, dtype=torch.float64) @ mix + 0.3
    return a, b


def their_fid(a: torch.Tensor, b: torch.Tensor) -> float:
    stats = fid_features_to_statistics(a), fid_features_to_statistics(b)
    return fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"]


def our_fid(a: torch.Tensor, b: torch.Tensor) -> float:
    return M.frechet_distance(*M.fid_statistics(a), *M.fid_statistics(b))


# Full rank (N > dim) and rank-deficient (N < dim: FID below the feature dimension).
CASES = [(600, 500, 64), (100, 120, 256)]


@pytest.mark.parametrize("n1,n2,dim", CASES)
def test_fid_equals_torch_fidelity(n1, n2, dim):
    a, b = gaussian_pair(n1, n2, dim)
    mu, sigma = M.fid_statistics(a)
    theirs = fid_features_to_statistics(a)
    assert mu.dtype == sigma.dtype == torch.float64 and sigma.shape == (dim, dim)
    assert torch.allclose(mu, torch.from_numpy(theirs["mu"]), rtol=0, atol=1e-12)
    assert torch.allclose(sigma, torch.from_numpy(theirs["sigma"]), rtol=0, atol=1e-12)
    assert our_fid(a, b) == pytest.approx(their_fid(a, b), rel=1e-6)
    # A fixed reference: the same number from its precomputed square root.
    ref = M.FidReference.of(b)
    assert ref.distance(*M.fid_statistics(a)) == pytest.approx(their_fid(a, b), rel=1e-6)
    assert ref.distance_to(a) == pytest.approx(their_fid(a, b), rel=1e-6)  # N x N below the dimension
    # From the generated side's features (an N x N problem when N <= dim).
    assert ref.distance_to(a) == pytest.approx(their_fid(a, b), rel=1e-6)
    # float32 features (what extractors give) are upcast before any arithmetic.
    assert our_fid(a.float(), b.float()) == pytest.approx(their_fid(a.float().double(), b.float().double()), rel=1e-6)


@pytest.mark.slow
def test_fid_equals_torch_fidelity_at_inception_width():
    """300 samples of 2048 features, Inception's width: rank-deficient covariances. torch-fidelity's
    non-symmetric eigvals takes 2-20 s here on a CPU, so this case is kept out of the fast ones."""
    a, b = gaussian_pair(300, 300, 2048)
    assert our_fid(a, b) == pytest.approx(their_fid(a, b), rel=1e-6)


def exact_gaussian(n: int, mu: torch.Tensor, sigma: torch.Tensor, seed: int) -> torch.Tensor:
    """n samples whose sample mean and covariance (np.cov's) are exactly `mu` and `sigma`."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, len(mu), generator=g, dtype=torch.float64)
    z = z - z.mean(0)
    z = z @ torch.linalg.inv(torch.linalg.cholesky(z.T @ z / (n - 1))).T  # whitened: covariance I
    return z @ torch.linalg.cholesky(sigma).T + mu


def test_fid_known_answers():
    a, b = gaussian_pair(400, 10, 32)
    assert abs(our_fid(a, a)) < 1e-9 * M.fid_statistics(a)[1].trace().item()
    # Rank-deficient: the zero eigenvalues' rounding noise (~1e-16) passes through a square root.
    rank_deficient = a[:20]
    assert abs(our_fid(rank_deficient, rank_deficient)) < 1e-7 * M.fid_statistics(rank_deficient)[1].trace().item()

    # N(mu1, diag(s1)) vs N(mu2, R diag(s2) R^T): tr sqrt(s1 s2) has no closed form for a rotated s2 in
    # general, but for s1 = c I it is sqrt(c) * sum(sqrt(s2)).
    dim = 16
    g = torch.Generator().manual_seed(1)
    mu1 = torch.randn(dim, generator=g, dtype=torch.float64)
    mu2 = torch.randn(dim, generator=g, dtype=torch.float64)
    s2 = torch.rand(dim, generator=g, dtype=torch.float64) * 3 + 0.1
    rotation = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))[0]
    sigma1 = 2.0 * torch.eye(dim, dtype=torch.float64)
    sigma2 = rotation @ torch.diag(s2) @ rotation.T
    closed = ((mu1 - mu2) ** 2).sum() + 2.0 * dim + s2.sum() - 2 * math.sqrt(2.0) * s2.sqrt().sum()
    f1, f2 = exact_gaussian(200, mu1, sigma1, 2), exact_gaussian(300, mu2, sigma2, 3)
    assert our_fid(f1, f2) == pytest.approx(closed.item(), rel=1e-9)
    assert our_fid(f2, f1) == pytest.approx(closed.item(), rel=1e-9)
    # Diagonal covariances: FID = |mu1 - mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2.
    d1 = torch.rand(dim, generator=g, dtype=torch.float64) + 0.5
    diagonal = ((mu1 - mu2) ** 2).sum() + ((d1.sqrt() - s2.sqrt()) ** 2).sum()
    assert M.frechet_distance(mu1, torch.diag(d1), mu2, torch.diag(s2)) == pytest.approx(diagonal.item(), rel=1e-12)


@pytest.mark.parametrize("n1,n2,dim,subsets,size", [(600, 500, 64, 20, 100), (100, 120, 256, 5, 100),
                                                    (100, 100, 64, 1, 100)])
def test_kid_equals_torch_fidelity(n1, n2, dim, subsets, size):
    a, b = gaussian_pair(n1, n2, dim, seed=4)
    theirs = kid_features_to_metric(a, b, kid_subsets=subsets, kid_subset_size=size, rng_seed=7, verbose=False)
    mean, std = M.kernel_inception_distance(a, b, subsets, size, seed=7)
    assert mean == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-6)
    assert std == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-6, abs=1e-12)
    if subsets > 1:
        assert mean != pytest.approx(M.kernel_inception_distance(a, b, subsets, size, seed=8)[0], rel=1e-6)


def test_kid_per_subset_in_chunks_and_bad_sizes(monkeypatch):
    a, b = gaussian_pair(300, 200, 32, seed=5)
    whole = M.kernel_inception_distance(a, b, 7, 50, seed=0)  # each kernel between whole sets, once
    monkeypatch.setattr(M, "KID_WHOLE_PAIRS", 0)  # a kernel per subset pair, as many as fit a chunk
    assert M.kernel_inception_distance(a, b, 7, 50, seed=0) == pytest.approx(whole, rel=1e-12)
    monkeypatch.setattr(M, "KID_CHUNK_BYTES", 1)  # one subset pair at a time
    assert M.kernel_inception_distance(a, b, 7, 50, seed=0) == pytest.approx(whole, rel=1e-12)
    with pytest.raises(ValueError, match="subset size"):
        M.kernel_inception_distance(a, b, 7, 201, seed=0)
    with pytest.raises(ValueError, match="equal width"):
        M.kernel_inception_distance(a, b[:, :16], 7, 50, seed=0)


def test_a_reference_keeps_its_kid_within_sums_per_subsets():
    a, b, c = gaussian_pair(100, 400, 32, seed=6) + (gaussian_pair(100, 10, 32, seed=9)[0],)
    ref = M.Reference(real=None, suffix="", features=b)
    assert ref.kid(a, 20, 50, seed=3) == pytest.approx(M.kernel_inception_distance(a, b, 20, 50, seed=3), rel=1e-12)
    kept = dict(ref.kid_within)
    assert list(kept) == [(100, 20, 50, 3)]
    # Other generated features, same subsets: the kept sums serve them, and they give their own KID.
    assert ref.kid(c, 20, 50, seed=3) == pytest.approx(M.kernel_inception_distance(c, b, 20, 50, seed=3), rel=1e-12)
    assert ref.kid_within.keys() == kept.keys() and ref.kid_within[(100, 20, 50, 3)] is kept[(100, 20, 50, 3)]
    ref.kid(a, 20, 50, seed=4)  # other subsets: other sums
    assert len(ref.kid_within) == 2


# ---------------------------------------------------------------- the evaluator


def fake_trainer(config: TrainConfig, pool: torch.Tensor) -> SimpleNamespace:
    """What the evaluator uses of a trainer: `sample(z, labels, member)` here mixes real digits of
    `pool`, picked and blurred by the noise, so that the features spread like a generator's."""
    calls = []
    g = torch.Generator().manual_seed(0)
    project = torch.randn(config.nz, pool[0].numel(), generator=g) * 0.05
    pool = pool.float() / 127.5 - 1

    def sample(z, labels, member=0):
        calls.append((z.clone(), labels.clone(), member))
        pick = (z[:, 0].abs() * 1e4).long() % len(pool)
        return (pool[pick] + (z @ project).view(-1, *pool.shape[1:])).clamp(-1, 1)

    return SimpleNamespace(config=config, device=torch.device("cpu"), data=SimpleNamespace(num_classes=10),
                           sample=sample, calls=calls)


def generated(trainer) -> torch.Tensor:
    """The images the evaluator drew, sampled again from the recorded noise."""
    z = torch.cat([c[0] for c in trainer.calls])
    labels = torch.cat([c[1] for c in trainer.calls])
    return M.to_rgb_uint8(trainer.sample(z, labels))


@pytest.fixture(scope="module")
def mnist_setup(domain, data_root):
    ext = domain("mnist")
    config = TrainConfig(model="mlp", data="mnist", data_root=str(data_root), image_size=28, limit=400,
                         num_real=400, num_samples=300, kid_subset_size=100, metrics="fid,kid,is", device="cpu")
    pool = load_images("mnist", data_root=data_root, image_size=28, split="test", limit=500).images
    return ext, config, pool


def test_evaluator_equals_calculate_on_the_same_images(mnist_setup, monkeypatch):
    ext, config, pool = mnist_setup
    evaluate = M.build_evaluator(config)
    assert evaluate.extractor == ext
    trainer = fake_trainer(config, pool)
    rng_before = torch.get_rng_state()
    out = evaluate(trainer, member=2)
    assert torch.equal(torch.get_rng_state(), rng_before), "evaluation disturbed the training random stream"
    assert {c[2] for c in trainer.calls} == {2} and len(trainer.calls) == math.ceil(300 / 64)
    labels = torch.cat([c[1] for c in trainer.calls])
    assert labels.min() >= 0 and labels.max() <= 9 and len(set(labels.tolist())) == 10

    images = generated(trainer)
    trainer.calls.clear()
    theirs = M.calculate(M.ImageSet(images), M.real_set(config), ext, ["fid", "kid", "is"],
                         kid_subset_size=config.kid_subset_size, seed=M.EVAL_SEED)
    for key in ("fid", "kid", "kid_std", "is", "is_std"):
        assert out[key] == pytest.approx(theirs[key], rel=1e-4), key
    for key in ("num_fake", "num_real", "feature_dim", "kid_subset_size", "kid_subsets", "fid_n_below_dim",
                "is_splits"):
        assert out[key] == theirs[key], key
    assert out["num_fake"] == 300 and out["num_real"] == 400 and out["kid_subsets"] == M.KID_SUBSETS

    # The same seed draws the same images; the real side is not decoded again.
    monkeypatch.setattr(M.RealSet, "load", lambda self: pytest.fail("real images decoded again"))
    again = evaluate(trainer, member=2)
    assert again["fid"] == out["fid"] and again["kid"] == out["kid"]
    trainer.calls.clear()
    drawn = []
    resampled = M.Reference.resampled
    monkeypatch.setattr(M.Reference, "resampled", lambda self, seed: drawn.append(seed) or resampled(self, seed))
    other_seed = evaluate(trainer, member=2, seed=1)
    assert other_seed["fid"] != out["fid"] and drawn == [1]  # a re-scoring draws the real side afresh too
    assert evaluate(trainer, member=2)["fid"] == out["fid"] and drawn == [1]
    # A new evaluator reads the real side's features from the disk cache.
    assert M.build_evaluator(config.replace(metrics="fid"))(trainer)["fid"] == pytest.approx(out["fid"])


def test_evaluator_with_a_heldout_reference(mnist_setup, monkeypatch, data_root):
    ext, config, pool = mnist_setup
    assert M.heldout_set(config) == M.RealSet("mnist", str(data_root), "heldout", 28, 400)
    # 350 test digits stand in for the held-out split (all 10,000 of them): the same path, less work.
    heldout = M.RealSet("mnist", str(data_root), "test", 28, 350)
    monkeypatch.setattr(M, "heldout_set", lambda c: heldout)
    with_reference = SimpleNamespace(**{**dataclasses.asdict(config), "metrics": "fid,kid", "reference": "heldout"})
    trainer = fake_trainer(config, pool)
    out = M.Evaluator(with_reference, ext, ["fid", "kid"])(trainer)
    images = generated(trainer)
    for real, suffix in ((heldout, ""), (M.real_set(config), "_train")):
        theirs = M.calculate(M.ImageSet(images), real, ext, ["fid", "kid"], kid_subset_size=config.kid_subset_size)
        assert out[f"fid{suffix}"] == pytest.approx(theirs["fid"], rel=1e-4)
        assert out[f"kid{suffix}"] == pytest.approx(theirs["kid"], rel=1e-4)
        assert out[f"kid{suffix}_std"] == pytest.approx(theirs["kid_std"], rel=1e-4)
    assert out["num_real"] == 350 and out["num_real_train"] == 400 and out["num_fake"] == 300
    # The floor: the training digits' own FID against the held-out ones, by torch-fidelity's path.
    floor = M.calculate(M.ImageSet(M.real_set(config).load()), heldout, ext, ["fid"])["fid"]
    assert out["fid_floor"] == pytest.approx(floor, rel=1e-4) and 0 < out["fid_floor"] < out["fid"]
    assert out["kid_subset_size"] == out["kid_train_subset_size"] == 100


def test_a_resampled_reference_draws_the_same_images_with_replacement():
    features = torch.randn(60, 8, dtype=torch.float64)
    ref = M.Reference(None, "_train", features, M.FidReference.of(features))
    a, b, c = ref.resampled(1), ref.resampled(1), ref.resampled(2)
    assert a.features.shape == features.shape and a.suffix == "_train"
    rows = {tuple(r.tolist()) for r in features}
    assert all(tuple(r.tolist()) in rows for r in a.features)
    assert len({tuple(r.tolist()) for r in a.features}) < 60  # with replacement: some drawn twice
    assert torch.equal(a.features, b.features) and not torch.equal(a.features, c.features)
    assert torch.allclose(a.fid.mu, a.features.mean(0))
