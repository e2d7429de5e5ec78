"""The loop every method shares: accelerate, optimizer and warm-up, EMA, logging, validation
grids, atomic checkpoints with exact resume, and the final model file."""

from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path

import torch
from accelerate import Accelerator
from torch import nn
from tqdm.auto import tqdm

from ..core.images import pixels_to_pil
from ..core.models import EditModel
from ..core.toy.datasets import stack
from . import checkpoint
from .config import TrainConfig
from .data import describe
from .ema import EMA
from .methods.base import Method, TrainState


class Objective(nn.Module):
    """The model's modules plus the method's loss, as one module for DDP to wrap."""

    def __init__(self, method: Method, model: EditModel) -> None:
        super().__init__()
        self.parts = nn.ModuleDict(model.modules())
        self.method, self.model = method, model

    def forward(self, batch: dict, rngs: list[torch.Generator], state: TrainState):
        return self.method.loss(self.model, batch, rngs, state)


def sample_seed(run_seed: int, index: int) -> int:
    return run_seed * 1_000_003 + index


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
    params = _trainable_parameters(method, model, config)
    optimizer = _adamw(list(params.values()), config)
    # Stepped by hand once per optimizer step (accelerate would step it once per process).
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(lr_factor, config))
    ema = EMA(params, config.ema_decay) if config.ema_decay else None
    objective, optimizer = accelerator.prepare(Objective(method, model), optimizer)

    start = _resume(out, params, ema, optimizer, scheduler) if resume else 0
    batches = iter(_loader(data, config, start, accelerator.num_processes, accelerator.process_index))
    log = _Log(out, accelerator, start, config.log_every)
    bar = tqdm(total=config.steps, initial=start, disable=not accelerator.is_main_process, desc=method.name)
    for step in range(start, config.steps):
        started = time.perf_counter()
        state = TrainState(step, ema)
        for _ in range(config.grad_accum):
            indices, batch = next(batches)
            rngs = [torch.Generator().manual_seed(sample_seed(config.seed, i)) for i in indices]
            with accelerator.accumulate(objective):
                loss, logs = objective(batch, rngs, state)
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.optim.grad_clip:
                    accelerator.clip_grad_norm_(list(params.values()), config.optim.grad_clip)
                optimizer.step()
                optimizer.zero_grad()
        logs["loss"] = accelerator.reduce(loss.detach(), "mean").item()  # over processes, not just this one
        lr = scheduler.get_last_lr()[0]  # the rate this step used
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
            _checkpoint(out, done, params, ema, optimizer, scheduler, accelerator, config)
    bar.close()
    return _export(method, model, ema, accelerator, out)


def lr_factor(config: TrainConfig, step: int) -> float:
    """The learning rate of optimizer step ``step`` (from 0) over ``optim.lr``: a linear warm-up over
    ``warmup_steps``, then ``schedule``: constant, or a cosine or linear decay reaching 0 after the last step."""
    warmup, steps = max(1, config.optim.warmup_steps), config.steps
    if step + 1 < warmup or config.optim.schedule == "constant":
        return min(1.0, (step + 1) / warmup)
    done = (step + 1 - warmup) / max(1, steps - warmup + 1)  # 0 at the end of the warm-up, 1 after the last step
    return 0.5 * (1 + math.cos(math.pi * done)) if config.optim.schedule == "cosine" else 1.0 - done


def _adamw(params: list[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    kw = dict(lr=config.optim.lr, betas=config.optim.betas, weight_decay=config.optim.weight_decay)
    try:  # one kernel for all tensors: a per-tensor AdamW took a tenth of a toy step on a CPU
        return torch.optim.AdamW(params, fused=True, **kw)
    except RuntimeError:  # a device or dtype without the fused kernel
        return torch.optim.AdamW(params, **kw)


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


def _resume(out: Path, params, ema, optimizer, scheduler) -> int:
    found = checkpoint.latest(out / "checkpoints")
    if found is None:
        return 0
    step, weights, opt_state, sched_state, extra = checkpoint.load(found)
    with torch.no_grad():
        for k, p in params.items():
            p.copy_(weights[f"model.{k}"])
    if ema is not None:
        ema.load({k: weights[f"ema.{k}"] for k in params}, extra["ema_updates"])
    optimizer.load_state_dict(opt_state)
    scheduler.load_state_dict(sched_state)
    return step


def _checkpoint(out, step, params, ema, optimizer, scheduler, accelerator, config) -> None:
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        weights = {f"model.{k}": p for k, p in params.items()}
        if ema is not None:
            weights |= {f"ema.{k}": v for k, v in ema.state().items()}
        extra = {"ema_updates": ema.updates if ema else 0}
        checkpoint.save(out / "checkpoints", step, weights, optimizer.state_dict(), scheduler.state_dict(), extra,
                        config.keep_checkpoints)
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

    def add(self, step: int, logs: dict, lr: float, seconds: float, last: bool) -> None:
        self.rate = 0.9 * self.rate + 0.1 / seconds if self.rate else 1 / seconds  # smoothed steps/s
        if step % self.every == 0 or last:
            self.write({"step": step, "lr": lr, "steps_per_s": self.rate, **logs})

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
