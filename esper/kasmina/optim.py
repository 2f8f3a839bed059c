"""SGD and Adam as esper trains with them, without torch.optim.

torch.optim's `Optimizer` wraps `step`, `zero_grad` and `load_state_dict` in
`torch._disable_dynamo`, which imports torch._dynamo on the first call: 1.2-1.4 s of CPU in
every process that trains (issue 22). These two classes repeat torch 2.13's single-tensor
updates (torch/optim/sgd.py `_single_tensor_sgd`, torch/optim/adam.py `_single_tensor_adam`,
the path torch takes for CPU tensors) operation for operation (SGD as foreach ops over all its
parameters, `step_together`, the same arithmetic tensor by tensor), so a trajectory is
bit-identical to torch.optim's; and `state_dict()` has torch's exact format, so policy checkpoints and
governor snapshots load into either. Only what esper uses: no closure, no sparse or complex
parameters, and torch's other options (nesterov, dampening, amsgrad, maximize, foreach, fused,
capturable, differentiable, decoupled weight decay) at their defaults.

Home: kasmina (seeds), tolaria (host) and simic (PPO) all step one, and the two others may
import kasmina (docs/architecture.md section 1).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import torch


class Optimizer:
    """The part of `torch.optim.Optimizer` esper uses: `param_groups` (read or set "lr"),
    `state` (per parameter), `zero_grad`, `state_dict` and `load_state_dict`."""

    # torch's options esper leaves at their defaults; a state dict that sets one is refused
    _FIXED: dict[str, Any] = {}

    def __init__(self, params: Iterable[torch.Tensor], defaults: dict[str, Any]) -> None:
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        self.state: defaultdict[torch.Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = [{"params": params, **defaults}]

    def zero_grad(self) -> None:
        """Drop every gradient (torch's `set_to_none=True`, the only way esper clears them)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def state_dict(self) -> dict[str, Any]:
        """torch's format: {"state": {index: {...}}, "param_groups": [{..., "params": [index]}]},
        parameters numbered in group order. Tensors are shared, not copied (as in torch)."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: v for p, v in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict of this class or of the torch.optim class of the same name. State
        tensors move to their parameter's device (and floating dtype, except Adam's "step");
        like torch, the tensors are not copied: pass a copy to keep the source unchanged."""
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups) or any(
                len(s["params"]) != len(g["params"])
                for s, g in zip(saved_groups, self.param_groups)):
            raise ValueError("loaded state dict does not match the optimizer's parameter groups")
        for saved in saved_groups:
            changed = [k for k, v in self._FIXED.items() if saved.get(k, v) != v]
            if changed:
                raise ValueError(f"loaded state dict sets unsupported options: {changed}")
        id_map = {i: p for s, g in zip(saved_groups, self.param_groups)
                  for i, p in zip(s["params"], g["params"])}
        state: defaultdict[torch.Tensor, dict[str, Any]] = defaultdict(dict)
        for i, values in state_dict["state"].items():
            param = id_map[i]
            state[param] = {k: _cast(param, k, v) for k, v in values.items()}
        for saved, group in zip(saved_groups, self.param_groups):
            saved["params"] = group["params"]
        self.state = state
        self.param_groups = saved_groups


def _cast(param: torch.Tensor, key: str, value: Any) -> Any:
    """torch's `_process_value_according_to_param_policy` for a non-fused, non-capturable group."""
    if not isinstance(value, torch.Tensor) or key == "step":
        return value
    if param.is_floating_point():
        return value.to(dtype=param.dtype, device=param.device)
    return value.to(device=param.device)


