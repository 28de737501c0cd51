"""What a training records for every member (init, final, gradient sum, history, per-epoch snapshots and
probe embeddings), kept on the device until the end and handed back as a ``Run`` per part."""

from __future__ import annotations

import pandas as pd
import torch

from .grid import Grid
from .run import Run, history_columns


class Records:
    """Everything recorded during training, for all N members, kept on the device until the end."""

    def __init__(self, n_members, grid, probe_size, keep_snapshots, keep_embeddings, device, dtype, *,
                 stopping: bool = False):
        e = grid.epochs
        self.init, self.final, self.grad_sum = {}, {}, {}
        self.columns = history_columns(grid)
        self.history = torch.zeros(n_members, e, len(self.columns), dtype=torch.float64, device=device)
        self.snapshots = {} if keep_snapshots else None
        self.embeddings = ([torch.zeros(n_members, e + 1, probe_size, h, dtype=dtype, device=device)
                            for h in grid.layer_widths()] if keep_embeddings else None)  # one per hidden layer
        self.stopped = torch.zeros(n_members, dtype=torch.long, device=device)  # epoch a member stopped; 0: never
        self.n_members, self.epochs = n_members, e
        self.stopping = stopping or grid.stop_loss is not None  # members may stop: their epochs are recorded

    def store(self, name: str, index: torch.Tensor, params: dict[str, torch.Tensor], epoch: int | None = None):
        """Write member-major ``params`` (len(index), ...) into record ``name`` at the members ``index``."""
        target = getattr(self, name)
        for key, value in params.items():
            if key not in target:
                shape = (self.n_members, *(() if epoch is None else (self.epochs + 1,)), *value.shape[1:])
                target[key] = torch.zeros(shape, dtype=value.dtype, device=value.device)
            if epoch is None:
                target[key][index] = value
            else:
                target[key][index, epoch] = value

    def diverged(self, grid: Grid, rows: slice) -> list[dict]:
        """The members ``rows`` (of the uniform ``grid``) whose training loss or final weights are not finite,
        each with the first epoch whose loss was not finite (checked once, after training: no host sync on the
        hot path). Their test loss and accuracy are set to NaN: a NaN network's arg-max is class 0, and its
        "accuracy" would be a lie."""
        history = self.history[rows]
        loss_bad = ~torch.isfinite(history[..., 0])  # (N, E)
        weights_bad = torch.stack([~torch.isfinite(v[rows].flatten(1)).all(1) for v in self.final.values()]).any(0)
        bad = (loss_bad.any(1) | weights_bad).cpu()
        if not bad.any():
            return []
        first = torch.where(loss_bad.any(1), loss_bad.float().argmax(1) + 1, self.epochs).cpu()
        history[bad.to(history.device), :, 2:4] = float("nan")
        if history.shape[-1] > 5:  # the validation split's loss and accuracy: as the test set's
            history[bad.to(history.device), :, 5:] = float("nan")
        members = grid.members()
        return [{"seed": members[i][0], "l1": members[i][1], "n_classes": members[i][2], "epoch": int(first[i])}
                for i in torch.nonzero(bad).squeeze(1).tolist()]

    def to_run(self, grid: Grid, rows: slice, data_name: str, probe_index: torch.Tensor, meta: dict, *,
               whole: bool) -> Run:
        """The members ``rows`` as the Run of their uniform ``grid`` (``whole``: they are every member, so
        no copy is needed; otherwise copies, so that a saved part does not carry its group's tensors)."""
        def cut(t):
            return t.cpu() if whole else t[rows].cpu().clone()

        meta = {**meta, "diverged": self.diverged(grid, rows)}
        if self.stopping:  # per member, in grid order: the epoch after which it stopped, or None
            meta["stopped"] = [epoch or None for epoch in self.stopped[rows].tolist()]
        cpu = {name: {k: cut(v) for k, v in getattr(self, name).items()} for name in ("init", "final", "grad_sum")}
        snapshots = {k: cut(v) for k, v in self.snapshots.items()} if self.snapshots is not None else None
        values = cut(self.history).reshape(-1, len(self.columns)).numpy()
        index = pd.MultiIndex.from_tuples([(*m, ep) for m in grid.members() for ep in range(1, grid.epochs + 1)],
                                          names=["seed", "l1", "n_classes", "epoch"])
        history = pd.DataFrame(values, index=index, columns=list(self.columns)).reset_index()
        embeddings = deeper = None
        if self.embeddings is not None:
            embeddings = cut(self.embeddings[0])
            if grid.depth > 1:  # (N, E+1, L-1, P, H), or per layer where the widths differ
                deeper = [cut(layer) for layer in self.embeddings[1:]]
                deeper = torch.stack(deeper, 2) if len(set(grid.layer_widths())) == 1 else deeper
        return Run(grid, data_name, cpu["init"], cpu["final"], cpu["grad_sum"], history, probe_index, snapshots,
                   embeddings, meta, deeper)
