"""Matching the hidden units of two networks, and the paper's metrics APC-1, APC-2 and PE.

A "unit vector" is what describes one hidden unit: its row of ``w1`` (784 pixel weights), its column of
``w2`` (C class weights), or its activations on a set of images. Everything here is batched: leading axes
index pairs of networks, all correlation matrices come from one matrix product (in float64), and only the
Hungarian algorithm (``scipy.optimize.linear_sum_assignment``, CPU) loops over the pairs.

The paper's metrics (PROTOCOL section 2), for networks ``a`` (the reference) and ``b``:

- ``R1[i, j]`` = Pearson r of row i of ``w1(a)`` and row j of ``w1(b)``; ``perm1`` = Hungarian on ``-|R1|``;
  **APC-1** = mean over units of ``|R1[i, perm1[i]]|``.
- The same on the columns of ``w2`` with its own matching ``perm2``: **APC-2**.
- **PE** = fraction of units with ``perm1[i] == perm2[i]``.

Zero-variance units (a dead unit's gradient row, a constant vector) have no Pearson r; the paper's code
would crash on the NaN. ``policy`` says what happens instead (``DEFAULT_POLICY = "zero"``):

- ``"raise"``: an ``UnderspecError`` that names the pair and the units.
- ``"zero"`` (default): the unit's correlations count as 0; it is still matched (the assignment must be
  complete) but that match is *invalid*: it adds 0 to APC and never counts as a PE agreement, and the
  denominators stay H, so values stay comparable with the paper's and an unmatched unit lowers the score.
- ``"exclude"``: the unit is left out: matching runs on the units with variance (``perm = -1`` for the
  others), APC averages over the valid matches and PE over the units valid in both matchings (NaN when
  none is left, which ``compare`` explains with its zero-variance counts).

A unit is zero-variance when all its entries are equal (the test ``scipy.stats.pearsonr`` applies).

A pair with a diverged network (a NaN or infinite parameter) has no matching: ``pair_metrics`` and
``layers.layer_metrics`` give it NaN in every metric (as ``compare`` does), never scipy's "invalid numeric
entries" error.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from ..errors import UnderspecError, check_choice, shown
from ..training.model import PERMUTATION_SPEC, hidden_preactivation
from .symmetry import permute

POLICIES = ("raise", "zero", "exclude")
DEFAULT_POLICY = "zero"
VIEWS = ("reference", "all")
ALIGN_METHODS = ("weights", "activations")


@dataclass(frozen=True, eq=False)
class Matching:
    """A matching of the units of ``a`` (Ha of them) to units of ``b``, for a batch of pairs.

    ``perm`` (..., Ha) int64: unit of ``b`` matched to unit i of ``a``; -1 where unmatched ("exclude").
    ``r`` (..., Ha) float64: Pearson r of each matched pair (0 where the match is not valid).
    ``valid`` (..., Ha) bool: matched, and both units have non-zero variance.
    ``signed``: whether the matching maximised r (True) or |r| (False, the paper).
    ``policy``: the zero-variance policy it was made under (decides the denominators of APC and PE).
    ``corr`` (..., Ha, Hb) float64: the whole correlation matrix it was made from (0 where undefined).
    """

    perm: torch.Tensor
    r: torch.Tensor
    valid: torch.Tensor
    signed: bool
    policy: str
    corr: torch.Tensor | None = None


def seed_pairs(seeds, pairs: str = "reference") -> list[tuple[int, int]]:
    """The seed pairs of a view: ``"reference"`` = (seeds[0], s) for every other s (the paper's 6 pairs),
    ``"all"`` = every unordered pair in seed order (21 for 7 seeds)."""
    seeds = list(seeds)
    if pairs not in VIEWS:
        raise UnderspecError(f"unknown pairs view {shown(pairs)}: use one of {', '.join(VIEWS)}")
    if len(seeds) < 2:
        raise UnderspecError(f"comparing seeds needs at least 2 seeds, got {seeds}")
    if pairs == "reference":
        return [(seeds[0], s) for s in seeds[1:]]
    return list(itertools.combinations(seeds, 2))


def layer_units(params: dict[str, torch.Tensor], layer: int, *, spec=PERMUTATION_SPEC) -> torch.Tensor:
    """The hidden units as vectors, read off the permutation spec: ``layer=1`` -> each unit's incoming
    weights, the rows of ``w1`` (..., H, D); ``layer=2`` -> its outgoing weights, the columns of ``w2``
    (..., H, C)."""
    if layer not in (1, 2):
        raise UnderspecError(f"layer must be 1 or 2, got {shown(layer)}")
    incoming, _, outgoing = spec["h1"]  # (w1, -2), (b1, -1), (w2, -1)
    name, axis = incoming if layer == 1 else outgoing
    return params[name].movedim(axis, -2)


def zero_variance(units: torch.Tensor) -> torch.Tensor:
    """(..., H, K) -> (..., H) bool: the units whose K entries are all equal (Pearson r undefined)."""
    return (units == units[..., :1]).all(-1)


def unit_correlation(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pearson r between every unit of ``a`` and every unit of ``b``, batched.

    a: (..., Ha, K), b: (..., Hb, K) (leading axes broadcast), any float dtype, CPU or GPU.
    Returns ``r`` (..., Ha, Hb) float64, ``zero_a`` (..., Ha) and ``zero_b`` (..., Hb) bool. Entries that
    involve a zero-variance unit are undefined: they are 0 in ``r`` and flagged by the masks, so that a
    caller applies a policy (``match_units`` does). For K = 2, r is exactly +-1 (as in ``scipy.stats.pearsonr``).
    """
    if a.shape[-1] != b.shape[-1]:
        raise UnderspecError(f"units to correlate must have the same length, got {a.shape[-1]} and {b.shape[-1]}")
    if a.shape[-1] < 2:
        raise UnderspecError(f"a Pearson correlation needs vectors of length >= 2, got {a.shape[-1]}")
    zero_a, zero_b = zero_variance(a), zero_variance(b)
    if a.shape[-1] == 2:  # two points always lie on a line: r is the product of the slopes' signs
        r = (_step_sign(a).unsqueeze(-1) * _step_sign(b).unsqueeze(-2)).double()
    else:
        r = (_standardise(a) @ _standardise(b).transpose(-1, -2)).clamp_(-1.0, 1.0)
    return r, zero_a, zero_b


def match_units(a, b, *, layer: int | None = None, signed: bool = False, policy: str = DEFAULT_POLICY) -> Matching:
    """The Hungarian matching of the units of network ``a`` to those of network ``b``, with its correlations.

    Either unit vectors ``a`` (..., Ha, K) and ``b`` (..., Hb, K) (weights, activations transposed), or two
    parameter dicts and ``layer``: 1 matches the rows of ``w1``, 2 the columns of ``w2`` (see
    ``layer_units``). ``signed=False`` maximises the summed |r| (the paper: ``linear_sum_assignment(-abs(R))``),
    which pairs anti-correlated units; ``signed=True`` maximises the summed r. ``policy``: see the module doc.
    The result's ``corr`` is the correlation matrix (..., Ha, Hb), ``perm`` the matching.
    """
    if isinstance(a, dict) or isinstance(b, dict):
        a, b = layer_units(a, layer or 1), layer_units(b, layer or 1)
    elif layer is not None:
        raise UnderspecError("layer= picks the units of parameter dicts: pass the networks' parameters, or "
                             "unit vectors without layer=")
    r, zero_a, zero_b = unit_correlation(a, b)
    return assign(r, zero_a, zero_b, signed=signed, policy=policy)


def assign(r: torch.Tensor, zero_a: torch.Tensor, zero_b: torch.Tensor, *, signed: bool = False,
           policy: str = DEFAULT_POLICY) -> Matching:
    """The Hungarian matching on a correlation batch from ``unit_correlation`` (so it can be reused)."""
    _check_policy(policy, zero_a, zero_b)
    keep = (~zero_a, ~zero_b) if policy == "exclude" else (None, None)
    perm = hungarian(r if signed else r.abs(), *keep)
    return evaluate_matching(r, zero_a, zero_b, perm, signed=signed, policy=policy)


def hungarian(score: torch.Tensor, keep_a: torch.Tensor | None = None,
              keep_b: torch.Tensor | None = None) -> torch.Tensor:
    """The assignment that maximises the summed ``score`` (..., Ha, Hb), one ``linear_sum_assignment`` per
    pair (on the CPU): ``perm`` (..., Ha) int64 on ``score``'s device. ``keep_a`` (..., Ha) / ``keep_b``
    (..., Hb) bool restrict it to some units; the others get ``perm = -1`` (or are never chosen)."""
    ha, hb = score.shape[-2:]
    lead = score.shape[:-2]
    flat = score.reshape(-1, ha, hb).cpu().numpy()
    perm = np.full((len(flat), ha), -1, dtype=np.int64)
    if keep_a is None:
        for k in range(len(flat)):
            i, j = linear_sum_assignment(-flat[k])  # the paper's call, ties included
            perm[k, i] = j
    else:
        ka = keep_a.expand(*lead, ha).reshape(-1, ha).cpu().numpy()
        kb = keep_b.expand(*lead, hb).reshape(-1, hb).cpu().numpy()
        for k in range(len(flat)):
            rows, cols = np.flatnonzero(ka[k]), np.flatnonzero(kb[k])
            i, j = linear_sum_assignment(-flat[k][np.ix_(rows, cols)])
            perm[k, rows[i]] = cols[j]
    return torch.from_numpy(perm).reshape(*lead, ha).to(score.device)


def evaluate_matching(r: torch.Tensor, zero_a: torch.Tensor, zero_b: torch.Tensor, perm: torch.Tensor, *,
                      signed: bool = False, policy: str = DEFAULT_POLICY) -> Matching:
    """A given matching ``perm`` (..., Ha) (-1 = unmatched) scored on a correlation batch: for example the
    columns of ``w2`` under the matching of ``w1`` (the one permutation that preserves the function)."""
    _check_policy(policy, zero_a, zero_b)
    lead = np.broadcast_shapes(r.shape[:-2], perm.shape[:-1])
    perm = perm.expand(*lead, r.shape[-2])
    matched = perm >= 0
    safe = perm.clamp(min=0)
    r_matched = r.expand(*lead, *r.shape[-2:]).gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    valid = matched & ~zero_a.expand(*lead, r.shape[-2]) & ~zero_b.expand(*lead, r.shape[-1]).gather(-1, safe)
    return Matching(perm, torch.where(valid, r_matched, torch.zeros_like(r_matched)), valid, signed, policy, r)


def apc(m: Matching) -> torch.Tensor:
    """Average (absolute, unless the matching is signed) Pearson correlation of the matched units: (...,).

    Paper matching: mean of |r|; signed matching: mean of r. Denominator: Ha ("zero", "raise") or the
    number of valid matches ("exclude").
    """
    values = m.r if m.signed else m.r.abs()
    return values.sum(-1) / _denominator(m.valid, m.policy)


def pe(m1: Matching, m2: Matching) -> torch.Tensor:
    """Permutation agreement (the paper's PE): fraction of units that both matchings send to the same unit
    of the other network, (...,). A pair counts only where both matches are valid; denominator Ha, or the
    units valid in both ("exclude")."""
    both = m1.valid & m2.valid
    agree = both & (m1.perm == m2.perm)
    return agree.sum(-1) / _denominator(both, m1.policy)


def pair_units(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], *, pixel_mask: torch.Tensor | None = None,
               acts_a: torch.Tensor | None = None, acts_b: torch.Tensor | None = None) -> dict[str, tuple]:
    """The unit vectors of both networks that the metrics compare, by view: ``"w1"`` (rows of w1),
    ``"w2"`` (columns of w2), ``"w1_data"`` (rows of w1 on ``pixel_mask``), ``"act"`` (activations):
    {view: (units of a (..., H, K), units of b (..., H, K))}."""
    if (acts_a is None) != (acts_b is None):
        raise UnderspecError("give both acts_a and acts_b (activations of both networks), or neither")
    views = {"w1": (layer_units(a, 1), layer_units(b, 1)), "w2": (layer_units(a, 2), layer_units(b, 2))}
    if pixel_mask is not None:
        mask = torch.as_tensor(pixel_mask, dtype=torch.bool, device=a["w1"].device)
        if mask.shape != a["w1"].shape[-1:]:
            raise UnderspecError(f"pixel_mask must be ({a['w1'].shape[-1]},) bool, got {tuple(mask.shape)}")
        views["w1_data"] = (a["w1"][..., mask], b["w1"][..., mask])
    if acts_a is not None:
        views["act"] = (acts_a.transpose(-1, -2), acts_b.transpose(-1, -2))
    return views