class SGD(Optimizer):
    """torch.optim.SGD(params, lr, momentum, weight_decay=weight_decay): dampening 0, no
    nesterov, no maximize."""

    _FIXED = {"dampening": 0, "nesterov": False, "maximize": False, "foreach": None,
              "differentiable": False, "fused": None}

    def __init__(self, params: Iterable[torch.Tensor], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        if lr < 0.0 or momentum < 0.0 or weight_decay < 0.0:
            raise ValueError(f"invalid SGD settings: lr={lr}, momentum={momentum}, "
                             f"weight_decay={weight_decay}")
        # torch's key order, so state_dict() equals torch's
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": 0,
                                  "weight_decay": weight_decay, "nesterov": False,
                                  "maximize": False, "foreach": None, "differentiable": False,
                                  "fused": None})

    def step(self) -> None:
        """Update every parameter that has a gradient: `step_together` of this optimiser."""
        step_together([self])


@torch.no_grad()
def step_together(optimizers: Sequence[SGD]) -> None:
    """`step()` of every optimiser in `optimizers`, as one foreach pass per update operation
    over all their parameters of the same settings (the stacked env step's host optimisers).
    Tensor by tensor the arithmetic is `SGD.step`'s (a CPU foreach op is the single-tensor op
    in a C++ loop), so the parameters and buffers come out the same; there are four calls per
    setting instead of four per parameter."""
    by_settings: dict[tuple[float, float, float], list[tuple[SGD, torch.Tensor]]] = {}
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            settings = (group["lr"], group["momentum"], group["weight_decay"])
            by_settings.setdefault(settings, []).extend(
                (optimizer, p) for p in group["params"] if p.grad is not None)
    for (lr, momentum, weight_decay), members in by_settings.items():
        if not members:
            continue
        params = [p for _, p in members]
        grads = [p.grad for p in params]
        if weight_decay != 0:
            grads = torch._foreach_add(grads, params, alpha=weight_decay)
        if momentum != 0:
            states = [optimizer.state[p] for optimizer, p in members]
            held = [i for i, state in enumerate(states) if "momentum_buffer" in state]
            if held:
                buffers = [states[i]["momentum_buffer"] for i in held]
                torch._foreach_mul_(buffers, momentum)
                torch._foreach_add_(buffers, [grads[i] for i in held], alpha=1)  # dampening 0
            for state, grad in zip(states, grads):
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = grad.detach().clone()
            grads = [state["momentum_buffer"] for state in states]
        torch._foreach_add_(params, grads, alpha=-lr)


class Adam(Optimizer):
    """torch.optim.Adam(params, lr, betas, eps, weight_decay): L2 weight decay added to the
    gradient, no amsgrad, no maximize."""

    _FIXED = {"amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
              "differentiable": False, "fused": None, "decoupled_weight_decay": False}

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        if not (0.0 <= lr and 0.0 <= eps and 0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0
                and 0.0 <= weight_decay):
            raise ValueError(f"invalid Adam settings: lr={lr}, betas={betas}, eps={eps}, "
                             f"weight_decay={weight_decay}")
        super().__init__(params, {"lr": lr, "betas": (float(betas[0]), float(betas[1])),
                                  "eps": eps, "weight_decay": weight_decay, "amsgrad": False,
                                  "maximize": False, "foreach": None, "capturable": False,
                                  "differentiable": False, "fused": None,
                                  "decoupled_weight_decay": False})

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    # float32 step on the CPU (float64 under a float64 default), as torch
                    state["step"] = torch.tensor(
                        0.0, dtype=torch.float64 if torch.get_default_dtype() == torch.float64
                        else torch.float32)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                grad = p.grad
                exp_avg, exp_avg_sq, step_t = state["exp_avg"], state["exp_avg_sq"], state["step"]
                step_t += 1
                if weight_decay != 0:
                    grad = grad.add(p, alpha=weight_decay)
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                step = step_t.item()
                bias_correction1 = 1 - beta1**step
                bias_correction2 = 1 - beta2**step
                step_size = lr / bias_correction1
                bias_correction2_sqrt = bias_correction2**0.5
                denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
                p.addcdiv_(exp_avg, denom, value=-step_size)
