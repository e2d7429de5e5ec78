"""The loop every method shares: accelerate, the editor's optimizer (parameter groups, LR schedule),
the method's critics, EMA, logging, validation grids, atomic checkpoints with exact resume, and
the final model file."""

from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from torch import nn
from tqdm.auto import tqdm

from ..core.images import pixels_to_pil
from ..core.models import EditModel
from ..core.toy.datasets import stack
from . import checkpoint
from .config import ConfigError, TrainConfig
from .critics import Critics
from .data import describe
from .ema import EMA
from .methods.base import Method, TrainState
from .optim import adamw, param_groups, rates, schedule


class Objective(nn.Module):
    """The model's modules plus the method's loss, as one module for DDP to wrap."""

    def __init__(self, method: Method, model: EditModel) -> None:
        super().__init__()
        self.parts = nn.ModuleDict(model.modules())
        self.method, self.model = method, model

    def forward(self, batch: dict, rngs: list[torch.Generator], state: TrainState):
        return self.method.loss(self.model, batch, rngs, state)


def sample_seed(run_seed: int, index: int, stream: int = 0) -> int:
    """The seed of sample ``index``'s generator; critics draw from streams 1, 2, … apart from the editor's 0."""
    return run_seed * 1_000_003 + index + (stream << 40)


def train(method: Method, resume: bool = False) -> Path:
    """Run ``method`` to ``config.steps`` and return the path of the model file it wrote."""
    config = method.config
    out = Path(config.output_dir)
    # cpu=True is what makes accelerate join a torchrun process group with gloo on a CPU.
    accelerator = Accelerator(gradient_accumulation_steps=config.grad_accum, mixed_precision=config.mixed_precision,
                              cpu=not torch.cuda.is_available())
    data, rows = method.dataset(), method.held_out()  # every file checked before a model loads
    accelerator.print(describe(data))
    if rows is not None:
        accelerator.print(describe(rows, "validation"))
    torch.manual_seed(config.seed)
    model = method.build_model()
    _check_pictures(model, config)
    params = _trainable_parameters(method, model, config)
    optimizer = adamw(param_groups(params, config.optim), config.optim)
    scheduler = schedule(optimizer, config)
    ema = EMA(params, config.ema_decay) if config.ema_decay else None
    critics = Critics(method, model, accelerator, config)
    objective, optimizer = accelerator.prepare(Objective(method, model), optimizer)
    run = _Run(params, ema, optimizer, scheduler, critics)

    start = run.resume(out) if resume else 0
    batches = iter(_loader(data, config, start, accelerator.num_processes, accelerator.process_index))
    log = _Log(out, accelerator, start, config.log_every)
    bar = tqdm(total=config.steps, initial=start, disable=not accelerator.is_main_process, desc=method.name)

    def rngs(indices: list[int], stream: int = 0) -> list[torch.Generator]:
        return [torch.Generator().manual_seed(sample_seed(config.seed, i, stream)) for i in indices]

    for step in range(start, config.steps):
        started = time.perf_counter()
        state = TrainState(step, ema)
        micro = [next(batches) for _ in range(config.grad_accum)]
        logs = critics.step(micro, state, rngs) if critics else {}
        for p in params.values():  # what a critic's pass left on the editor's weights is not the editor's
            p.grad = None
        for indices, batch in micro:
            with accelerator.accumulate(objective):
                loss, editor_logs = objective(batch, rngs(indices), state)
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.optim.grad_clip:
                    accelerator.clip_grad_norm_(list(params.values()), config.optim.grad_clip)
                optimizer.step()
                optimizer.zero_grad()
        logs |= editor_logs
        logs["loss"] = accelerator.reduce(loss.detach(), "mean").item()  # over processes, not just this one
        lr = rates(optimizer)  # the rates this step used
        scheduler.step()
        if ema is not None:
            ema.update()
        done = step + 1
        log.add(done, logs, lr, time.perf_counter() - started, done == config.steps)
        bar.update(1)
        bar.set_postfix(loss=f"{logs['loss']:.4f}", it_s=f"{log.rate:.2f}")
        if done % config.validate_every == 0 or done == config.steps:
            _validate(method, model, rows, ema, accelerator, out, done, log)
        if done % config.checkpoint_every == 0 or done == config.steps:
            run.checkpoint(out, done, accelerator, config)
    bar.close()
    return _export(method, model, ema, accelerator, out)