def pair_metrics(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], *, policy: str = DEFAULT_POLICY,
                 pixel_mask: torch.Tensor | None = None, acts_a: torch.Tensor | None = None,
                 acts_b: torch.Tensor | None = None, alive: tuple[torch.Tensor, torch.Tensor] | None = None,
                 match=None) -> dict[str, torch.Tensor]:
    """Every weight- (and activation-) matching metric for a batch of network pairs, as (...,) tensors.

    a, b: ``w1`` (..., H, D) and ``w2`` (..., C, H), unpadded (cut to the pair's own C); ``a`` is the
    reference. pixel_mask: (D,) bool, the data-carrying pixels. acts_a, acts_b: (..., P, H) hidden
    activations on the same P images. alive: (alive_a, alive_b) (..., H) bool, the units that are not dead
    (``underspec.metrics.units``). match: ``f(r, zero_a, zero_b, signed) -> Matching`` used instead of the
    Hungarian matching (``assign``); ``random_pairing`` passes random pairings.

    Keys: the paper's ``apc1``, ``apc2``, ``pe``; ``apc1_signed``, ``apc2_signed``, ``pe_signed`` (matching
    on r); ``apc2_w1perm`` (|r| of the columns of w2 under the w1 matching); ``apc1_data`` (APC-1 on
    ``pixel_mask`` only, with its own matching; only when a mask is given); ``apc_act`` / ``apc_act_signed``
    (matching the units by their activations, |r| / r) and ``pe_act`` (agreement of the activation
    matching with the paper's w1 matching; only when activations are given); ``zero_var_w1``,
    ``zero_var_w2``, ``zero_var_act`` (zero-variance units in both networks together, int64); with
    ``alive``: ``apc1_alive``, ``apc2_alive``, ``pe_alive`` (the paper's three over the units alive in both
    networks: dead units are left out of the matching, as policy "exclude" leaves zero-variance ones out).
    """
    def measure(a, b, acts_a, acts_b):
        views = pair_units(a, b, pixel_mask=pixel_mask, acts_a=acts_a, acts_b=acts_b)
        correlations = {view: unit_correlation(*units) for view, units in views.items()}
        return metrics_of(correlations, policy=policy, alive=alive, match=match)

    return nan_where_diverged(measure, a, b, acts_a, acts_b)


