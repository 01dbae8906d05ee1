"""The record keys an evaluation writes, declared once: each metric's label, direction and
torch-fidelity outputs, the keys of the training-image reference beside a held-out one, the
real-versus-real floor, the diagnostics, the re-scorings, and the sample counts each evaluation
reports beside its values. The evaluator (`gans.metrics`), the MLflow logger's sections
(`tracking.mlflow_log`), the study's objective and CLIs, the stores and the charts read them from
here. No torch: reading a store needs no model code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class Metric:
    label: str
    """how reports and charts name it"""
    minimize: bool
    """lower is better"""
    fidelity_flag: str
    """the calculate_metrics switch that computes it: fid | kid | isc | prc"""
    outputs: Mapping[str, str]
    """our record key -> torch-fidelity result key"""
    needs_real: bool
    """it compares generated images with real ones"""


METRICS: dict[str, Metric] = {
    "fid": Metric("FID", True, "fid", {"fid": "frechet_inception_distance"}, needs_real=True),
    "kid": Metric("KID", True, "kid", {"kid": "kernel_inception_distance_mean",
                                      "kid_std": "kernel_inception_distance_std"}, needs_real=True),
    "is": Metric("Inception Score", False, "isc", {"is": "inception_score_mean", "is_std": "inception_score_std"},
                 needs_real=False),
    "precision": Metric("precision", False, "prc", {"precision": "precision"}, needs_real=True),
    "recall": Metric("recall", False, "prc", {"recall": "recall"}, needs_real=True),
}

OWN_FLAGS = ("fid", "kid")
"""the metrics `gans.metrics` computes on the device itself (against every reference), not through torch-fidelity"""
STUDY_METRICS = tuple(m for m in OWN_FLAGS if METRICS[m].minimize)
"""what a study can minimise (`study.run --metric`)"""
HEADLINE = ("fid", "kid", "is")
"""the metrics a re-scoring on fresh sample sets logs (`<metric>_resample_<k>`), the command line prints and
the reports read as curves"""

TRAIN = "_train"
"""suffix of the training-image reference's keys beside a held-out reference (`fid_train`)"""
FLOOR = "fid_floor"
"""FID of the training images against the held-out ones: the real-versus-real floor"""
RESAMPLE = "_resample_"

DIAGNOSTICS = ("overfit_rt", "d_train", "d_heldout", "knn_precision", "knn_recall", "memorisation")
"""record keys of `gans.diagnostics`, in the order they are reported"""

SAMPLE_COUNTS = ("num_fake", "num_real", "feature_dim", "fid_n_below_dim", "kid_subset_size", "kid_subsets",
                 "is_splits")
"""what an evaluation reports beside its values: every N used, and whether FID had fewer samples than dimensions"""
REFERENCE_COUNTS = ("num_real", "fid_n_below_dim", "kid_subset_size", "kid_subsets")
"""the sample counts of one reference (the training images' get `train_key`)"""


def train_key(key: str) -> str:
    """`key` of the training-image reference: fid -> fid_train, kid_std -> kid_train_std, num_real -> num_real_train."""
    if key == "num_real":
        return key + TRAIN
    head, _, rest = key.partition("_")
    return head + TRAIN + (f"_{rest}" if rest else "")


def resample_key(key: str, k: int) -> str:
    """`key` of the k-th re-scoring on fresh sample sets: fid -> fid_resample_1."""
    return f"{key}{RESAMPLE}{k}"


def base_key(key: str) -> str:
    """The metric a key reports on: fid_resample_2, fid_train and fid_floor -> fid; kid_train_std -> kid_std."""
    key = key.split(RESAMPLE)[0]
    return "fid" if key == FLOOR else key.replace(TRAIN, "", 1)


def display_name(metric: str) -> str:
    """How reports name `metric` (its key when it is not a registered metric)."""
    return METRICS[metric].label if metric in METRICS else metric


QUALITY_KEYS = (*(k for m in METRICS.values() for k in m.outputs),
                *(train_key(k) for m in OWN_FLAGS for k in METRICS[m].outputs), FLOOR)
"""every sample-quality record key, against the (held-out) reference and the training images"""
EVAL_CONSTANTS = (*SAMPLE_COUNTS, *(train_key(k) for k in REFERENCE_COUNTS), "diag_num_real")
"""the counts an evaluation reports, constant within a run"""
