"""The training loop: K >= 1 runs of one configuration trained together as one vectorized model,
yielding one record per run and epoch.

Runs trained together ("members") differ only in `MEMBER_FIELDS` (the seed, and the label targets,
which are per-member tensors); everything with a shape is shared. Their weights are stacked
(`torch.func.stack_module_state`) and every forward pass is one `torch.vmap` over
`torch.func.functional_call`: a convolution over K weight sets becomes one grouped kernel. Adam is
elementwise, so one optimizer over the stacked parameters updates each member exactly as its own
optimizer would. K = 1 is a single run through the same code.

Every random number a run uses (initial weights, data order, noise, labels, augmentation, dropout
masks) comes from that run's own seed and generator, drawn per member outside the vmap, so a member
computes what the run with its seed computes alone (tests/test_members.py). A member whose loss turns
NaN is dropped from the stack and reported; the others go on.

The loop knows nothing of Optuna or MLflow. A consumer iterates `Trainer.run()` (one run) or
`Trainer.run_members()` (records of every member); stopping early is stopping the iteration. Losses
are accumulated on the device and read back once per epoch, so there is no host sync per step. On
CUDA the whole step (both forward/backward passes and both Adam updates) is captured once as a CUDA
graph and replayed: a batch-32 step is hundreds of tiny kernels whose launch cost dominates.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import os
import time
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state

from gans.augment import get_augment
from gans.cache import atomic_write
from gans.config import TrainConfig
from gans.data import ImageData, load_images, to_uint8
from gans.errors import UserError, first_line
from gans.models import build_models

Record = dict[str, Any]
# Called at evaluated epochs with the trainer and a member; returns metric name -> value (and sample counts).
Evaluator = Callable[..., dict[str, Any]]

CHECKPOINT_FORMAT = 2
# Fields in which runs trained together may differ: the seed, and the label targets (per-member tensors).
MEMBER_FIELDS = ("seed", "real_label", "fake_label")
# Steps whose random numbers are drawn at once per member: fewer, larger draws (one epoch of a
# 960-photo folder at batch 32), bounded memory on large data sets.
DRAW_CHUNK = 32
# Eager steps before a CUDA graph is captured (cuBLAS/cuDNN handles and autograd state warm up first).
GRAPH_WARMUP = 3


class Diverged(RuntimeError):
    """A loss became NaN or infinite; `reason` says which and when."""

    def __init__(self, reason: str, epoch: int):
        super().__init__(reason)
        self.reason = reason
        self.epoch = epoch


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA device is available on this machine")
    return torch.device(name)


def resolve_precision(name: str, device: torch.device) -> str:
    """`auto` -> bf16 on devices with native bf16 arithmetic (CUDA compute capability 8.0 and up; CPUs with
    AVX512-BF16 or AMX, where oneDNN runs these convolutions and matmuls about 1.4-1.6x faster than in
    fp32 with the same losses to three decimals), else fp32."""
    if name != "auto":
        return name
    if device.type == "cuda":
        # is_bf16_supported() also says yes where bf16 is only emulated (T4, V100): slower than fp32.
        return "bf16" if torch.cuda.get_device_capability(device) >= (8, 0) else "fp32"
    if device.type == "cpu":
        native = (getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
                  or getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())
        return "bf16" if native else "fp32"
    return "fp32"


def worker_threads(workers: int) -> int:
    """Intra-op CPU threads for each training process, `workers` of them sharing this machine (study
    workers, horizon workers, the estimate's measurement, `python -m gans.train`): one, however many
    workers and whatever the model; 0 (leave torch's default, which follows it) where the user set
    OMP_NUM_THREADS.

    Why not the cores divided among the workers: whenever anything else runs on the machine (another
    study, tests, a second training process), torch's OpenMP threads spin at every barrier waiting
    for a sibling the kernel has descheduled, and a step of hundreds of small ops collapses.
    `python -m benchmarks.bench --sections threads` (benchmarks/RESULTS.md, 2026-11-26) measured one
    training process at batch 32 on this project's 2-core Xeon (torch 2.14, bf16), images/s with
    torch's default 2 threads / 1 thread / 2 threads and OMP_WAIT_POLICY=PASSIVE:

    - MLP GAN, 1,000 MNIST digits: 211 / 2,165 / 2,222 beside other users' tests (about one core
      busy); 108 / 971 / 1,033 beside a busy loop on each core (earlier: 65 / 3,558 / -);
    - DCGAN 64 px, 512 cat photos: 4.4 / 61.4 / 9.0 and 6.2 / 19.1 / 4.3.

    One thread was 3-14x faster than two everywhere; OMP_WAIT_POLICY=PASSIVE (which must be set
    before torch loads, out of a process's reach) rescues the MLP only. What one thread costs on an
    idle machine was not measurable there (it never was idle): at most the core count, 2x here.
    More worker processes and more runs trained together (`gans.trainer` members) are how training
    uses more cores; one thread each never waits for a descheduled sibling."""
    if os.environ.get("OMP_NUM_THREADS"):
        return 0
    return 1


def use_worker_threads(workers: int) -> int:
    """Apply `worker_threads(workers)` to this process's torch; returns it (0: left as it was)."""
    threads = worker_threads(workers)
    if threads:
        torch.set_num_threads(threads)
    return threads


def load_train_data(config: TrainConfig) -> ImageData:
    """The training images `config` asks for, on the CPU, decoded once per process and shared by its
    trials (nothing writes to an ImageData)."""
    return _train_images(config.data, config.data_root, config.image_size, config.limit)


@functools.lru_cache(maxsize=2)
def _train_images(data: str, data_root: str, image_size: int, limit: int) -> ImageData:
    return load_images(data, data_root=data_root, image_size=image_size, limit=limit, split="train")


def check_members(configs: Sequence[TrainConfig]) -> None:
    """A UserError unless `configs` can train together: equal in every field but `MEMBER_FIELDS`,
    and no two the same run."""
    if not configs:
        raise ValueError("no configuration to train")
    shared = [dataclasses.replace(c, **{f: getattr(configs[0], f) for f in MEMBER_FIELDS}) for c in configs]
    if any(s != shared[0] for s in shared):
        differ = sorted({f.name for s in shared for f in dataclasses.fields(s)
                         if getattr(s, f.name) != getattr(shared[0], f.name)})
        raise UserError(f"runs trained together may differ only in {', '.join(MEMBER_FIELDS)}; "
                        f"these differ too: {', '.join(differ)}")
    runs = [tuple(getattr(c, f) for f in MEMBER_FIELDS) for c in configs]
    if len(set(runs)) != len(runs):
        raise UserError(f"--seeds: each seed once, got {','.join(str(c.seed) for c in configs)}")


def _adam(params, lr: float, beta1: float, capturable: bool = False) -> torch.optim.Adam:
    """Adam with the fused kernel where torch has one for the device (CUDA; CPU from torch 2.4): a
    small GAN's step is dominated by per-op overhead, and fusing the update made the MLP GAN at batch
    32 about 1.5x faster on this project's CPU. `capturable` keeps its step count on the device, as
    a CUDA graph needs."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=(beta1, 0.999), fused=True, capturable=capturable)
    except RuntimeError:  # older torch: no fused CPU kernel
        return torch.optim.Adam(params, lr=lr, betas=(beta1, 0.999))


class _Fp32BatchNorm(nn.BatchNorm2d):
    """BatchNorm computed in fp32 on a low-precision input (as autocast runs it): its statistics
    and running buffers stay fp32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).to(x.dtype)


def _flip(t: torch.Tensor) -> torch.Tensor:
    """The last two dimensions swapped (a view)."""
    return t.transpose(-1, -2)


def _own(t: torch.Tensor) -> torch.Tensor:
    """A contiguous copy with its own storage: `torch.save` of a slice of a stacked tensor would write
    every member's weights."""
    return t.detach().clone(memory_format=torch.contiguous_format)


@dataclasses.dataclass
class Stack:
    """K modules of one architecture as stacked tensors, and a weightless copy to call them through.

    With `low` (bf16) the weights of convolutions, linear layers and embeddings are cast to it for
    the call, and so are the inputs; BatchNorm runs in fp32; the stacked master weights stay fp32.
    This is autocast done by hand: autocast does not reach inside `torch.vmap`.

    Linear weights are stored transposed (`flipped`: K x in x out for the module's K x out x in), and
    the call sees them through a transposed view: a batched matrix product computes the weight's
    gradient as K x in x out, so it lands in the stored layout as it is. Stored as the module has
    them, every step transposed each gradient in a copy (in autograd's or fused Adam's `contiguous`):
    a fifth of an MLP GAN step at batch 32 on this project's CPU (benchmarks/RESULTS.md).
    """

    base: nn.Module
    params: dict[str, torch.Tensor]
    """name -> K x shape (K x in x out for the names in `flipped`), contiguous leaves that require grad"""
    buffers: dict[str, torch.Tensor]
    low: torch.dtype | None = None
    flipped: frozenset[str] = frozenset()

    @classmethod
    def of(cls, modules: Sequence[nn.Module], low: torch.dtype | None = None) -> "Stack":
        params, buffers = stack_module_state(list(modules))
        base = copy.deepcopy(modules[0]).to("meta")
        if low is not None:
            for m in base.modules():
                if type(m) is nn.BatchNorm2d:
                    m.__class__ = _Fp32BatchNorm
        flipped = frozenset(f"{prefix}.weight" if prefix else "weight"
                            for prefix, m in base.named_modules() if isinstance(m, nn.Linear))
        stack = cls(base, params, buffers, low, flipped)
        stack.params = {k: stack.as_stored(k, v.detach()).requires_grad_() if k in flipped else v
                        for k, v in params.items()}
        return stack

    def as_module(self, name: str, t: torch.Tensor) -> torch.Tensor:
        """Stored tensor `t` of parameter `name` (or of its optimizer state) in the module's layout (a view)."""
        return _flip(t) if name in self.flipped else t

    def as_stored(self, name: str, t: torch.Tensor) -> torch.Tensor:
        """Module-layout tensor `t` of parameter `name` in the stored layout (a contiguous copy or `t`)."""
        return _flip(t).contiguous() if name in self.flipped else t

    def _module_params(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: self.as_module(k, v) for k, v in params.items()}

    @functools.cached_property
    def _cast_names(self) -> frozenset[str]:
        """Parameters computed in `low`: all but BatchNorm's."""
        return frozenset(name for prefix, m in self.base.named_modules() if not isinstance(m, nn.BatchNorm2d)
                         for name, _ in m.named_parameters(prefix=prefix, recurse=False))

    def _cast(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.low is None:
            return params
        return {k: v.to(self.low) if k in self._cast_names else v for k, v in params.items()}

    def _apply(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], args) -> torch.Tensor:
        """The module on `args` (cast to `low`) with `params` already cast."""
        if self.low is not None:
            args = tuple(a.to(self.low) if a.is_floating_point() else a for a in args)
        return functional_call(self.base, (params, buffers), args)

    def weights(self, detach: bool = False) -> dict[str, torch.Tensor]:
        """The stacked weights as calls compute with them (in the module's layout, cast to `low`); calls
        given one such dict share its cast and sum their gradients before it, as autocast's cast cache
        does (the DCGAN's real and fake D calls: casts are a large share of a bf16 step on the CPU).
        `detach`: no gradient reaches the weights."""
        return self._cast(self._module_params({k: v.detach() for k, v in self.params.items()} if detach
                                              else self.params))

    def __call__(self, *args: torch.Tensor, weights: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """The K modules applied to inputs with a leading member dimension, computing with `weights`
        (default: `self.weights()`, cast for this call alone)."""
        weights = self.weights() if weights is None else weights
        return torch.vmap(lambda p, b, *a: self._apply(p, b, a))(weights, self.buffers, *args)

    @torch.no_grad()
    def evaluate(self, i: int, *args: torch.Tensor) -> torch.Tensor:
        """Member `i` alone in eval mode (BatchNorm's running statistics) on ordinary inputs."""
        self.base.eval()
        try:
            return self._apply(self._cast({k: v[i] for k, v in self._module_params(self.params).items()}),
                               {k: v[i] for k, v in self.buffers.items()}, args)
        finally:
            self.base.train()

    def member(self, i: int) -> dict[str, torch.Tensor]:
        """Member `i`'s weights and buffers as an ordinary module state dict."""
        return {k: _own(v[i]) for k, v in {**self._module_params(self.params), **self.buffers}.items()}

    def keep(self, idx: torch.Tensor) -> "Stack":
        return Stack(self.base, {k: v.detach()[idx].requires_grad_() for k, v in self.params.items()},
                     {k: v[idx] for k, v in self.buffers.items()}, self.low, self.flipped)

    def optimizer_member(self, opt: torch.optim.Optimizer, i: int) -> dict[str, Any]:
        """Member `i`'s slice of `opt` (an optimizer over `params`, in their order): the state dict an
        optimizer of that run alone has."""
        sd, names = opt.state_dict(), list(self.params)
        return {"state": {pid: {k: _own(self.as_module(names[pid], v)[i]) if torch.is_tensor(v) and v.dim() > 0
                                else v for k, v in s.items()}
                          for pid, s in sd["state"].items()},
                "param_groups": sd["param_groups"]}

    def load_optimizer(self, opt: torch.optim.Optimizer, states: Sequence[dict[str, Any]]) -> None:
        """Load `states` (one run's optimizer state dict per member, as `optimizer_member` gives them)
        into `opt`, an optimizer over `params`. Each state tensor is laid out as its parameter is:
        fused Adam on the CPU computes wrongly from a state whose strides differ from its parameter's."""
        first, names = states[0], list(self.params)
        stacked = {pid: {k: self.as_stored(names[pid], torch.stack([s["state"][pid][k] for s in states]))
                         if torch.is_tensor(v) and v.dim() > 0 else v for k, v in st.items()}
                   for pid, st in first["state"].items()}
        groups = opt.state_dict()["param_groups"]
        for g, saved in zip(groups, first["param_groups"]):
            g.update({k: v for k, v in saved.items() if k != "params"})
        opt.load_state_dict({"state": stacked, "param_groups": groups})


class Trainer:
    """Owns the models, optimizers and data of K >= 1 runs trained together; `run()` / `run_members()`
    train and yield epoch records.

    `config` is one `TrainConfig` (one run) or a sequence of them equal but for `MEMBER_FIELDS`.
    Members are numbered 0..K-1 in that order; `sample`, `discriminate`, `grid`, `state_dict` and `save`
    take a member number. `graph` (CUDA only; default on there) replays the captured step.
    """

    def __init__(self, config: TrainConfig | Sequence[TrainConfig], data: ImageData | None = None, *,
                 evaluator: Evaluator | None = None, grid_size: int = 64, graph: bool | None = None):
        members = [config] if isinstance(config, TrainConfig) else list(config)
        check_members(members)
        self.members = members
        self.config = members[0]  # the fields members share
        c = self.config
        self.device = resolve_device(c.device)
        self.precision = resolve_precision(c.precision, self.device)
        self.dtype = torch.float64 if self.precision == "fp64" else torch.float32
        self.augment = get_augment(c.augment)
        data = data if data is not None else load_train_data(c)
        if len(data) < c.batch_size:
            raise UserError(f"--batch-size {c.batch_size}: only {len(data)} training images, fewer than one batch")
        self.data = data.to(self.device)
        self.evaluator = evaluator
        self.epoch = 0  # epochs completed
        self.alive = list(range(len(members)))
        """member numbers still training, in stack order"""
        self.diverged: dict[int, str] = {}
        self.generators = [torch.Generator(self.device).manual_seed(m.seed) for m in members]
        self.fixed_z = torch.stack([torch.randn(grid_size, c.nz, generator=g, device=self.device, dtype=self.dtype)
                                    for g in self.generators])
        self.fixed_labels = torch.arange(grid_size, device=self.device) % data.num_classes
        self._build([None] * len(members))
        self.use_graph = self.device.type == "cuda" if graph is None else graph
        if self.use_graph and self.device.type != "cuda":
            raise ValueError("CUDA graphs need a CUDA device")
        self.graph_failure = ""
        """why the step could not be captured as a CUDA graph ('' when it was, or not tried)"""
        self._graph: tuple[torch.cuda.CUDAGraph, dict[str, torch.Tensor], torch.Tensor] | None = None
        self._eager_steps = 0

    # ------------------------------------------------------------------ building

    def _build(self, states: Sequence[dict[str, Any] | None]) -> None:
        """Models (fresh from each member's seed, or from its checkpoint state), stacked, and optimizers."""
        gs, ds = [], []
        for m, state in zip(self.members, states):
            torch.manual_seed(m.seed)  # a run's initial weights depend on its seed alone
            g, d = build_models(m, self.data.channels, self.data.num_classes)
            if state is not None:
                g.load_state_dict(state["generator"])
                d.load_state_dict(state["discriminator"])
            gs.append(g.to(self.device, self.dtype))
            ds.append(d.to(self.device, self.dtype))
        low = torch.bfloat16 if self.precision == "bf16" else None
        self.g, self.d = Stack.of(gs, low), Stack.of(ds, low)
        self._n_dropout = sum(isinstance(layer, nn.Dropout) for layer in ds[0].modules())
        # Without BatchNorm a sample's D output depends on that sample alone, so the real and the fake
        # half-batches go through D as one batch: one pass, and one weight gradient instead of two
        # summed (the MLP GAN at batch 32 on this project's CPU, fp32: 1.15x the images/s of one run,
        # 1.4x of 5 members trained together). With BatchNorm they stay apart, as in the seeds: a mixed
        # batch would normalise real and fake images together.
        self._joint_d = not any(isinstance(m, nn.BatchNorm2d) for m in ds[0].modules())
        self._make_optimizers()
        if states[0] is not None:
            self.g.load_optimizer(self.opt_g, [s["opt_g"] for s in states])
            self.d.load_optimizer(self.opt_d, [s["opt_d"] for s in states])
        self._targets()

    def _make_optimizers(self) -> None:
        c, capturable = self.config, self.device.type == "cuda"
        self.opt_g = _adam(self.g.params.values(), c.lr_g, c.beta1, capturable)
        self.opt_d = _adam(self.d.params.values(), c.lr_d, c.beta1, capturable)

    def _targets(self) -> None:
        live = [self.members[i] for i in self.alive]
        b, kw = self.config.batch_size, dict(device=self.device, dtype=self.dtype)
        self._real_target = torch.tensor([m.real_label for m in live], **kw)[:, None].expand(-1, b)
        self._fake_target = torch.tensor([m.fake_label for m in live], **kw)[:, None].expand(-1, b)
        self._ones = torch.ones(len(live), b, **kw)

    def _drop(self, members: Sequence[int]) -> None:
        """Stop training `members` (diverged): the others go on in a smaller stack."""
        keep = [p for p, i in enumerate(self.alive) if i not in members]
        self._graph = None  # its static tensors are the old stack's
        if not keep:
            self.alive = []
            return
        idx = torch.tensor(keep, device=self.device)
        states = [(self.g.optimizer_member(self.opt_g, p), self.d.optimizer_member(self.opt_d, p)) for p in keep]
        self.alive = [self.alive[p] for p in keep]
        self.fixed_z = self.fixed_z[idx]
        self.g, self.d = self.g.keep(idx), self.d.keep(idx)
        self._make_optimizers()
        self.g.load_optimizer(self.opt_g, [s[0] for s in states])
        self.d.load_optimizer(self.opt_d, [s[1] for s in states])
        self._targets()

    # ------------------------------------------------------------------ training

    @property
    def steps_per_epoch(self) -> int:
        return len(self.data) // self.config.batch_size

    def _draw(self, steps: int) -> dict[str, torch.Tensor]:
        """Every random number of the next `steps` steps, per member from its own generator, stacked:
        name -> K x steps x ..."""
        c, b, n = self.config, self.config.batch_size, self.data.num_classes
        kw = dict(device=self.device, dtype=self.dtype)
        per: dict[str, list[torch.Tensor]] = {}
        for i in self.alive:
            gen = self.generators[i]
            per.setdefault("z", []).append(torch.randn(steps, b, c.nz, generator=gen, **kw))
            if c.conditional:
                per.setdefault("labels", []).append(torch.randint(0, n, (steps, b), generator=gen, device=self.device))
            if self.augment.draws:
                sets = 3 if self.augment.differentiable else 1  # real; + fake in the D and the G step
                per.setdefault("u", []).append(torch.rand(steps, sets, b, self.augment.draws, generator=gen, **kw))
            if self._n_dropout:
                keep = torch.rand(steps, 3, self._n_dropout, b, c.hidden, generator=gen, **kw) >= c.dropout
                per.setdefault("masks", []).append(keep.to(self.dtype) / (1 - c.dropout))
        return {k: torch.stack(v) for k, v in per.items()}

    def _aug(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Augmentation of K x B images with K x B x draws uniforms: every op is per image, so the
        members are one batch."""
        return self.augment.fn(x.flatten(0, 1), u.flatten(0, 1)).view_as(x)

    def _step(self, real: torch.Tensor, labels: torch.Tensor, draws: dict[str, torch.Tensor]) -> torch.Tensor:
        """One D step and one G step of every member; returns K x (loss_d, loss_g, D(x), D(G(z)))."""
        z = draws["z"]
        fake_labels = draws.get("labels", torch.zeros(z.shape[:2], dtype=torch.long, device=self.device))
        u, masks = draws.get("u"), draws.get("masks")
        d_args = (lambda j: (masks[:, j],)) if masks is not None else (lambda j: ())
        diff = self.augment.differentiable
        loss_dtype = self.dtype

        def bce(logits, target):
            return F.binary_cross_entropy_with_logits(logits.to(loss_dtype), target, reduction="none").mean(1)

        fake = self.g(z, fake_labels)  # K x B x C x H x W
        real_in = self._aug(real, u[:, 0]) if u is not None else real
        fake_in = self._aug(fake.detach(), u[:, 1]) if diff else fake.detach()
        if self._joint_d:
            joint_args = (torch.cat([masks[:, 0], masks[:, 1]], 2),) if masks is not None else ()  # on the batch
            logit_real, logit_fake = self.d(torch.cat([real_in, fake_in], 1), torch.cat([labels, fake_labels], 1),
                                            *joint_args).chunk(2, 1)  # K x B each
        else:
            d_weights = self.d.weights()  # one cast for both calls
            logit_real = self.d(real_in, labels, *d_args(0), weights=d_weights)  # K x B
            logit_fake = self.d(fake_in, fake_labels, *d_args(1), weights=d_weights)
        loss_d = bce(logit_real, self._real_target) + bce(logit_fake, self._fake_target)  # K
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.sum().backward()  # members are independent: each gets its own loss's gradient
        self.opt_d.step()

        # Non-saturating loss: maximise log D(G(z)) rather than minimise log(1 - D(G(z))).
        gen_in = self._aug(fake, u[:, 2]) if diff else fake
        logit_gen = self.d(gen_in, fake_labels, *d_args(2), weights=self.d.weights(detach=True))
        loss_g = bce(logit_gen, self._ones)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.sum().backward()
        self.opt_g.step()
        return torch.stack([
            loss_d.detach(), loss_g.detach(),
            torch.sigmoid(logit_real.detach().to(loss_dtype)).mean(1),
            torch.sigmoid(logit_fake.detach().to(loss_dtype)).mean(1),
        ], 1)

    @property
    def graph_state(self) -> str:
        """How the step runs: "captured" (one CUDA graph replayed), "eager: <why capture failed>", "eager"
        (off, or not on CUDA), or "not captured yet" (during the warm-up steps)."""
        if self.graph_failure:
            return f"eager: {self.graph_failure}"
        if not self.use_graph:
            return "eager"
        return "captured" if self._graph is not None else "not captured yet"

    def _graph_step(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The step through a CUDA graph: copied into static inputs and replayed; captured at the
        first call after warm-up. Falls back to eager for good when capture fails."""
        if self._graph is None:
            try:
                static = {k: v.clone() for k, v in inputs.items()}
                self.opt_d.zero_grad(set_to_none=True)
                self.opt_g.zero_grad(set_to_none=True)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    out = self._call_step(static)
                self._graph = (graph, static, out)
            except Exception as e:  # capture is all-or-nothing; eager computes the same
                self.use_graph = False
                self.graph_failure = f"{type(e).__name__}: {first_line(e)}"
                torch.cuda.synchronize(self.device)
                return self._call_step(inputs)
        graph, static, out = self._graph
        for k, v in inputs.items():
            static[k].copy_(v)
        graph.replay()
        return out.clone()

    def _call_step(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        draws = {k: v for k, v in inputs.items() if k not in ("real", "real_labels")}
        return self._step(inputs["real"], inputs["real_labels"], draws)

    def _train_step(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.use_graph and self._eager_steps >= GRAPH_WARMUP:
            return self._graph_step(inputs)
        self._eager_steps += 1
        if not self.use_graph:
            return self._call_step(inputs)
        side = torch.cuda.Stream(self.device)  # warm-up on a side stream, as graph capture requires
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            out = self._call_step(inputs)
        torch.cuda.current_stream(self.device).wait_stream(side)
        return out

    def _batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The real images at `idx` (K x B) as K x B x C x H x W in [-1, 1], and their labels."""
        x, labels = self.data.batch(idx.flatten())
        return x.to(self.dtype).view(*idx.shape, *x.shape[1:]), labels.view(idx.shape)

    def _epoch_order(self) -> torch.Tensor:
        """Each member's shuffled image indices for one epoch, K x steps x B."""
        b, steps = self.config.batch_size, self.steps_per_epoch
        perms = [torch.randperm(len(self.data), generator=self.generators[i], device=self.device)[:steps * b]
                 for i in self.alive]
        return torch.stack(perms).view(len(self.alive), steps, b)

    def _epoch(self, on_step: Callable[[int, int, int], None] | None, epoch: int) -> torch.Tensor:
        """Train one epoch; K x 4 mean (loss_d, loss_g, D(x), D(G(z))) on the device."""
        steps = self.steps_per_epoch
        totals = torch.zeros(len(self.alive), 4, device=self.device, dtype=self.dtype)
        order = self._epoch_order()
        for start in range(0, steps, DRAW_CHUNK):
            n = min(DRAW_CHUNK, steps - start)
            draws = self._draw(n)
            for j in range(n):
                real, labels = self._batch(order[:, start + j])
                inputs = {"real": real, "real_labels": labels, **{k: v[:, j] for k, v in draws.items()}}
                totals += self._train_step(inputs)
                if on_step is not None:
                    on_step(epoch, start + j + 1, steps)
        return totals / steps

    def train_step(self) -> torch.Tensor:
        """One step on a fresh batch of each member (for measurements); K x 4 on the device. It
        trains: the weights and the members' generators move on."""
        order = self._epoch_order()
        real, labels = self._batch(order[:, 0])
        draws = {k: v[:, 0] for k, v in self._draw(1).items()}
        return self._train_step({"real": real, "real_labels": labels, **draws})

    def is_eval_epoch(self, epoch: int) -> bool:
        k = self.config.eval_every
        return epoch == self.config.epochs or bool(k and epoch % k == 0)

    def run_members(self, on_step: Callable[[int, int, int], None] | None = None) -> Iterator[dict[int, Record]]:
        """Train every live member from the current epoch to `config.epochs`, yielding per epoch
        member number -> record. A member whose loss turned NaN/inf (checked once per epoch, at the
        one host sync) gets a record with `diverged` (the reason) and no metrics, and is dropped.
        `on_step(epoch, step, steps_per_epoch)` is called after every optimizer step (a host-side
        count: it reads nothing from the device)."""
        c = self.config
        b, steps = c.batch_size, self.steps_per_epoch
        while self.epoch < c.epochs and self.alive:
            epoch = self.epoch + 1
            t0 = time.perf_counter()
            means = self._epoch(on_step, epoch).tolist()  # the epoch's one sync
            seconds = time.perf_counter() - t0
            self.epoch = epoch
            records: dict[int, Record] = {}
            for i, (loss_d, loss_g, d_real, d_fake) in zip(self.alive, means):
                records[i] = {"epoch": epoch, "loss_d": loss_d, "loss_g": loss_g, "d_real": d_real, "d_fake": d_fake,
                              "seconds": seconds, "images_per_s": steps * b / seconds, "members": len(self.alive)}
                bad = next((n for n in ("loss_d", "loss_g") if not math.isfinite(records[i][n])), None)
                if bad is not None:
                    self.diverged[i] = f"{bad} became {records[i][bad]} at epoch {epoch}"
                    records[i]["diverged"] = self.diverged[i]
            gone = [i for i in records if "diverged" in records[i]]
            if gone:
                self._drop(gone)
            for i in self.alive:
                records[i]["evaluated"] = self.is_eval_epoch(epoch)
                if records[i]["evaluated"] and self.evaluator is not None:
                    t1 = time.perf_counter()
                    records[i].update(self.evaluator(self, member=i))
                    records[i]["eval_seconds"] = time.perf_counter() - t1
            yield records

    def run(self, on_step: Callable[[int, int, int], None] | None = None) -> Iterator[Record]:
        """Train the one run from the current epoch to `config.epochs`, yielding one record per epoch.
        Raises `Diverged` when a loss turns NaN/inf."""
        assert len(self.members) == 1, "run() trains one run; use run_members() for several"
        for records in self.run_members(on_step):
            record = records[0]
            if "diverged" in record:
                raise Diverged(record["diverged"], record["epoch"])
            yield record

    # ------------------------------------------------------------------ sampling

    def _position(self, member: int) -> int:
        if member not in self.alive:
            raise ValueError(f"member {member} is not training (diverged: {self.diverged.get(member, 'no')})")
        return self.alive.index(member)

    @torch.no_grad()
    def sample(self, z: torch.Tensor, labels: torch.Tensor | None = None, member: int = 0) -> torch.Tensor:
        """Member's generator output in [-1, 1] for noise `z` (eval mode: BatchNorm running stats)."""
        if labels is None:
            labels = torch.randint(0, self.data.num_classes, (z.shape[0],), device=self.device)
        return self.g.evaluate(self._position(member), z.to(self.device, self.dtype), labels.to(self.device)).float()

    @torch.no_grad()
    def discriminate(self, x: torch.Tensor, labels: torch.Tensor | None = None, member: int = 0) -> torch.Tensor:
        """Member's discriminator logits (N, float32) on images `x` (uint8, or floats in [-1, 1]) in eval
        mode (no dropout; BatchNorm running stats). Conditional models need the images' `labels`."""
        if labels is None:
            if self.config.conditional:
                raise ValueError("a conditional discriminator needs the images' labels")
            labels = torch.zeros(x.shape[0], dtype=torch.long)
        x = x.to(self.device)
        x = x.to(self.dtype).div(127.5).sub(1.0) if x.dtype == torch.uint8 else x.to(self.dtype)
        return self.d.evaluate(self._position(member), x, labels.to(self.device)).float()

    def grid(self, member: int = 0) -> torch.Tensor:
        """Sample grid of the member's fixed noise as a uint8 C x H x W image (rows of 8)."""
        from torchvision.utils import make_grid

        x = self.sample(self.fixed_z[self._position(member)], self.fixed_labels, member)
        grid = make_grid(x.cpu(), nrow=8, padding=2, pad_value=-1)
        return to_uint8(grid[: x.shape[1]])  # make_grid tiles gray to 3 channels; keep gray gray

    # ------------------------------------------------------------------ checkpoints

    @property
    def resolved(self) -> dict[str, str]:
        """What `device="auto"` and `precision="auto"` became on this machine, and the torch that ran it:
        a checkpoint scored elsewhere is scored in the precision it was trained in."""
        # str(): a TorchVersion would not load with weights_only=True.
        return {"device": self.device.type, "precision": self.precision, "torch": str(torch.__version__)}

    def state_dict(self, member: int = 0) -> dict[str, Any]:
        """One member's checkpoint, the same as its run alone would write: it resumes alone."""
        p = self._position(member)
        return {
            "format": CHECKPOINT_FORMAT,
            "config": dataclasses.asdict(self.members[member]),
            "epoch": self.epoch,
            "channels": self.data.channels,
            "class_names": list(self.data.class_names),
            "generator": self.g.member(p),
            "discriminator": self.d.member(p),
            "opt_g": self.g.optimizer_member(self.opt_g, p),
            "opt_d": self.d.optimizer_member(self.opt_d, p),
            "fixed_z": _own(self.fixed_z[p]),
            "resolved": self.resolved,
            # The run's generator: restoring it makes a resumed run continue exactly where it stopped.
            "rng": self.generators[member].get_state(),
        }

    def load_state_dict(self, state: dict[str, Any] | Sequence[dict[str, Any]]) -> None:
        """Continue from checkpoints: one per member, in member order (one for a single run)."""
        states = [state] if isinstance(state, dict) else list(state)
        if len(states) != len(self.members):
            raise ValueError(f"{len(states)} checkpoints for {len(self.members)} members")
        epochs = {int(s["epoch"]) for s in states}
        if len(epochs) != 1:
            raise UserError(f"checkpoints of members trained together must be at one epoch, got {sorted(epochs)}")
        self.alive = list(range(len(self.members)))
        self._build(states)
        self.fixed_z = torch.stack([s["fixed_z"].to(self.device, self.dtype) for s in states])
        for gen, s in zip(self.generators, states):
            gen.set_state(s["rng"].cpu())
        self.epoch = epochs.pop()
        self._graph = None

    def save(self, path: str | os.PathLike, member: int = 0) -> None:
        atomic_write(path, lambda f: torch.save(self.state_dict(member), f))  # never a half-written checkpoint


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint written by `Trainer.save`, loaded with `weights_only=True`."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"checkpoint {path}: file not found") from None
    except Exception as e:
        raise UserError(f"checkpoint {path}: not a readable checkpoint ({type(e).__name__}: {first_line(e)})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"checkpoint {path}: not a gan-study checkpoint")
    return state


def generator_from_checkpoint(state: dict[str, Any], device: str | torch.device = "cpu"):
    """(config, generator in eval mode, number of classes) rebuilt from a loaded checkpoint."""
    config = TrainConfig(**state["config"])
    num_classes = len(state["class_names"])
    g, _ = build_models(config, state["channels"], num_classes)
    g.load_state_dict(state["generator"])
    return config, g.to(device).eval(), num_classes