def finite_pairs(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], *extra) -> torch.Tensor:
    """(...,) bool over a batch of pairs: every parameter of both networks (and every tensor of ``extra``,
    (..., P, H) or None) is finite. The pair axes are those of ``w1`` (..., H, D) without its last two."""
    lead = a["w1"].dim() - 2
    tensors = [*a.values(), *b.values(), *(t for t in extra if t is not None)]
    return torch.stack([torch.isfinite(t.flatten(lead) if t.dim() > lead else t[..., None]).all(-1)
                        for t in tensors]).all(0)


def nan_where_diverged(measure, a: dict, b: dict, *extra) -> dict[str, torch.Tensor]:
    """``measure(a, b, *extra)`` for a batch of pairs, NaN in every float result of a pair that has a non-finite
    parameter (a diverged network): those pairs are measured on a stand-in (random finite values) so that the
    matching runs, and their results are then replaced."""
    finite = finite_pairs(a, b, *extra)
    if bool(finite.all()):
        return measure(a, b, *extra)
    g = torch.Generator().manual_seed(0)

    def stand_in(t):
        if t is None:
            return None
        bad = ~finite.reshape(*finite.shape, *[1] * (t.dim() - finite.dim()))
        return torch.where(bad, torch.randn(t.shape, generator=g, dtype=t.dtype), t)

    out = measure({k: stand_in(v) for k, v in a.items()}, {k: stand_in(v) for k, v in b.items()},
                  *(stand_in(t) for t in extra))
    return {k: torch.where(~finite.reshape(*finite.shape, *[1] * (v.dim() - finite.dim())), torch.nan, v)
            if v.is_floating_point() else v for k, v in out.items()}