def _check_pictures(model, config: TrainConfig) -> None:
    """A video model trains on clips, any other on pictures: refuse the other before any step. (What a
    method trains may be no edit model at all, e.g. a reward: those read pictures.)"""
    frames = getattr(model, "frames", False)
    if frames and not config.data.frames:
        raise ConfigError(f"'{config.model}' is a video model ({model.family}): it trains on clips. Set data.frames "
                          "(e.g. 8) in the config.")
    if config.data.frames and not frames:
        raise ConfigError(f"data.frames asks for clips, but '{config.model}' is a model of pictures. "
                          "Train a video model (t2v from a toy base) or set data.frames to 0.")


class _StepBatches(torch.utils.data.Sampler):
    """The data indices of each micro-batch from ``start`` on: a pure function of the step, so a
    resumed run sees exactly the data it would have seen, and each process its own share."""

    def __init__(self, config: TrainConfig, start: int, world: int, rank: int) -> None:
        self.config, self.start, self.world, self.rank = config, start, world, rank

    def __iter__(self):
        c = self.config
        for micro in range(self.start * c.grad_accum, c.steps * c.grad_accum):
            first = (micro * self.world + self.rank) * c.batch_size
            yield list(range(first, first + c.batch_size))

    def __len__(self) -> int:
        return (self.config.steps - self.start) * self.config.grad_accum


def _loader(data, config: TrainConfig, start: int, world: int, rank: int):
    """(indices, batch) pairs, rendered ahead in ``data.workers`` processes while the model trains."""
    workers = config.data.workers
    return torch.utils.data.DataLoader(_Indexed(data), batch_sampler=_StepBatches(config, start, world, rank),
                                       num_workers=workers, collate_fn=_collate, prefetch_factor=4 if workers else None)


class _Indexed(torch.utils.data.Dataset):
    """Item ``i`` is ``(i, data[i mod len])``: the unwrapped index seeds the sample's noise."""

    def __init__(self, data) -> None:
        self.data = data

    def __getitem__(self, index: int) -> tuple[int, dict]:
        return index, self.data[index % len(self.data)]


def _collate(items: list[tuple[int, dict]]) -> tuple[list[int], dict]:
    return [i for i, _ in items], stack([item for _, item in items])


def _trainable_parameters(method: Method, model: EditModel, config: TrainConfig) -> dict[str, nn.Parameter]:
    trainable = method.trainable(model)
    for name, module in model.modules().items():
        module.requires_grad_(name in trainable)
        module.train(name in trainable)
    if config.gradient_checkpointing:  # non-reentrant, or LoRA weights closed over in blocks lose gradients
        for module in trainable.values():
            if hasattr(module, "enable_gradient_checkpointing"):  # diffusers
                module.enable_gradient_checkpointing()
            elif getattr(module, "supports_gradient_checkpointing", False):  # transformers
                module.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    params = {}
    for n, m in trainable.items():
        for k, p in m.named_parameters():
            p.requires_grad_(method.trains(f"{n}.{k}"))
            if p.requires_grad:
                params[f"{n}.{k}"] = p
    return params


