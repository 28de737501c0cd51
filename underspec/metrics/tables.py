"""A trained grid as a tidy table of matching metrics, with their chance levels, and its summary.

``compare(run)`` gives one row per (configuration (l1, n_classes), seed pair, target); ``summarize(table)``
one row per (target, configuration, metric) with mean, std and a bootstrap 95% interval over the pairs.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import torch

from ..errors import UnderspecError, check_choice, shown
from ..training.data import Dataset, class_labels, data_pixels
from ..training.grid import AXES
from ..training.run import MixedRun, Run, check_run
from .chance import ALIVE_METRICS, null_structured, null_untrained, null_untrained_alive, random_pairing
from .matching import (
    DEFAULT_POLICY,
    POLICIES,
    layer_units,
    pair_metrics,
    seed_pairs,
    zero_variance,
)
from .shift import shift_table
from .uncertainty import METHODS, estimate, pair_array
from .units import distance_from_init, run_units

TARGETS = ("params", "grads", "displacement")
NULLS = ("untrained", "structured", "random-pairing")  # see underspec.metrics.chance
NULL_COLUMN = {"untrained": "null", "structured": "null_structured", "random-pairing": "random_pairing"}
NULL_SIZE = {"untrained": 2000, "structured": 16, "random-pairing": 256}  # pairs / mixings / pairings
METRICS = ("apc1", "apc2", "pe", "apc1_signed", "apc2_signed", "pe_signed", "apc2_w1perm", "apc1_data",
           "apc_act", "apc_act_signed", "pe_act", "apc1_alive", "apc2_alive", "pe_alive")
COUNTS = ("zero_var_w1", "zero_var_w2", "zero_var_act", "dead_a", "dead_b")


def compare(run: Run, pairs: str = "reference", *, targets=TARGETS, policy: str = DEFAULT_POLICY,
            data: Dataset | None = None, null="untrained", n_null: int | None = None, alive: bool = True,
            seed: int = 0) -> pd.DataFrame:
    """The paper's metrics and the additions for every configuration, seed pair and target of ``run``.

    pairs: ``"reference"`` (the first seed of the grid against each other one: the paper's view) or
    ``"all"`` (every seed pair). targets: any of ``"params"`` (final weights), ``"grads"`` (the summed
    training gradients, ``run.params("grad_sum")``) and ``"displacement"`` (final - init weights).
    policy: zero-variance policy, ``"zero"`` (default), ``"exclude"`` or ``"raise"`` (see ``metrics.matching``).
    data: the data set the run was trained on; needed for ``apc1_data`` (APC-1 on the pixels that are
    non-zero in at least one training image of the configuration) and for silent units (``metrics.units``).
    null: one or several of ``"untrained"`` (columns ``<metric>_null``: untrained networks; the activation
    nulls are the same pair's activations before training, epoch 0; the live-unit metrics' null has the
    pair's own numbers of live units), ``"structured"`` (``<metric>_null_structured``: b's units mixed by
    random rotations, keeping what unrelated trained networks share; for the live-unit metrics, b's live units
    mixed among themselves) and
    ``"random-pairing"`` (``<metric>_random_pairing``: no matching, a lower bound), or None; see
    ``metrics.chance``. n_null: Monte Carlo size (default 2,000 untrained pairs, 16 mixings, 256 pairings).
    alive: add the paper's metrics over the units alive in both networks (``apc1_alive``, ``apc2_alive``,
    ``pe_alive``) and each network's dead units (``dead_a``, ``dead_b``), by ``metrics.units.DEAD_POLICY``.
    seed: seeds the nulls.

    Columns: ``l1``, ``n_classes``, ``seed_a`` (the reference of the pair), ``seed_b``, ``target``; the
    metrics of ``pair_metrics`` (``apc1``, ``apc2``, ``pe`` are the paper's; ``apc1_data`` only with
    ``data``; ``apc_act``, ``apc_act_signed``, ``pe_act`` only when the run has embeddings: post-ReLU
    activations of the final epoch on the held-out probe images, the same for every target except
    ``pe_act``, which compares with the target's w1 matching); the counts ``zero_var_w1``, ``zero_var_w2``
    (, ``zero_var_act``) over both networks and ``dead_a``, ``dead_b``; the null columns. Rows: configurations
    in grid order (l1-major), then pairs, then targets. A pair with a diverged member (non-finite weights, see
    ``Run.meta["diverged"]``) keeps its row with NaN metrics, which ``summarize`` leaves out of ``n``.
    """
    if isinstance(run, MixedRun):  # part by part, the axes as columns (every part of one hidden layer)
        for part in run.parts:  # every part checked before any is measured
            _check_args(part, targets, policy, null, n_null, data)
        return run.tables(lambda part: compare(part, pairs, targets=targets, policy=policy, data=data, null=null,
                                               n_null=n_null, alive=alive, seed=seed))
    check_run(run, "compare")
    grid = run.grid
    targets, nulls = _check_args(run, targets, policy, null, n_null, data)
    seed_list = seed_pairs(grid.seeds, pairs)
    views = [_target_params(run, t) for t in targets]
    stacked = {k: torch.stack([v[k] for v in views], 1) for k in ("w1", "w2")}  # (N, targets, ...)
    finite = torch.stack([torch.isfinite(v.flatten(1)).all(1) for v in stacked.values()]).all(0)  # (N,)
    if run.embeddings is not None:
        finite &= torch.isfinite(run.embeddings[:, -1].flatten(1)).all(1)
    dead = run_units(run, data) if alive else None  # (N, H)
    masks = {c: None if data is None else _data_pixels(data, c, grid.class_mode) for c in grid.n_classes}
    options = {"targets": targets, "policy": policy, "nulls": nulls, "n_null": n_null, "seed": seed, "dead": dead}
    columns = []
    for l1, c in ((l1, c) for l1 in grid.l1 for c in grid.n_classes):
        ia = torch.tensor([run.index(sa, l1, c) for sa, _ in seed_list])
        ib = torch.tensor([run.index(sb, l1, c) for _, sb in seed_list])
        ok = finite[ia] & finite[ib]  # pairs without a diverged member
        block = {"l1": np.full(len(ia) * len(targets), l1), "n_classes": c,
                 "seed_a": np.repeat([sa for sa, _ in seed_list], len(targets)),
                 "seed_b": np.repeat([sb for _, sb in seed_list], len(targets)),
                 "target": np.tile(targets, len(ia))}
        if ok.all():
            block.update(_configuration(run, stacked, (ia, ib, seed_list), (l1, c, masks[c]), options))
        else:  # the policy for diverged members: their pairs get NaN, which summarize leaves out
            good = [pair for pair, keep in zip(seed_list, ok) if keep]
            values = _configuration(run, stacked, (ia[ok], ib[ok], good), (l1, c, masks[c]), options) \
                if good else {}
            rows = ok.repeat_interleave(len(targets)).numpy()
            for key in _columns(run, data, nulls, alive):
                block[key] = np.full(len(rows), np.nan)
                if good:
                    block[key][rows] = values[key]
        columns.append(pd.DataFrame(block))
    return pd.concat(columns, ignore_index=True)


def _untrained_alive_null(alive, n_classes: int, hidden: int, n_inputs: int, seed: int) -> dict[str, torch.Tensor]:
    """The untrained null of the live-unit metrics, pair by pair: untrained networks with the pair's own numbers
    of live units (``chance.null_untrained_alive``, one draw per distinct pair of counts)."""
    counts = torch.stack([alive[0].sum(-1), alive[1].sum(-1)], -1).tolist()  # (rows, 2)
    levels = {tuple(k): null_untrained_alive(n_classes, *k, hidden=hidden, n_inputs=n_inputs, seed=seed)
              for k in map(tuple, counts)}
    return {m: torch.tensor([levels[tuple(k)][m] for k in counts], dtype=torch.float64) for m in ALIVE_METRICS}


def _null_seed(seed: int, l1: float, n_classes: int) -> int:
    """The seed of a configuration's Monte Carlo null: from its values, so any shard plan gives the same."""
    return zlib.crc32(f"{seed}:{l1!r}:{n_classes}".encode())


def _columns(run, data, nulls, alive) -> list[str]:
    """The metric columns ``compare`` writes for this run, in order (see ``pair_metrics``)."""
    def present(k):
        return ((k != "apc1_data" or data is not None) and ("act" not in k or run.embeddings is not None)
                and ("alive" not in k and "dead" not in k or alive))
    metrics = [k for k in METRICS if present(k)]
    return metrics + [k for k in COUNTS if present(k)] + [
        f"{k}_{NULL_COLUMN[n]}" for n in nulls for k in metrics if "alive" not in k or n != "random-pairing"]


def _configuration(run, stacked, pairs, where, options) -> dict[str, np.ndarray]:
    """Every metric and null of one configuration: {column: (pairs * targets,) array}.

    pairs: (ia, ib, seed pairs), the member numbers of each pair's two networks; where: (l1, C, the
    configuration's data-pixel mask or None); options: compare's targets, policy, nulls, n_null,
    seed, and the dead units (N, H) or None.
    """
    (ia, ib, seed_list), (l1, c, mask) = pairs, where
    targets, policy, seed, dead = (options[k] for k in ("targets", "policy", "seed", "dead"))
    a, b = _cut(stacked, ia, c), _cut(stacked, ib, c)
    acts_a = acts_b = None
    if run.embeddings is not None:  # final epoch, post-ReLU, repeated for every target
        acts_a = torch.relu(run.embeddings[ia, -1]).repeat_interleave(len(targets), 0)
        acts_b = torch.relu(run.embeddings[ib, -1]).repeat_interleave(len(targets), 0)
    if policy == "raise":
        _refuse_zero_variance(a, b, mask, (acts_a, acts_b), (seed_list, targets, l1, c))
    alive = None if dead is None else tuple(~dead[i].repeat_interleave(len(targets), 0) for i in (ia, ib))
    metrics = pair_metrics(a, b, policy=policy, pixel_mask=mask, acts_a=acts_a, acts_b=acts_b, alive=alive)
    values = {k: metrics[k].cpu().numpy() for k in (*METRICS, *COUNTS) if k in metrics}
    if dead is not None:
        values["dead_a"], values["dead_b"] = (dead[i].sum(-1).repeat_interleave(len(targets)).numpy() for i in (ia, ib))
    rows = len(ia) * len(targets)
    for name in options["nulls"]:
        size = options["n_null"] or NULL_SIZE[name]
        if name == "untrained":
            level = null_untrained(c, hidden=run.grid.hidden, n_inputs=a["w1"].shape[-1], pixel_mask=mask,
                                   n_pairs=size, seed=seed)
            null = {k: torch.full((rows,), v, dtype=torch.float64) for k, v in level.items()}
            if acts_a is not None:
                null.update(_init_activation_null(run, ia, ib, c, len(targets), policy))
            if alive is not None:
                null.update(_untrained_alive_null(alive, c, run.grid.hidden, a["w1"].shape[-1], seed))
        elif name == "structured":
            null = null_structured(a, b, n_mix=size, seed=_null_seed(seed, l1, c), policy=policy, pixel_mask=mask,
                                   acts_a=acts_a, acts_b=acts_b, alive=alive)
        else:
            null = random_pairing(a, b, n_pairings=size, seed=_null_seed(seed, l1, c), policy=policy,
                                  pixel_mask=mask, acts_a=acts_a, acts_b=acts_b)
        values.update({f"{k}_{NULL_COLUMN[name]}": null[k].cpu().numpy() for k in METRICS if k in null})
    return values


def summarize(table: pd.DataFrame, *, method: str = "jackknife", level: float = 0.95, n_boot: int = 2000,
              seed: int = 0) -> pd.DataFrame:
    """Per (target, l1, n_classes) and metric: ``n`` pairs, ``n_seeds``, ``mean``, ``std`` (over pairs, ddof 1),
    the seed-level interval of the mean ``ci_low`` / ``ci_high``, and the means of the null columns ``null``
    (untrained), ``null_structured`` and ``random_pairing`` (NaN where compare did not compute them).

    The pairs share seeds, so the interval resamples seeds, not pairs (``underspec.metrics.uncertainty``):
    ``method="jackknife"`` (default: delete one seed at a time, t quantile; near-nominal coverage with 7
    seeds), ``"bootstrap"`` (seeds drawn with replacement, pairs formed from them; ``n_boot`` draws, seeded) or
    ``"pairs"`` (the old pair bootstrap, too narrow; for comparison only). In the reference view only the
    non-reference seeds are resampled. NaN values (a diverged member, policy "exclude" with nothing left) are
    left out of ``n``. ``method`` is a column, so captions can say what was resampled.
    """
    if not isinstance(table, pd.DataFrame):
        raise UnderspecError(f"summarize needs a table from underspec.compare, got {type(table).__name__}")
    check_choice(method, METHODS, "interval method")
    if not 0 < level < 1:
        raise UnderspecError(f"level must be in (0, 1), e.g. 0.95, got {shown(level)}")
    keys = [k for k in ("target", *AXES, "l1", "n_classes") if k in table.columns]
    metrics = [m for m in METRICS if m in table.columns]
    if not metrics:
        raise UnderspecError(f"the table has no metric columns ({', '.join(METRICS)}): pass compare()'s output")
    groups = table.drop_duplicates(keys)[keys].reset_index(drop=True)
    subsets = [part for _, part in table.groupby(keys, sort=False, dropna=False)]  # in the order of ``groups``
    rows = []
    for m in metrics:
        _, _, v = pair_array(table, m, keys)  # (groups, S, S), in the order of ``groups``
        for k, group in groups.iterrows():
            part = v[k:k + 1]
            values = part[0][np.triu_indices(part.shape[-1], 1)]
            values = values[~np.isnan(values)]
            est = estimate(part, method=method, level=level, n_boot=n_boot, seed=seed)
            here = subsets[k]
            nulls = {column: here[f"{m}_{column}"].mean() if f"{m}_{column}" in table else np.nan
                     for column in NULL_COLUMN.values()}
            rows.append({**group.to_dict(), "metric": m, "n": len(values),
                         "n_seeds": int((~np.isnan(part[0])).any(0).sum()),
                         "mean": values.mean() if len(values) else np.nan,
                         "std": values.std(ddof=1) if len(values) > 1 else np.nan,
                         "ci_low": est.low, "ci_high": est.high, **nulls, "method": method})
    order = {m: i for i, m in enumerate(metrics)}
    out = pd.DataFrame(rows)
    out["_g"] = out.groupby(keys, sort=False, dropna=False).ngroup()
    return out.sort_values(["_g", "metric"], key=lambda c: c.map(order) if c.name == "metric" else c,
                           kind="stable").drop(columns="_g").reset_index(drop=True)


def member_table(run: Run, data: Dataset | None = None) -> pd.DataFrame:
    """One row per member: seed, l1, n_classes, final test accuracy and loss, distance from init
    (``rel_change``, ``init_cosine``), dead units and whether training diverged (the regime of a study); for a
    mixed run, part by part with the axes as columns."""
    if isinstance(run, MixedRun):
        return run.tables(lambda part: member_table(part, data))
    table = distance_from_init(check_run(run, "member_table"))
    final = run.history[run.history.epoch == run.grid.epochs].reset_index(drop=True)
    table["test_acc"], table["test_loss"] = final.test_acc.to_numpy(), final.test_loss.to_numpy()
    table["dead_units"] = run_units(run, data).sum(-1).numpy()
    diverged = {(d["seed"], d["l1"], d["n_classes"]) for d in run.meta.get("diverged", [])}
    table["diverged"] = [m in diverged for m in run.grid.members()]
    return table


def study_tables(run: Run, data: Dataset, *, pairs: str = "all", far: Dataset | None = None,
                 null=("untrained", "structured")) -> dict[str, pd.DataFrame]:
    """Everything a study keeps of a trained grid, as tidy tables (never the weights): ``metrics`` (compare of
    the parameters and the summed gradients over ``pairs``, with the nulls ``null``), ``members``
    (``member_table``) and ``shifts`` (``shift_table``: every seed pair under each shifted test set, with
    ``far`` as the far shift); for a mixed run, part by part with the axes as columns."""
    if isinstance(run, MixedRun):
        per_part = {id(part): study_tables(part, data, pairs=pairs, far=far, null=null) for part in run.parts}
        return {name: run.tables(lambda part: per_part[id(part)][name]) for name in ("metrics", "members", "shifts")}
    return {"metrics": compare(run, pairs, data=data, null=null),
            "members": member_table(run, data), "shifts": shift_table(run, data, far=far, pairs=pairs)}


def _data_pixels(data: Dataset, n_classes: int, class_mode: str) -> torch.Tensor:
    keep, _ = class_labels(data.y_train, n_classes, class_mode)
    return data_pixels(data.x_train[keep])


def _check_args(run: Run, targets, policy, null, n_null, data) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The targets and the nulls, checked."""
    if run.grid.depth > 1:
        raise UnderspecError(f"compare measures the paper's one hidden layer; this run has {run.grid.depth}: use "
                             "underspec.metrics.layers.layer_similarity(run, data) for every layer, or "
                             "metrics.seed_similarity.seed_similarity(run, data)")
    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    bad = [t for t in targets if t not in TARGETS]
    if bad or not targets:
        raise UnderspecError(f"unknown target(s) {shown(bad or targets)}: use some of {', '.join(TARGETS)}")
    if len(set(targets)) != len(targets):
        raise UnderspecError(f"duplicate target in {shown(list(targets))}: list each target once")
    if policy not in POLICIES:
        raise UnderspecError(f"unknown zero-variance policy {shown(policy)}: use one of {', '.join(POLICIES)}")
    nulls = () if null is None else (null,) if isinstance(null, str) else tuple(null)
    nulls = tuple("untrained" if n == "init" else n for n in nulls)  # the earlier name
    if "shuffle" in nulls:
        raise UnderspecError("null='shuffle' is now null='random-pairing': a lower bound for a matched metric, "
                             "not its chance level (see underspec.metrics.chance)")
    for name in nulls:
        check_choice(name, NULLS, "null")
    if n_null is not None and (isinstance(n_null, bool) or not isinstance(n_null, int) or n_null < 1):
        raise UnderspecError(f"n_null must be a positive integer or None, got {shown(n_null)}")
    if data is not None and data.name != run.data_name:
        raise UnderspecError(f"data is {shown(data.name)} but the run was trained on {shown(run.data_name)}: "
                             "pass the data set the run was trained on")
    return targets, nulls


def _target_params(run: Run, target: str) -> dict[str, torch.Tensor]:
    if target == "params":
        return run.params("final")
    if target == "grads":
        return run.params("grad_sum")
    final, init = run.params("final"), run.params("init")
    return {k: final[k] - init[k] for k in ("w1", "w2")}


def _cut(stacked: dict[str, torch.Tensor], index: torch.Tensor, n_classes: int) -> dict[str, torch.Tensor]:
    """Members ``index`` of (N, T, ...) stacked targets, pair-major (row p * T + t), w2 cut to its C rows."""
    return {"w1": stacked["w1"][index].flatten(0, 1), "w2": stacked["w2"][index, :, :n_classes].flatten(0, 1)}


def _refuse_zero_variance(a, b, mask, acts, where) -> None:
    """Policy "raise": name the first seed pair and target with a zero-variance unit, in any compared view.

    acts: (acts_a, acts_b) activations or (None, None); where: (seed pairs, targets, l1, C) of the rows."""
    (acts_a, acts_b), (seed_list, targets, l1, c) = acts, where
    views = {"w1": (a["w1"], b["w1"]), "w2": (layer_units(a, 2), layer_units(b, 2))}
    if mask is not None:
        views["w1 on data pixels"] = (a["w1"][..., mask], b["w1"][..., mask])
    if acts_a is not None:
        views["activations"] = (acts_a.transpose(-1, -2), acts_b.transpose(-1, -2))
    for name, units in views.items():
        bad = (zero_variance(units[0]) | zero_variance(units[1])).any(-1)
        if bad.any():
            pair, t = divmod(int(bad.nonzero()[0]), len(targets))
            raise UnderspecError(f"zero-variance unit(s) (Pearson r undefined) in {name} of the {targets[t]} of seeds "
                                 f"{seed_list[pair]} at l1={l1}, n_classes={c}: pass policy='zero' or 'exclude'")


def _init_activation_null(run: Run, ia, ib, n_classes: int, repeat: int, policy: str) -> dict[str, torch.Tensor]:
    """The activation metrics of the same pairs at initialisation (epoch 0): untrained, independent networks
    on the same probe images; ``pe_act`` compares with the matching of the initial w1."""
    init = {k: v.unsqueeze(1) for k, v in run.params("init").items() if k in ("w1", "w2")}
    init = _cut(init, ia, n_classes), _cut(init, ib, n_classes)
    acts = torch.relu(run.embeddings[ia, 0]), torch.relu(run.embeddings[ib, 0])
    metrics = pair_metrics(*init, policy=policy, acts_a=acts[0], acts_b=acts[1])
    return {k: metrics[k].repeat_interleave(repeat) for k in ("apc_act", "apc_act_signed", "pe_act")}