def metrics_of(correlations: dict[str, tuple], *, policy: str = DEFAULT_POLICY,
               alive: tuple[torch.Tensor, torch.Tensor] | None = None, match=None) -> dict[str, torch.Tensor]:
    """``pair_metrics`` from the correlations of each view: {view: (r, zero_a, zero_b)} as ``unit_correlation``
    gives them for the views of ``pair_units``."""
    if match is None:
        def match(r, zero_a, zero_b, signed):
            return assign(r, zero_a, zero_b, signed=signed, policy=policy)
    r1, za1, zb1 = correlations["w1"]
    r2, za2, zb2 = correlations["w2"]
    m1, m2 = match(r1, za1, zb1, False), match(r2, za2, zb2, False)
    s1, s2 = match(r1, za1, zb1, True), match(r2, za2, zb2, True)
    out = {"apc1": apc(m1), "apc2": apc(m2), "pe": pe(m1, m2),
           "apc1_signed": apc(s1), "apc2_signed": apc(s2), "pe_signed": pe(s1, s2),
           "apc2_w1perm": apc(evaluate_matching(r2, za2, zb2, m1.perm, policy=policy))}
    if "w1_data" in correlations:
        out["apc1_data"] = apc(match(*correlations["w1_data"], False))
    out.update(zero_var_w1=za1.sum(-1) + zb1.sum(-1), zero_var_w2=za2.sum(-1) + zb2.sum(-1))
    if alive is not None:
        out_a, out_b = ~alive[0], ~alive[1]
        l1 = assign(r1, za1 | out_a, zb1 | out_b, policy="exclude")
        l2 = assign(r2, za2 | out_a, zb2 | out_b, policy="exclude")
        out.update(apc1_alive=apc(l1), apc2_alive=apc(l2), pe_alive=pe(l1, l2))
    if "act" in correlations:
        ra, zaa, zba = correlations["act"]
        ma = match(ra, zaa, zba, False)
        out.update(apc_act=apc(ma), apc_act_signed=apc(match(ra, zaa, zba, True)), pe_act=pe(ma, m1),
                   zero_var_act=zaa.sum(-1) + zba.sum(-1))
    return out


