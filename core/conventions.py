"""The one time convention (diffusers flow matching) and the bridge from DDPM models to it.

Flow convention: ``x_t = (1 - t) x0 + t eps``, t = 1 is pure noise, the model predicts the
velocity ``v = eps - x0`` and ``x0 = x_t - t v``. Every wrapper's ``predict`` speaks this.

A DDPM model (epsilon or v prediction) sees ``x = sqrt(a) x0 + sqrt(1 - a) eps`` at a discrete
timestep with cumulative alpha ``a``. The two are the same point up to a scale: with
``sigma = sqrt((1 - a) / a)`` and ``t = sigma / (1 + sigma)``, ``x = x_t * sqrt(a) * (1 + sigma)``.
"""

from __future__ import annotations

import torch


def _bcast(t: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    return t.reshape(-1, *([1] * (like.ndim - 1))) if t.ndim else t


def add_noise(x0: torch.Tensor, t: torch.Tensor | float, eps: torch.Tensor) -> torch.Tensor:
    t = _bcast(t, x0)
    return (1 - t) * x0 + t * eps


def velocity(x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    return eps - x0


def x0_from_velocity(x_t: torch.Tensor, t: torch.Tensor | float, v: torch.Tensor) -> torch.Tensor:
    return x_t - _bcast(t, x_t) * v


class DdpmBridge:
    """Maps flow-convention (x_t, t) to a DDPM model's input and its output back to a velocity."""

    def __init__(self, alphas_cumprod: torch.Tensor, prediction_type: str) -> None:
        if prediction_type not in ("epsilon", "v_prediction"):
            raise ValueError(f"Unsupported DDPM prediction type {prediction_type!r}.")
        self.prediction_type = prediction_type
        a = alphas_cumprod.double()
        self.log_sigmas = (((1 - a) / a) ** 0.5).log()  # increasing with the timestep
        sigma_max = self.log_sigmas[-1].exp()
        self.t_max = float(sigma_max / (1 + sigma_max))

    def to_native(self, x_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (DDPM input, continuous timestep, alpha_cumprod) for flow (x_t, t)."""
        t = t.double().clamp(1e-6, self.t_max)
        sigma = t / (1 - t)
        timestep = self._timestep(sigma.log())
        a = 1 / (1 + sigma**2)
        scale = _bcast((a.sqrt() * (1 + sigma)).to(x_t.dtype), x_t)
        return x_t * scale, timestep.to(x_t.dtype), a

    def flow_time(self, timestep: torch.Tensor) -> torch.Tensor:
        """The flow time of integer DDPM timesteps (the inverse of ``to_native``'s mapping)."""
        sigma = self.log_sigmas.to(timestep.device)[timestep.long()].exp()
        return (sigma / (1 + sigma)).float()

    def velocity_from_native(self, out: torch.Tensor, x_native: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        sa, sb = _bcast(a.sqrt().to(out.dtype), out), _bcast((1 - a).sqrt().to(out.dtype), out)
        if self.prediction_type == "epsilon":
            eps = out
            x0 = (x_native - sb * eps) / sa
        else:
            x0 = sa * x_native - sb * out
            eps = sb * x_native + sa * out
        return eps - x0

    def _timestep(self, log_sigma: torch.Tensor) -> torch.Tensor:
        """Continuous timestep by linear interpolation of the log-sigma table."""
        table = self.log_sigmas.to(log_sigma.device)
        idx = torch.searchsorted(table, log_sigma).clamp(1, len(table) - 1)
        lo, hi = table[idx - 1], table[idx]
        w = ((log_sigma - lo) / (hi - lo)).clamp(0, 1)
        return idx - 1 + w