@dataclass
class _Run:
    """What a checkpoint holds beside the RNG states: the editor's weights, EMA, optimizer and
    schedule, and each critic's weights, optimizer and schedule."""

    params: dict[str, nn.Parameter]
    ema: EMA | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    critics: Critics

    def resume(self, out: Path) -> int:
        found = checkpoint.latest(out / "checkpoints")
        if found is None:
            return 0
        step, weights, optimizers, schedulers, extra = checkpoint.load(found)
        with torch.no_grad():
            for k, p in self.params.items():
                p.copy_(weights[f"model.{k}"])
        if self.ema is not None:
            self.ema.load({k: weights[f"ema.{k}"] for k in self.params}, extra["ema_updates"])
        self.optimizer.load_state_dict(optimizers["editor"])
        self.scheduler.load_state_dict(schedulers["editor"])
        self.critics.load(weights, optimizers, schedulers)
        return step

    def checkpoint(self, out: Path, step: int, accelerator: Accelerator, config: TrainConfig) -> None:
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            weights = {f"model.{k}": p for k, p in self.params.items()} | self.critics.weights()
            if self.ema is not None:
                weights |= {f"ema.{k}": v for k, v in self.ema.state().items()}
            optimizers = {"editor": self.optimizer.state_dict(), **self.critics.optimizers()}
            schedulers = {"editor": self.scheduler.state_dict(), **self.critics.schedulers()}
            extra = {"ema_updates": self.ema.updates if self.ema else 0}
            checkpoint.save(out / "checkpoints", step, weights, optimizers, schedulers, extra, config.keep_checkpoints)
        accelerator.wait_for_everyone()


def _validate(method, model, rows, ema, accelerator, out, step, log) -> None:
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with _averaged(ema), _eval(model):
            images, metrics = method.validate(model, rows)
        save_grid(images, out / "samples" / f"step-{step:06d}.png")
        log.write({"step": step, **{f"val/{k}": v for k, v in metrics.items()}})
    accelerator.wait_for_everyone()


def _export(method, model, ema, accelerator, out) -> Path:
    """The method's final file(s), written from the EMA weights by the main process."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with _averaged(ema), _eval(model):
            path = method.save(model, out)
    accelerator.wait_for_everyone()
    return path if accelerator.is_main_process else out


def _averaged(ema: EMA | None):
    """The EMA weights swapped in for a block, when there is an EMA."""
    return ema.swapped_in() if ema is not None else nullcontext()


@contextmanager
def _eval(model: EditModel):
    training = [m for m in model.modules().values() if m.training]
    for m in training:
        m.eval()
    try:
        yield
    finally:
        for m in training:
            m.train()


class _Log:
    """metrics.jsonl (and TensorBoard when it is installed), from the main process only."""

    def __init__(self, out: Path, accelerator: Accelerator, start: int, every: int) -> None:
        self.main, self.every, self.rate = accelerator.is_main_process, every, 0.0
        self.path, self.board = out / "metrics.jsonl", None
        if self.main:
            out.mkdir(parents=True, exist_ok=True)
            _truncate_after(self.path, start)  # a resumed run rewrites what came after its checkpoint
            self.board = _tensorboard(out)

    def add(self, step: int, logs: dict, lr: dict[str, float], seconds: float, last: bool) -> None:
        self.rate = 0.9 * self.rate + 0.1 / seconds if self.rate else 1 / seconds  # smoothed steps/s
        if step % self.every == 0 or last:
            self.write({"step": step, **lr, "steps_per_s": self.rate, **logs})

    def write(self, row: dict) -> None:
        if not self.main:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self.board is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)) and math.isfinite(v):
                    self.board.add_scalar(k, v, row["step"])


def _truncate_after(path: Path, step: int) -> None:
    if path.is_file():
        rows = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= step]
        path.write_text("".join(r + "\n" for r in rows))


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(out / "tensorboard"))


def save_grid(images: torch.Tensor, path: Path, columns: int = 8) -> None:
    """[N,3,H,W] in -1..1 -> one PNG, ``columns`` pictures a row."""
    n, _, h, w = images.shape
    rows = math.ceil(n / columns)
    grid = torch.full((3, rows * h, columns * w), -1.0)
    for i, image in enumerate(images.float().cpu().clamp(-1, 1)):
        r, c = divmod(i, columns)
        grid[:, r * h:(r + 1) * h, c * w:(c + 1) * w] = image
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels_to_pil(grid).save(path)
