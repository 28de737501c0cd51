"""Train a whole grid of networks at once, each one exactly the network the paper's loop gives for its seed.

Layout. Members are grouped into *streams*: the members that see the same data in the same order (same seed,
whose data order is the grid's ``order_seed_of`` it; in ``subset`` class mode also the same C). A *program* is
a set of streams with the same number of training images, trained together: in ``relabel`` mode the whole
grid is one program, in ``subset`` mode there is one program per C. Inside a program with S streams of M
members each, the first layers of a stream's M members are concatenated into one (M*H, D) matrix, so a step is
two batched matrix products over S streams:

    X (S, B, D') = gathered batch of each stream, D' = the pixels that are not 0 in every training image
    Z1 (S, M*H, B) = W1[..., :D'] @ X^T + b1      W1 stacked as (S, M*H, D), its live pixels first
    logits (S, M, K, B) = W2 @ relu(Z1) + b2      K = max C; classes >= a member's C are masked out
                                                  (deeper grids: (S, M, H_l, H_l-1) hidden layers between)
    dW1[..., :D'] (S, M*H, D') = dZ1 @ X          (+ the L1 term on every pixel)

The two products with X are either these dense batched matmuls or, when most pixel values are 0 (MNIST:
about 80%), sums over each image's non-zero pixels (``embedding_bag`` over the rows of a pixel-major W1,
stacked as (S, D, M*H)): the same sums over fewer terms, so exact up to float rounding, and about 2.5x
cheaper on a CPU. See ``products.py``.

A mixed grid (``Grid.parts``) is trained group by group: the parts that share a width, depth, batch size,
optimizer, schedule and class mode form one group, trained as the programs above with the learning rate,
momentum, weight decay and both seeds set per member; each part comes back as its own ``Run`` (``MixedRun``).
``train_parts`` trains any list of uniform grids the same way (a tuner's batch of trials: not a product of axes).

A grid with a validation split (``Grid.validation``) trains on the rest of its training images and evaluates
every member on the split after every epoch, as on the test set; label noise (``Grid.label_noise``) replaces
training labels only, so the parts of different noise levels are different groups. ``on_epoch`` (a tuner's
pruner) sees every member's history row after each epoch and may stop members: they keep the parameters they
have, as the stopping rule ``Grid.stop_loss`` keeps them. Members start from the weights their seeds draw, or
from given weights (``start``: ``start.py``), still drawing their batches in their seeds' orders.

Gradients are written by hand (the cross-entropy / ReLU / L1 chain, through every hidden layer) and applied by
``optimizers.StackedOptimizer``: torch.optim's SGD (momentum, weight decay), Adam and AdamW written out with
a learning rate, momentum and weight decay per member, each member updated as its own torch.optim would.
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass, field, replace

import torch

from ..errors import UnderspecError, check_flag, shown
from ..progress import progress_bar
from .data import Dataset, class_labels, data_pixels, noisy_labels, split_training
from .device import matmul_precision, resolve_device  # noqa: F401 (resolve_device: the engine's own name)
from .grid import Grid
from .optimizers import StackedOptimizer
from .memory import block_sizes, default_memory_budget, memory_plan, per_epoch_record_bytes, split
from .products import DenseProducts, SparseProducts, choose_products, code_hash
from .programs import (Member, Program, broadcast_per_member, epoch_orders,  # noqa: F401 (epoch_orders: used by peers)
                       group_members, member_major, programs)
from .step import evaluate, gradients
from .records import Records
from .start import check_starts, group_starts, initial_params
from .run import MixedRun, Run
from .threads import check_threads, default_threads, torch_threads

RECORD_BUDGET_BYTES = 512 * 2**20  # "auto" keeps per-epoch snapshots / embeddings below this size
SKIP_ZERO_L1 = True  # a program whose lambdas are all 0 skips the L1 term (tests turn it off to compare)
VAL = slice(5, 7)  # the validation loss and accuracy in a history row (``run.VALIDATION_COLUMNS``)


@dataclass
class _Setup:
    """What every program of one group shares: the group's shape and schedule (``grid``, its first part), its
    members, the data on the device and the records.

    ``pixels`` (D,): pixel order of W1's rows in the program layout (live pixels first), ``image_order`` its
    inverse; ``products`` / ``test`` / ``val``: the first layer's products with the training images / with the
    whole test set / the whole validation split (or None) as every stream's batch (``products.py``); ``y_train``
    (N,), ``y_test`` (T,), ``y_val`` (V,) digit labels (the training labels noisy where the group's are);
    ``on_epoch``: the tuner's callback, given (epoch, group member indices, their history rows), or None;
    ``start``: {group member index: its given initial parameters (``start.member_start``)}, or None.
    """

    grid: Grid
    members: list[Member]
    pixels: torch.Tensor
    image_order: torch.Tensor
    products: DenseProducts | SparseProducts
    test: DenseProducts | SparseProducts
    y_train: torch.Tensor
    y_test: torch.Tensor
    records: Records
    bar: object
    dtype: torch.dtype
    val: DenseProducts | SparseProducts | None = None
    y_val: torch.Tensor | None = None
    on_epoch: object = None
    start: dict | None = None


@dataclass
class _Constants:
    """One program's per-member constants, in its (S streams, M members) layout.

    ``flat`` (S*M,): grid index of each stream-major member; ``member_labels`` (S, M, 10): each member's
    label of each digit; ``class_mask`` (S, M, K, 1): 0 for a member's classes, -inf for the padding up to
    K = max C; ``l1_units`` (S, M*H, 1) or pixel-major (S, 1, M*H): each first-layer unit's L1 strength (None
    when every member's is 0: no L1 term);
    ``test_labels`` / ``test_valid`` (S, M, T): each member's label of each test image, and whether it is
    evaluated on it (subset mode: only the digits it was trained on); ``val_labels`` / ``val_valid`` the same
    for the validation split (or None); ``scratch``: W1-sized work space;
    ``work``: the step's buffers (``step.gradients``), made at the first step and written again at every step.
    """

    flat: torch.Tensor
    member_labels: torch.Tensor
    class_mask: torch.Tensor
    l1_units: torch.Tensor | None
    test_labels: torch.Tensor
    test_valid: torch.Tensor
    scratch: torch.Tensor
    work: dict = field(default_factory=dict)
    val_labels: torch.Tensor | None = None
    val_valid: torch.Tensor | None = None


def _auto(flag, nbytes: int, what: str) -> bool:
    check_flag(flag, what, auto=True)
    return nbytes <= RECORD_BUDGET_BYTES if flag == "auto" else flag


def train(grid: Grid, data: Dataset, *, device: str | torch.device = "auto", progress: bool = True,
          dtype: torch.dtype = torch.float32, probe_size: int = 1000, snapshots="auto",
          embeddings="auto", sparse="auto", tf32: bool = False, memory_budget: int | None = None,
          threads: int | None = None, on_epoch=None, start=None) -> Run | MixedRun:
    """Train every member of ``grid`` on ``data`` at once and return the ``Run`` (for a mixed grid, the
    ``MixedRun``: a Run per part; see the module docstring for how its parts are grouped).

    ``snapshots`` / ``embeddings``: record every epoch's parameters / every hidden layer's pre-activations
    on the probe images (the first ``probe_size`` test images); ``"auto"`` records them when they fit in 512 MiB.
    ``sparse``: multiply the images into the first layer as sparse sums over their non-zero pixels (True) or
    as dense matrix products (False); ``"auto"``: dense on a GPU, and on a CPU whichever is faster on this
    machine at this data's density, measured once and remembered (``products.choose_products``; the choice and
    its timings are in ``Run.meta``). Both give the same networks up to float rounding.
    ``tf32``: let a GPU multiply float32 matrices in TF32 (10-bit mantissa: faster, no longer the loop's
    networks to float32 rounding). By default float32 products are exact IEEE float32 while training, whatever
    the global torch setting; the setting is restored afterwards. No effect on a CPU.
    ``memory_budget``: bytes the training may use (default: 90% of a GPU's free memory, 80% of the host's
    available memory). A grid that needs more is trained in blocks of streams (or of one stream's members),
    one after the other, each member exactly as in one block (``Run.meta["blocks"]``); one whose records
    alone do not fit is refused before any work.
    ``threads``: torch's CPU threads while training (default: ``threads.default_threads()``, the cores this
    process may use, or ``$OMP_NUM_THREADS``); restored afterwards, recorded in ``Run.meta["threads"]``.
    ``on_epoch(epoch, members, rows)``: called after every epoch of every block with the block's members, as
    (part number, member number in the part) pairs, and their history rows (a float64 array, the columns of
    ``run.history_columns``); it returns None or a bool per member: True stops that member from then on (its
    parameters stay as they are, its gradients are no longer summed; ``run.members.stopped`` says when). A block
    whose members have all stopped trains no further (its later history rows repeat its last one).
    ``start``: initial parameters to start from instead of those each member's seed draws (the data order still
    comes from the seed): a dict as ``Run.init`` has them, or for a mixed grid a list with one per part (None:
    that part drawn from its seeds); ``start.py`` says what they must be. The run's ``init`` is the given start.
    """
    if not isinstance(grid, Grid):
        raise UnderspecError(f"train needs a Grid, got {type(grid).__name__}: build one with underspec.Grid(...)")
    if not isinstance(data, Dataset):
        raise UnderspecError(f"train needs a Dataset, got {type(data).__name__}: use underspec.load_dataset(...)")
    grid = grid.for_data(len(data.y_train))  # a steps budget becomes whole epochs of this data set
    runs, meta = _train(grid.parts(), data, device, progress, dtype, probe_size, snapshots, embeddings, sparse,
                        tf32, memory_budget, threads, on_epoch, start)
    if not grid.axes():
        return runs[0]
    return MixedRun(grid, runs, meta)


def train_parts(parts: list[Grid], data: Dataset, **options) -> list[Run]:
    """Train a list of uniform grids (each of one value of every knob; any list, not only a product of axes:
    a tuner's batch of trials) in one call, as ``train`` trains the parts of a mixed grid: the parts that share
    a shape, batch size, optimizer and schedule train as one group. Every member is the network that ``train``
    of its own part gives. They must share the validation split. Returns one ``Run`` per part, in order;
    ``options``: those of ``train`` (``start``: a list with a parameter dict or None per part)."""
    if not isinstance(parts, (list, tuple)) or not parts or not all(isinstance(p, Grid) for p in parts):
        raise UnderspecError("train_parts needs a non-empty list of Grids, e.g. [Grid(lr=0.1), Grid(hidden=64)]")
    if not isinstance(data, Dataset):
        raise UnderspecError(f"train_parts needs a Dataset, got {type(data).__name__}: use underspec.load_dataset")
    several = [p for p in parts if p.axes()]
    if several:
        raise UnderspecError(f"train_parts takes uniform grids; one has several values of "
                             f"{', '.join(several[0].axes())}: pass its parts (grid.parts())")
    if len({(p.validation, p.validation_seed) for p in parts}) > 1:
        raise UnderspecError("the parts of one training share one validation split: give every part the same "
                             "validation and validation_seed")
    unknown = set(options) - {"device", "progress", "dtype", "probe_size", "snapshots", "embeddings", "sparse",
                              "tf32", "memory_budget", "threads", "on_epoch", "start"}
    if unknown:
        raise UnderspecError(f"train_parts got unknown option(s) {shown(sorted(unknown))}: it takes train's options")
    defaults = dict(device="auto", progress=True, dtype=torch.float32, probe_size=1000, snapshots="auto",
                    embeddings="auto", sparse="auto", tf32=False, memory_budget=None, threads=None, on_epoch=None,
                    start=None)
    o = {**defaults, **options}
    parts = [p.for_data(len(data.y_train)) for p in parts]
    return _train(parts, data, o["device"], o["progress"], o["dtype"], o["probe_size"], o["snapshots"],
                  o["embeddings"], o["sparse"], o["tf32"], o["memory_budget"], o["threads"], o["on_epoch"],
                  o["start"])[0]


def _train(parts, data, device, progress, dtype, probe_size, snapshots, embeddings, sparse, tf32, memory_budget,
           threads, on_epoch, start) -> tuple[list[Run], dict]:
    """``train`` of the uniform grids ``parts`` (their epochs already set for the data), once every argument is
    checked and every group planned: (a Run per part, the shared meta)."""
    if dtype not in (torch.float32, torch.float64):
        raise UnderspecError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    check_flag(sparse, "sparse", auto=True)
    check_flag(tf32, "tf32")
    if isinstance(probe_size, bool) or not isinstance(probe_size, numbers.Integral) or probe_size < 0:
        raise UnderspecError(f"probe_size is a number of test images >= 0, got {shown(probe_size)}")
    if on_epoch is not None and not callable(on_epoch):
        raise UnderspecError(f"on_epoch must be a function (epoch, members, rows), got {shown(on_epoch)}")
    threads = check_threads(threads) or default_threads()
    starts = check_starts(start, parts, data.x_train.shape[1])
    device = resolve_device(device)
    data, held = split_training(data, parts[0].validation, parts[0].validation_seed)
    n, d = data.x_train.shape
    classes = list(dict.fromkeys(c for part in parts for c in part.n_classes))
    modes = list(dict.fromkeys(part.class_mode for part in parts))
    for c in classes:  # every member must have images to train and to be tested on (and validated)
        for mode in modes:
            sets = (("training", data.y_train), ("test", data.y_test)) + ((("validation", held[1]),) if held else ())
            for images, y in sets:
                if not bool(class_labels(y, c, mode)[0].any()):
                    raise UnderspecError(f"{data.name} has no {images} images of the digits 0..{c - 1} that a "
                                         f"network with C = {c} in {mode} mode sees: use more images or other C")
    fewest = min(int(class_labels(data.y_train, c, mode)[0].sum()) for c in classes for mode in modes)
    largest = max(part.batch_size for part in parts)
    if largest > fewest:
        raise UnderspecError(f"batch size {largest} is larger than the {fewest:,} training images a member of this "
                             f"grid sees: use --batch-size {fewest} or less, or more training images")
    probe_size = min(int(probe_size), len(data.y_test))
    itemsize = torch.finfo(dtype).bits // 8
    record_bytes = [per_epoch_record_bytes(part, d, probe_size, itemsize) for part in parts]
    keep_snapshots = _auto(snapshots, sum(len(p) * b[0] for p, b in zip(parts, record_bytes)), "snapshots")
    keep_embeddings = _auto(embeddings, sum(len(p) * b[1] for p, b in zip(parts, record_bytes)), "embeddings")
    if memory_budget is not None and (isinstance(memory_budget, bool) or not isinstance(memory_budget, int)
                                      or memory_budget < 1):
        raise UnderspecError(f"memory_budget must be a number of bytes >= 1 or None, got {shown(memory_budget)}")
    budget = default_memory_budget(device) if memory_budget is None else memory_budget
    # Parts that share a shape, a batch size, an optimizer, a schedule and their training labels train as one
    # group (learning rate, momentum, weight decay, init and order seeds, l1 and C vary per member inside it);
    # each group is planned before any training.
    groups: dict[tuple, list[int]] = {}
    for i, part in enumerate(parts):
        key = (part.hidden, part.depth, part.widths, part.batch_size, part.optimizer, part.epochs, part.class_mode,
               part.stop_loss, part.label_noise, part.noise_seed)
        groups.setdefault(key, []).append(i)
    members = {key: group_members([parts[i] for i in indices]) for key, indices in groups.items()}
    memory = {key: memory_plan(parts[indices[0]], d, len(data.y_test), probe_size=probe_size, snapshots=keep_snapshots,
                               embeddings=keep_embeddings, itemsize=itemsize, n_members=len(members[key]))
              for key, indices in groups.items()}
    kept = sum(plan.records for plan in memory.values())  # every group's records are kept to the end
    plans = []
    for key, indices in groups.items():
        group = parts[indices[0]]
        labels = noisy_labels(data.y_train, group.label_noise, group.noise_seed)
        plan = replace(memory[key], records=kept, networks=sum(len(p) for p in parts))
        blocks = [block for program in programs(group, members[key], labels)
                  for block in split(program, *block_sizes(plan, budget, len(program.orders),
                                                            len(program.members[0]), device))]
        plans.append((indices, members[key], blocks, labels, group_starts(starts, indices, parts, dtype)))

    with torch_threads(threads):
        return _train_groups(parts, data, held, plans, device, dtype, probe_size, progress, sparse, tf32, threads,
                             keep_snapshots, keep_embeddings, on_epoch)


def _train_groups(parts, data, held, plans, device, dtype, probe_size, progress, sparse, tf32, threads,
                  keep_snapshots, keep_embeddings, on_epoch) -> tuple[list[Run], dict]:
    """``train`` once every check is done and every group planned: the groups one after the other."""
    n, d = data.x_train.shape
    started = time.perf_counter()
    # Pixels that are 0 in every training image add exactly nothing to either matrix product of a step, so
    # the engine orders pixels live-first and multiplies only the live ones (W1's dead columns still get
    # their L1 term). A test image may use a dead training pixel: the test set keeps them all.
    live = data_pixels(data.x_train)
    pixels = torch.cat([torch.nonzero(live).squeeze(1), torch.nonzero(~live).squeeze(1)])  # (D,) live first
    x_train = data.x_train[:, live].to(device, dtype)  # (N, D_live): the data sits on the device once
    x_test = data.x_test[:, pixels].to(device, dtype)
    x_val = None if held is None else held[0][:, pixels].to(device, dtype)
    total_steps = sum(parts[indices[0]].epochs * -(-len(b.train_index) // parts[indices[0]].batch_size)
                      for indices, _, blocks, _, _ in plans for b in blocks)
    n_networks = sum(len(p) for p in parts)
    bar = progress_bar(total_steps, f"training {n_networks} networks", enabled=progress)
    runs: list[Run | None] = [None] * len(parts)
    meta = {"device": str(device), "dtype": str(dtype).removeprefix("torch."), "tf32": tf32 and device.type == "cuda",
            "torch": torch.__version__, "n_train": n, "n_test": len(data.y_test), "code": code_hash(),
            "threads": threads if device.type == "cpu" else None}
    if held is not None:
        meta["n_validation"] = len(held[1])
    for indices, members, blocks, labels, given in plans:
        group = parts[indices[0]]
        calibration = None
        if sparse == "auto" and device.type == "cpu":
            n_streams = len({m.order_seed for m in members})
            Products, calibration = choose_products(x_train, d, streams=n_streams,
                                                    units=len(members) // n_streams * group.hidden,
                                                    batch_size=group.batch_size)
        else:
            Products = SparseProducts if sparse is True else DenseProducts
        # Built once for every program: the products with the training images, and with the whole test set as
        # every stream's batch.
        products, test = Products(x_train, d), Products(x_test, d)
        records = Records(len(members), group, probe_size, keep_snapshots, keep_embeddings, device, dtype,
                          stopping=on_epoch is not None)
        owners = [(i, j) for i in indices for j in range(len(parts[i]))]  # group member -> (part, member in part)
        setup = _Setup(group, members, pixels, torch.argsort(pixels).to(device), products, test,
                       labels.to(device), data.y_test.to(device), records, bar, dtype,
                       None if x_val is None else Products(x_val, d), None if held is None else held[1].to(device),
                       None if on_epoch is None else
                       (lambda epoch, flat, rows, owners=owners: on_epoch(epoch, [owners[i] for i in flat], rows)),
                       given)
        with matmul_precision(device, tf32):
            for block in blocks:
                _train_program(block, setup)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        own = {**meta, "sparse": Products is SparseProducts, "products": calibration, "blocks": len(blocks)}
        offset = 0
        for i in indices:
            part = parts[i]
            runs[i] = records.to_run(part, slice(offset, offset + len(part)), data.name, torch.arange(probe_size),
                                     own, whole=len(indices) == 1)
            offset += len(part)
    bar.close()
    seconds = round(time.perf_counter() - started, 3)
    for run in runs:
        run.meta["seconds"] = seconds
    return runs, {**meta, "seconds": seconds}


def _constants(program: Program, setup: _Setup, members: list[Member], w1: torch.Tensor) -> _Constants:
    """The per-member constants of ``program`` (see ``_Constants``); ``members``: its members, stream-major;
    ``w1``: its stacked first layer."""
    grid, device = setup.grid, w1.device
    s, m, h = len(program.orders), len(program.members[0]), grid.hidden
    k = max(grid.n_classes)
    flat = torch.tensor(program.members).reshape(-1)  # (S*M,)
    classes = torch.tensor([member.n_classes for member in members], device=device).view(s, m)
    l1 = torch.tensor([member.l1 for member in members], dtype=setup.dtype, device=device).view(s, m)
    label_map = torch.stack([class_labels(torch.arange(10), c, grid.class_mode)[1] for c in range(11)]).to(device)
    member_labels = label_map[classes]  # (S, M, 10)
    class_mask = torch.where(torch.arange(k, device=device) < classes[..., None], 0.0, float("-inf"))
    # no L1 work at all where every member's lambda is 0 (known on the host: no sync): the sign of W1 and its
    # multiply-add are a third of a step's passes over W1
    lean = SKIP_ZERO_L1 and all(member.l1 == 0 for member in members)
    l1_units = None if lean else l1.repeat_interleave(h, dim=1).unsqueeze(type(setup.products).pixel_axis)

    def evaluated(digits):  # each member's label of each image (S, M, T), and whether it is evaluated on it
        digits = digits.expand(s, m, -1)
        valid = digits < (classes[..., None] if grid.class_mode == "subset" else 10)
        # A digit a member was not trained on (subset mode) has no class: give it class 0, masked out by valid.
        return torch.where(valid, torch.gather(member_labels, 2, digits), 0), valid

    test_labels, test_valid = evaluated(setup.y_test)
    val_labels, val_valid = evaluated(setup.y_val) if setup.y_val is not None else (None, None)
    return _Constants(flat, member_labels, class_mask.to(setup.dtype).unsqueeze(-1), l1_units, test_labels,
                      test_valid, torch.empty_like(w1), val_labels=val_labels, val_valid=val_valid)


def _train_program(program: Program, setup: _Setup):
    """Train one program's S x M members together (see the module docstring for the layout); records are
    written back member-major, W1's pixels in image order."""
    grid, records = setup.grid, setup.records
    for products, y in ((setup.test, setup.y_test), (setup.val, setup.y_val)):
        if products is not None:  # the whole test set (validation split) as every stream's batch
            products.set_batch(torch.arange(len(y), device=y.device).expand(len(program.orders), -1), backward=False)
    params = initial_params(program, setup)
    members = [setup.members[i] for row in program.members for i in row]  # stream-major, as the layout
    const = _constants(program, setup, members, params["w1"])
    grad_sum = {name: torch.zeros_like(p) for name, p in params.items()}
    n, device = len(program.train_index), params["w1"].device
    s, m = const.class_mask.shape[:2]
    Products = type(setup.products)

    def per_member(setting):  # a setting of every member, (S, M) float64, shaped for every parameter
        values = torch.tensor([getattr(member, setting) for member in members], dtype=torch.float64)
        return broadcast_per_member(values.view(s, m).to(device), params, Products.pixel_axis)

    opt = StackedOptimizer(params, grid.optimizer, lr=per_member("lr"), momentum=per_member("momentum"),
                           weight_decay=per_member("weight_decay"))
    streams = [epoch_orders(order, n, grid.batch_size) for order in program.orders]
    history = torch.zeros(grid.epochs, s, m, records.history.shape[-1], dtype=torch.float64, device=device)

    def record(name, source, epoch=None):
        records.store(name, const.flat, member_major(source, setup.image_order, Products.layout), epoch)

    record("init", params)
    if records.snapshots is not None:
        record("snapshots", params, 0)
    if records.embeddings is not None:
        evaluate(params, setup, const, 0)
    # The stopping rule, on the device (no host sync): a member whose epoch's mean training loss fell below
    # grid.stop_loss (or that on_epoch stops) keeps the parameters it had then (``held``); its gradients are no
    # longer summed.
    stopping = grid.stop_loss is not None or setup.on_epoch is not None
    if stopping:
        active = torch.ones(s, m, dtype=torch.bool, device=device)
        stopped_at = torch.zeros(s, m, dtype=torch.long, device=device)  # 0: never stopped
        held = {name: p.detach().clone() for name, p in params.items()}

    for epoch in range(grid.epochs):
        if stopping:  # 1 for a member still training, else 0 (the gradient sum's factor); bool for the hold
            masks = broadcast_per_member(active, params, Products.pixel_axis)
            factors = {name: mask.to(setup.dtype) for name, mask in masks.items()}
        loss_sum = torch.zeros(s, m, dtype=torch.float64, device=device)
        correct = torch.zeros(s, m, dtype=torch.float64, device=device)
        norm_sum = torch.zeros(s, m, dtype=torch.float64, device=device)
        # Made on the host while the device still works through the previous epoch; copied without a sync.
        order = program.train_index[torch.stack([next(stream) for stream in streams])]  # (S, n) into x_train
        order = order.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else order
        for start in range(0, n, grid.batch_size):
            idx = order[:, start:start + grid.batch_size]  # (S, B)
            setup.products.set_batch(idx)
            grads, ce_sum, n_correct = gradients(params, setup.products, setup.y_train[idx], const)
            for name in params:  # in place: g * 1 = g and g * 0 = 0 exactly, as grads * masks was
                if stopping:
                    grad_sum[name].addcmul_(grads[name], factors[name])
                else:
                    grad_sum[name] += grads[name]
            opt.step(grads)
            if stopping:
                with torch.no_grad():
                    for name, p in params.items():
                        torch.where(masks[name], p, held[name], out=p)
            loss_sum += ce_sum
            correct += n_correct
            norm_sum += Products.member_norms(grads["w1"], const.scratch, s, m)
            setup.bar.update(1)
        steps = -(-n // grid.batch_size)
        history[epoch, ..., 0] = loss_sum / n
        history[epoch, ..., 1] = correct / n
        history[epoch, ..., 4] = norm_sum / steps
        history[epoch, ..., 2:4] = evaluate(params, setup, const, epoch + 1)
        if setup.val is not None:
            history[epoch, ..., VAL] = evaluate(params, setup, const, epoch + 1, validation=True)
        if records.snapshots is not None:
            record("snapshots", params, epoch + 1)
        if stopping:
            stops = (active & (history[epoch, ..., 0] < grid.stop_loss) if grid.stop_loss is not None
                     else torch.zeros_like(active))
            if setup.on_epoch is not None:  # the tuner's pruner: a host sync per epoch
                asked = setup.on_epoch(epoch + 1, const.flat.tolist(), history[epoch].reshape(s * m, -1).cpu().numpy())
                if asked is not None:
                    stops |= active & torch.as_tensor(list(asked), dtype=torch.bool, device=device).view(s, m)
            stopped_at = torch.where(stops, epoch + 1, stopped_at)  # no boolean indexing: no host sync
            active &= ~stops
            for name, p in params.items():
                held[name].copy_(p)
            if (setup.on_epoch is not None and epoch + 1 < grid.epochs and records.snapshots is None
                    and records.embeddings is None and not bool(active.any())):
                history[epoch + 1:] = history[epoch]  # every member stopped: frozen, nothing more to train
                setup.bar.update(steps * (grid.epochs - epoch - 1))
                break

    record("final", params)
    record("grad_sum", grad_sum)
    if stopping:
        records.stopped[const.flat] = stopped_at.reshape(-1)
    records.history[const.flat] = history.permute(1, 2, 0, 3).reshape(s * m, grid.epochs, history.shape[-1])

