"""The paper's training loop for ONE network, in plain PyTorch: the definition the engine must match.

``train_paper_loop`` is the paper's code run as it is (``nn.Module``, ``DataLoader(shuffle=True,
generator=g)``, ``torch.optim``); ``reference_train`` is its old name, kept as an alias for a while
("reference" now means the reference seed only)."""

from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from .data import Dataset, class_labels, noisy_labels, split_training
from .grid import Grid, steps_to_epochs, widths_of
from .model import PaperMLP, optimizer_for, param_names
from .run import Member
from .start import check_starts, member_start


def train_paper_loop(seed: int, l1: float, n_classes: int, data: Dataset, *, hidden: int = 16, depth: int = 1,
                     epochs: int = 50,
                     batch_size: int = 64, lr: float = 0.01, optimizer: str = "sgd", momentum: float = 0.0,
                     weight_decay: float = 0.0, init_seed: int | None = None, order_seed: int | None = None,
                     class_mode: str = "relabel", steps: int | None = None, stop_loss: float | None = None,
                     perturb_ulp: int = 0, widths=None, label_noise: float = 0.0, noise_seed: int = 0,
                     validation: float | None = None, validation_seed: int = 0,
                     dtype: torch.dtype = torch.float32, probe_size: int = 1000,
                     device: str | torch.device = "cpu", start: dict | None = None) -> Member:
    """Train one network the way the paper's code does, on the CPU, and return it as a ``Member``.

    ``torch.manual_seed(seed)`` precedes building the model, and a generator seeded with the same seed
    drives ``DataLoader(shuffle=True)``. Loss: mean cross-entropy + l1 * sum|W1|. Records every epoch's
    parameters, probe embeddings (every hidden layer's pre-activations on the first ``probe_size`` test
    images) and history, like ``train``.
    ``depth``: hidden layers of ``hidden`` units (the paper: 1; ``PaperMLP`` says how they are drawn). L1 is on
    the first layer. ``optimizer``, ``momentum``, ``weight_decay``: torch.optim's SGD, Adam or AdamW with these settings (the paper:
    plain SGD). ``init_seed`` / ``order_seed``: seed the initialisation / the data order with this instead of
    ``seed``. The caller's global random state is restored afterwards. Results come back on the CPU. ``steps``: a budget
    of SGD steps instead of ``epochs``, rounded up to whole epochs of this data set. ``stop_loss``: stop after
    the first epoch whose mean training cross-entropy is below it (the history ends there; ``Member.stopped``).
    ``perturb_ulp``: W1[0, 0] moved up by that many ulps of ``dtype`` after the model is built (the rounding floor).
    ``widths``: every hidden layer's width, first to last (``Grid.widths``: ``PaperMLP`` with per-layer widths;
    sets hidden and depth). ``validation``, ``validation_seed``: hold back that fraction of the training images
    (``data.split_training``), evaluated after every epoch (``val_loss``, ``val_acc``); ``label_noise``,
    ``noise_seed``: then replace that fraction of the remaining training labels (``data.noisy_labels``).
    ``start``: the network's initial parameters (``w1`` (H, D), ``b1`` (H,), ..., the output layer (C, H) and
    (C,)) loaded into the model once it is built, instead of those the seed draws; the data order still comes
    from the seed (or ``order_seed``). Checked as ``train``'s start is (``start.py``).
    """
    grid = Grid(seeds=(seed,), l1=(l1,), n_classes=(n_classes,), hidden=hidden, depth=depth, epochs=epochs,
                batch_size=batch_size, lr=lr, optimizer=optimizer, momentum=momentum, weight_decay=weight_decay,
                init_seed=init_seed, order_seed=order_seed, class_mode=class_mode, steps=steps, stop_loss=stop_loss,
                perturb_ulp=perturb_ulp, widths=widths, label_noise=label_noise, noise_seed=noise_seed,
                validation=validation, validation_seed=validation_seed)  # validates the arguments
    if grid.widths is not None:
        hidden, depth = widths_of(grid.widths), grid.depth
    if start is not None:
        given = check_starts({k: v.unsqueeze(0) if isinstance(v, torch.Tensor) else v for k, v in start.items()}
                             if isinstance(start, dict) else start, [grid], data.x_train.shape[1])[0]
        start = member_start(given, 0, n_classes, depth, dtype)
    data, held = split_training(data, validation, validation_seed)
    keep, labels = class_labels(noisy_labels(data.y_train, label_noise, noise_seed), n_classes, class_mode)
    if steps is not None:
        epochs = steps_to_epochs(steps, int(keep.sum()), batch_size)
    keep_test, labels_test = class_labels(data.y_test, n_classes, class_mode)
    x_test, y_test = data.x_test[keep_test].to(device, dtype), labels_test[keep_test].to(device)
    probe = data.x_test[:probe_size].to(device, dtype)
    if held is not None:
        keep_val, labels_val = class_labels(held[1], n_classes, class_mode)
        x_val, y_val = held[0][keep_val].to(device, dtype), labels_val[keep_val].to(device)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed if init_seed is None else init_seed)
        model = PaperMLP(n_classes, hidden, data.x_train.shape[1], depth).to(device, dtype)
        if start is not None:
            with torch.no_grad():
                for name, p in zip(param_names(depth), model.parameters()):
                    p.copy_(start[name])
        for _ in range(perturb_ulp):
            with torch.no_grad():
                w = model.fc1.weight
                w[0, 0] = torch.nextafter(w[0, 0], torch.tensor(float("inf"), dtype=dtype, device=device))
        g = torch.Generator()
        g.manual_seed(seed if order_seed is None else order_seed)
        loader = DataLoader(TensorDataset(data.x_train[keep].to(device, dtype), labels[keep].to(device)), batch_size=batch_size,
                            shuffle=True, generator=g)
        opt = optimizer_for(model.parameters(), optimizer, lr, momentum, weight_decay)
        init = model.params()
        grad_sum = {k: torch.zeros_like(v) for k, v in init.items()}
        stopped = None  # the epoch after which the stopping rule ended training
        snapshots, embeddings, rows = [init], [model.hidden_preactivations(probe)], []
        for epoch in range(1, epochs + 1):
            loss_sum = correct = seen = grad_norm = steps = 0
            for xb, yb in loader:
                opt.zero_grad()
                logits = model(xb)
                ce = F.cross_entropy(logits, yb)
                loss = ce + l1 * model.fc1.weight.abs().sum()
                loss.backward()
                for name, p in zip(param_names(depth), model.parameters()):
                    grad_sum[name] += p.grad
                grad_norm += model.fc1.weight.grad.norm().item()
                opt.step()
                loss_sum += ce.item() * len(yb)
                correct += (logits.argmax(1) == yb).sum().item()
                seen += len(yb)
                steps += 1
            with torch.no_grad():
                logits = model(x_test)
                rows.append({"seed": seed, "l1": float(l1), "n_classes": n_classes, "epoch": epoch,
                             "train_loss": loss_sum / seen, "train_acc": correct / seen,
                             "test_loss": F.cross_entropy(logits, y_test).item(),
                             "test_acc": (logits.argmax(1) == y_test).double().mean().item(),
                             "grad_norm": grad_norm / steps})
                if held is not None:
                    logits = model(x_val)
                    rows[-1].update(val_loss=F.cross_entropy(logits, y_val).item(),
                                    val_acc=(logits.argmax(1) == y_val).double().mean().item())
                snapshots.append(model.params())
                embeddings.append(model.hidden_preactivations(probe))
            if stop_loss is not None and rows[-1]["train_loss"] < stop_loss:
                stopped = epoch
                break
    if isinstance(embeddings[0], list):  # per-layer widths that differ: one (E+1, P, H_l) per layer
        layers = [torch.stack([epoch[layer] for epoch in embeddings]).cpu() for layer in range(len(embeddings[0]))]
        pre = layers[0]
    else:
        layers = torch.stack(embeddings).cpu()  # (E+1, L, P, H)
        pre = layers[:, 0]
    snapshots = {k: torch.stack([s[k] for s in snapshots]).cpu() for k in init}
    recorded = {"pre": pre, "post": torch.relu(pre), **({"layers": layers} if depth > 1 else {})}
    return Member(seed, float(l1), n_classes, _cpu(init), _cpu(model.params()), _cpu(grad_sum), pd.DataFrame(rows),
                  snapshots, recorded, stopped)


def _cpu(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.cpu() for k, v in params.items()}


reference_train = train_paper_loop  # the old name