def mixed_correlation(a: torch.Tensor, b: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``unit_correlation(a, q @ b)`` for many mixings at once, without forming ``q @ b``: a (..., H, K),
    b (..., H, K), q (M, ..., H, H) -> r (M, ..., H, H) and the zero-variance masks (broadcast).

    Centring commutes with mixing, so r[i, j] = <a_i, (Q b)_j> / (|a_i| |(Q b)_j|) needs only the H x H
    products a b^T and b b^T of each pair: K-sized work once, H-sized work per mixing.
    """
    if a.shape[-1] == 2:  # two entries: r is a product of signs (see unit_correlation), mix explicitly
        r, za, zb = unit_correlation(a, q @ b.double())
        return r, za.expand(r.shape[:-1]), zb
    za = zero_variance(a)
    centred = b.double() - b.double().mean(-1, keepdim=True)
    cross = _standardise(a) @ centred.transpose(-1, -2)  # (..., H, H): a's unit i with b's unit k
    gram = centred @ centred.transpose(-1, -2)  # (..., H, H)
    norm2 = torch.einsum("...jk,...kl,...jl->...j", q, gram, q).clamp_(min=0)  # |(Q b)_j|^2 (M, ..., H)
    norm = norm2.sqrt()
    zb = norm <= 1e-12 * gram.diagonal(dim1=-2, dim2=-1).sum(-1, keepdim=True).clamp(min=1e-300)
    r = (cross @ q.transpose(-1, -2)) / torch.where(zb, torch.ones_like(norm), norm).unsqueeze(-2)
    r = torch.where(zb.unsqueeze(-2) | za.unsqueeze(-1), torch.zeros_like(r), r).clamp_(-1.0, 1.0)
    return r, za.expand(r.shape[:-1]), zb


def align_units(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], *, method: str = "weights",
                x: torch.Tensor | None = None, policy: str = DEFAULT_POLICY) -> torch.Tensor:
    """The permutation (..., H) that puts ``b``'s hidden units in ``a``'s order: ``permute_hidden(b, perm)``.

    ``"weights"``: Git Re-Basin weight matching (``weight_matching``; exact for one hidden layer).
    ``"activations"``: maximise the summed correlation of the units' post-ReLU activations on inputs ``x``
    (N, D) (zero-variance units follow ``policy``).
    """
    check_choice(method, ALIGN_METHODS, "alignment method")
    if method == "weights":
        return weight_matching(a, b)["h1"]
    if x is None:
        raise UnderspecError("align_units(method='activations') needs the inputs x (N, D)")
    x = x.to(a["w1"].dtype)
    perm = match_activations(*([torch.relu(hidden_preactivation(p, x))] for p in (a, b)), policy=policy)["h1"]
    if (perm < 0).any():
        raise UnderspecError("some units could not be matched (policy 'exclude'): use policy='zero' to align")
    return perm


def match_activations(acts_a: list[torch.Tensor], acts_b: list[torch.Tensor], *,
                      policy: str = DEFAULT_POLICY) -> dict[str, torch.Tensor]:
    """The permutations that put ``b``'s units in ``a``'s order, each hidden layer matched on its post-ReLU
    activations (maximum summed r; zero-variance units follow ``policy``). acts_a, acts_b: one (..., N, H)
    tensor per hidden layer, on the same N inputs -> {"h1": (..., H), ...}, as ``permute`` takes them."""
    return {f"h{layer}": match_units(ua.transpose(-1, -2), ub.transpose(-1, -2), signed=True, policy=policy).perm
            for layer, (ua, ub) in enumerate(zip(acts_a, acts_b), 1)}


def weight_matching(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], *, spec=PERMUTATION_SPEC,
                    max_iter: int = 100) -> dict[str, torch.Tensor]:
    """Git Re-Basin's weight matching (Ainsworth et al. 2023): the permutations of ``b``'s hidden layers that
    maximise the summed inner products of ``a``'s and ``b``'s parameters, {layer: (..., H)}.

    Coordinate descent over the layers of ``spec`` (see ``model.permutation_spec``): each layer's permutation
    is the Hungarian assignment on the inner products of every parameter it moves, with the other layers'
    current permutations applied to ``b``; passes repeat until none changes. With one hidden layer a single
    assignment is exact. Leading axes of the parameters (pairs) are matched independently.
    """
    perms = {layer: _identity(b, spec[layer]) for layer in spec}
    for _ in range(max_iter):
        changed = False
        for layer, axes in spec.items():
            others = permute(b, {q: p for q, p in perms.items() if q != layer}, spec)
            score = 0
            for name, axis in axes:
                units_a = a[name].movedim(axis, -1).double()  # weights (..., rest, H), biases (..., H)
                units_b = others[name].movedim(axis, -1).double()
                if name.startswith("w"):  # inner products over the other axis
                    score = score + units_a.transpose(-1, -2) @ units_b
                else:
                    score = score + units_a.unsqueeze(-1) * units_b.unsqueeze(-2)  # (..., H, H)
            perm = hungarian(score)
            changed |= not torch.equal(perm, perms[layer].expand_as(perm))
            perms[layer] = perm
        if not changed:
            break
    return perms


def _identity(params: dict[str, torch.Tensor], axes) -> torch.Tensor:
    name, axis = axes[0]
    return torch.arange(params[name].shape[axis], device=params[name].device)


def paper_pair_metrics(w1_a, w1_b, w2_a, w2_b) -> dict:
    """The paper's own formulation for ONE pair, kept as the definition (slow: 2 H^2 ``pearsonr`` calls).

    w1_*: (H, D), w2_*: (C, H) arrays. ``R[i, j] = pearsonr(...)`` in loops, ``linear_sum_assignment(-abs(R))``,
    APC = mean ``abs(R[i, perm[i]])``, PE = mean ``perm1 == perm2``. Computed in float64, as the scipy of the
    paper's time did. A zero-variance unit makes it fail, as the paper's code does.
    Returns {"apc1", "apc2", "pe": float, "perm1", "perm2": (H,) int arrays}.
    """
    from scipy.stats import pearsonr

    w1_a, w1_b, w2_a, w2_b = (np.asarray(w, dtype=np.float64) for w in (w1_a, w1_b, w2_a, w2_b))
    h = w1_a.shape[0]
    r1, r2 = np.zeros((h, h)), np.zeros((h, h))
    for i in range(h):
        for j in range(h):
            r1[i, j] = pearsonr(w1_a[i], w1_b[j])[0]
            r2[i, j] = pearsonr(w2_a[:, i], w2_b[:, j])[0]
    _, perm1 = linear_sum_assignment(-abs(r1))
    _, perm2 = linear_sum_assignment(-abs(r2))
    return {"apc1": float(np.mean(abs(r1[np.arange(h), perm1]))), "apc2": float(np.mean(abs(r2[np.arange(h), perm2]))),
            "pe": float(np.mean(perm1 == perm2)), "perm1": perm1, "perm2": perm2}


reference_metrics = paper_pair_metrics  # the old name ("reference" now means the reference seed only)


def _standardise(x: torch.Tensor) -> torch.Tensor:
    """Rows centred and scaled to unit norm, in float64 (zero-variance rows become 0)."""
    x = x.double()
    x = x - x.mean(-1, keepdim=True)
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    return x / torch.where(norm > 0, norm, torch.ones_like(norm))


def _step_sign(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x[..., 1].double() - x[..., 0].double())


def _denominator(valid: torch.Tensor, policy: str) -> torch.Tensor:
    if policy == "exclude":
        return valid.sum(-1).double()  # 0 when nothing is left: the metric is NaN, and compare says why
    return torch.full(valid.shape[:-1], float(valid.shape[-1]), dtype=torch.float64, device=valid.device)


def _check_policy(policy: str, zero_a: torch.Tensor, zero_b: torch.Tensor) -> None:
    if policy not in POLICIES:
        raise UnderspecError(f"unknown zero-variance policy {shown(policy)}: use one of {', '.join(POLICIES)}")
    if policy == "raise" and (zero_a.any() or zero_b.any()):
        where = []
        for side, mask in (("a", zero_a), ("b", zero_b)):
            for idx in mask.nonzero().tolist()[:3]:
                where.append(f"{side}{idx[:-1] or ''} unit {idx[-1]}")
        raise UnderspecError(f"zero-variance unit(s) (Pearson r undefined): {', '.join(where)}; "
                             "pass policy='zero' or policy='exclude' to score them")
