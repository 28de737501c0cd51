"""The vectorised engine must give, member by member, the network of the paper's plain loop."""

import dataclasses
import json

import pytest
import torch

import underspec
from underspec import Grid, reference_train, train
from underspec.training.engine import matmul_precision
from underspec.training.memory import memory_plan

RECORDS = ("init", "final", "grad_sum")


def max_difference(member, ref) -> float:
    """Largest absolute difference over every record of two Members (parameters, snapshots, embeddings, history)."""
    diffs = [(getattr(member, r)[k] - getattr(ref, r)[k]).abs().max().item() for r in RECORDS for k in ref.init]
    diffs += [(member.snapshots[k] - ref.snapshots[k]).abs().max().item() for k in ref.init]
    diffs.append((member.embeddings["pre"] - ref.embeddings["pre"]).abs().max().item())
    assert ("layers" in member.embeddings) == ("layers" in ref.embeddings)
    if "layers" in ref.embeddings:  # every hidden layer's, at depth > 1
        diffs.append((member.embeddings["layers"] - ref.embeddings["layers"]).abs().max().item())
    cols = ["train_loss", "train_acc", "test_loss", "test_acc"]
    diffs.append((member.history[cols] - ref.history[cols]).abs().to_numpy().max())
    # the mean gradient norm, relative: the loop's float32 Tensor.norm of an L1-dominated gradient (all terms
    # nearly equal) is itself off by a few 1e-6 relative, and the norm grows with C's share of the data
    diffs.append(((member.history.grad_norm - ref.history.grad_norm).abs() / ref.history.grad_norm).max())
    return max(diffs)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])  # dense: the GPU's products
@pytest.mark.parametrize("class_mode, classes", [("relabel", (2, 10)), ("subset", (2, 10)), ("subset", (2, 3))])
@pytest.mark.parametrize("dtype, epochs, tol", [(torch.float64, 2, 1e-10), (torch.float32, 1, 1e-5)])
def test_every_member_equals_the_reference_loop(small, class_mode, classes, dtype, epochs, tol, sparse):
    """Subset mode with class counts that leave digits out of every member (no C = 10) included."""
    grid = Grid(seeds=(0, 42), l1=(0.0, 0.01), n_classes=classes, epochs=epochs, class_mode=class_mode)
    run = train(grid, small, dtype=dtype, progress=False, probe_size=50, snapshots=True, embeddings=True,
                sparse=sparse)
    assert run.meta["sparse"] is sparse
    for seed, l1, c in grid.members():
        ref = reference_train(seed, l1, c, small, epochs=epochs, class_mode=class_mode, dtype=dtype, probe_size=50)
        member = run.member(seed=seed, l1=l1, n_classes=c)
        assert member.final["w2"].shape == (c, 16)
        assert max_difference(member, ref) < tol, (seed, l1, c)


def test_adam_members_equal_the_reference_loop(small):
    grid = Grid(seeds=(0, 42), l1=(0.0, 0.005), n_classes=(3,), epochs=2, optimizer="adam", lr=0.001)
    run = train(grid, small, dtype=torch.float64, progress=False, probe_size=50)
    for seed, l1, c in grid.members():
        ref = reference_train(seed, l1, c, small, epochs=2, optimizer="adam", lr=0.001, dtype=torch.float64,
                              probe_size=50)
        assert max_difference(run.member(seed, l1, c), ref) < 1e-10


@pytest.mark.parametrize("optimizer, lr, momentum, weight_decay", [
    ("sgd", 0.01, 0.9, 0.0), ("sgd", 0.01, 0.0, 0.01), ("sgd", 0.02, 0.5, 0.001), ("adamw", 0.001, 0.0, 0.01),
    ("adam", 0.001, 0.0, 0.001)])
def test_optimizer_settings_equal_the_reference_loop(small, optimizer, lr, momentum, weight_decay):
    """torch.optim over the stacked members updates each as its own optimizer would: momentum, weight decay
    (on every parameter, the padded classes included, which stay 0) and AdamW."""
    knobs = dict(optimizer=optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay)
    grid = Grid(seeds=(0, 42), l1=(0.0, 0.005), n_classes=(3, 10), epochs=2, **knobs)
    run = train(grid, small, dtype=torch.float64, progress=False, probe_size=50, snapshots=True, embeddings=True)
    for seed, l1, c in grid.members():
        ref = reference_train(seed, l1, c, small, epochs=2, dtype=torch.float64, probe_size=50, **knobs)
        assert max_difference(run.member(seed, l1, c), ref) < 1e-10, (seed, l1, c)
    assert (run.final["w2"][:, 3:][torch.tensor([c == 3 for _, _, c in grid.members()])] == 0).all()


@pytest.mark.parametrize("knobs, sparse", [(dict(momentum=0.9), False),
                                           (dict(optimizer="adam", lr=0.001, weight_decay=0.01), True)],
                         ids=["sgd-momentum-dense", "adam-sparse"])
def test_the_stopping_rule_freezes_a_member_after_the_first_epoch_below_the_threshold(small, knobs, sparse,
                                                                                      tmp_path):
    """stop_loss: a member stops updating after the first epoch whose mean training cross-entropy is below it
    (its momentum or Adam state moves it no further) and its gradients stop being summed; the others train on.
    Each member equals the loop with the same rule, which stops at the same epoch."""
    grid = Grid(seeds=(0, 42), l1=(0.0, 0.01), n_classes=(3, 10), epochs=4, **knobs)
    free = train(grid, small, dtype=torch.float64, progress=False, probe_size=20, snapshots=True, sparse=sparse)
    losses = free.history.pivot_table(index=["seed", "l1", "n_classes"], columns="epoch", values="train_loss")
    threshold = float(losses[2].median())  # some members stop after epoch 1 or 2, some never
    expected = [next((e for e in range(1, 5) if losses.loc[m, e] < threshold), None) for m in grid.members()]
    assert len(set(expected)) >= 2 and None in expected, expected
    stopped = dataclasses.replace(grid, stop_loss=threshold)
    run = train(stopped, small, dtype=torch.float64, progress=False, probe_size=20, snapshots=True, sparse=sparse)
    assert run.members.stopped.astype(object).where(run.members.stopped.notna(), None).tolist() == expected
    assert underspec.load_run(run.save(tmp_path / "run")).members.equals(run.members)  # saved with the run
    for i, (seed, l1, c) in enumerate(grid.members()):
        member, ref = run.member(seed, l1, c), reference_train(seed, l1, c, small, epochs=4, dtype=torch.float64,
                                                                probe_size=20, stop_loss=threshold, **knobs)
        assert member.stopped == ref.stopped == expected[i]
        last = expected[i] or 4
        for k in ref.init:  # the final parameters are those of the stopping epoch, as the loop's
            assert (member.final[k] - ref.final[k]).abs().max() < 1e-10, (seed, l1, c, k)
            assert (member.grad_sum[k] - ref.grad_sum[k]).abs().max() < 1e-10, (seed, l1, c, k)
            assert torch.equal(member.snapshots[k][last:], member.final[k].expand_as(member.snapshots[k][last:]))
            assert torch.equal(member.snapshots[k][:last + 1], free.member(seed, l1, c).snapshots[k][:last + 1])
        cols = ["train_loss", "test_loss", "test_acc"]
        assert (member.history[cols][:last] - ref.history[cols]).abs().to_numpy().max() < 1e-10


@pytest.mark.parametrize("sparse, class_mode", [(False, "relabel"), (True, "subset")],
                         ids=["dense-relabel", "sparse-subset"])
def test_a_grid_over_its_memory_budget_trains_in_blocks_and_gives_the_same_networks(small, sparse, class_mode):
    """Blocks of whole streams, or of one stream's members, train one after the other: every member is the
    network of the grid trained at once, and a budget its records do not fit in is refused in one line.

    Equal to float64 rounding (1e-12), not bit for bit: a block has other shapes than the whole program, and
    with several threads torch splits a product's sums by its shape (seen: 5.6e-17 at 2 threads, 0 at one)."""
    grid = Grid(seeds=(0, 42, 7), l1=(0.0, 0.01), n_classes=(3, 10), epochs=2, class_mode=class_mode)
    kw = dict(dtype=torch.float64, progress=False, probe_size=20, snapshots=True, embeddings=True, sparse=sparse)
    whole = train(grid, small, **kw)
    plan = memory_plan(grid, small.x_train.shape[1], len(small.y_test), probe_size=20, snapshots=True,
                       embeddings=True, itemsize=8)
    programs, columns = (1, 4) if class_mode == "relabel" else (2, 2)  # subset mode: one program per C
    assert whole.meta["blocks"] == programs
    pm, ps = plan.per_member, plan.per_stream
    for budget, blocks in [(plan.records + 2 * (columns * pm + ps), 2 * programs),  # two streams at a time
                           (plan.records + (columns - 1) * pm + ps, -(-columns // (columns - 1)) * 3 * programs),
                           (plan.records + pm + ps, 12)]:  # one member at a time
        run = train(grid, small, memory_budget=budget, **kw)
        assert run.meta["blocks"] == blocks, (budget, run.meta["blocks"])
        for name in ("init", "final", "grad_sum", "snapshots"):
            for k, v in getattr(whole, name).items():
                assert (getattr(run, name)[k] - v).abs().max() <= 1e-12, (budget, name, k)
        assert (run.embeddings - whole.embeddings).abs().max() <= 1e-12
        numbers = list(run.history.columns[4:])
        assert (run.history[numbers] - whole.history[numbers]).abs().to_numpy().max() <= 1e-12
    with pytest.raises(underspec.UnderspecError, match=r"needs at least .* MiB .* such networks would fit"):
        train(grid, small, memory_budget=plan.records // 2, **kw)


def test_a_member_does_not_depend_on_the_other_members_of_its_grid(small):
    """The same network, to float64 rounding, trained alone or among other seeds, lambdas and C (a larger C
    elsewhere in the grid pads its output layer: the softmax then sums more, masked, terms)."""
    kw = dict(dtype=torch.float64, progress=False, probe_size=10, sparse=True)
    alone = train(Grid(seeds=(42,), l1=(0.01,), n_classes=(3,), epochs=2, momentum=0.9), small, **kw)
    among = train(Grid(seeds=(0, 42, 7), l1=(0.0, 0.01), n_classes=(3, 10), epochs=2, momentum=0.9), small, **kw)
    a, b = alone.member(42, 0.01, 3), among.member(42, 0.01, 3)
    for k in a.final:
        assert (a.final[k] - b.final[k]).abs().max() < 1e-12 and (a.grad_sum[k] - b.grad_sum[k]).abs().max() < 1e-12


@pytest.mark.parametrize("fixed", ["init_seed", "order_seed"])
def test_one_source_of_randomness_fixed_equals_the_reference_loop(small, fixed):
    """init_seed fixes every network's initialisation (the seeds vary the data order only), order_seed every
    network's data order (the seeds vary the initialisation only); each member is still the loop's network."""
    grid = Grid(seeds=(0, 42, 7), l1=(0.0, 0.01), n_classes=(3, 10), epochs=2, **{fixed: 1337})
    run = train(grid, small, dtype=torch.float64, progress=False, probe_size=50, snapshots=True, embeddings=True)
    for seed, l1, c in grid.members():
        ref = reference_train(seed, l1, c, small, epochs=2, dtype=torch.float64, probe_size=50, **{fixed: 1337})
        assert max_difference(run.member(seed, l1, c), ref) < 1e-10, (seed, l1, c)
    a, b = run.member(0, 0.0, 10), run.member(42, 0.0, 10)
    same_init = all(torch.equal(a.init[k], b.init[k]) for k in a.init)
    assert same_init == (fixed == "init_seed")
    assert not torch.equal(a.final["w1"], b.final["w1"])  # the other source still makes them differ
    paper = reference_train(1337, 0.0, 10, small, epochs=2, dtype=torch.float64, probe_size=50)
    assert torch.equal(run.member(0, 0.0, 10).init["w1"], paper.init["w1"]) == (fixed == "init_seed")


def test_the_optimizer_settings_change_the_networks(small):
    """The knobs reach the optimizer (a test that an ignored knob would fail)."""
    plain = train(Grid(epochs=1), small, progress=False, probe_size=10).final["w1"]
    for knobs in (dict(momentum=0.9), dict(weight_decay=0.1), dict(optimizer="adamw", lr=0.001, weight_decay=0.1)):
        other = train(Grid(epochs=1, **knobs), small, progress=False, probe_size=10).final["w1"]
        assert not torch.allclose(plain, other), knobs
    adam = train(Grid(epochs=1, optimizer="adam", lr=0.001), small, progress=False, probe_size=10).final["w1"]
    adamw = train(Grid(epochs=1, optimizer="adamw", lr=0.001, weight_decay=0.1), small, progress=False,
                  probe_size=10).final["w1"]
    assert not torch.allclose(adam, adamw), "AdamW's decoupled decay must differ from Adam without decay"


def test_init_is_the_papers_constructor_under_manual_seed():
    torch.manual_seed(1337)
    model = underspec.PaperMLP(7)
    expected = model.params()
    state = torch.get_rng_state()
    got = underspec.init_params(1337, 7)
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    assert torch.equal(torch.get_rng_state(), state), "init_params must not disturb the global generator"
    assert not torch.equal(underspec.init_params(1337, 8)["w1"], got["w1"]), "W1's Xavier draw depends on C"


def test_training_twice_is_identical_and_members_are_independent_of_their_grid(small):
    grid = Grid(seeds=(0, 42, 1337), l1=(0.0, 0.01), n_classes=(2, 5, 10), epochs=1)
    a = train(grid, small, progress=False)
    b = train(grid, small, progress=False)
    for r in RECORDS:
        assert all(torch.equal(a.params(r)[k], b.params(r)[k]) for k in a.init)
    assert a.history.equals(b.history)
    alone = train(Grid(seeds=(42,), l1=(0.01,), n_classes=(5,), epochs=1), small, dtype=torch.float32,
                  progress=False)
    inside, single = a.member(42, 0.01, 5), alone.member(42, 0.01, 5)
    for r in RECORDS:
        for k in single.init:
            torch.testing.assert_close(getattr(inside, r)[k], getattr(single, r)[k], rtol=0, atol=1e-6)


def test_sgd_cumulative_gradient_is_the_weight_displacement_over_lr(small):
    grid = Grid(seeds=(0, 42), l1=(0.0, 0.01), n_classes=(10,), epochs=2)
    run = train(grid, small, dtype=torch.float64, progress=False)
    for k in run.init:
        torch.testing.assert_close(run.grad_sum[k], (run.init[k] - run.final[k]) / grid.lr, rtol=0, atol=1e-9)


def test_history_has_one_row_per_member_and_epoch_and_accuracy_improves(mnist5k):
    grid = Grid(seeds=(0, 42), l1=(0.0,), n_classes=(2, 10), epochs=3)
    run = train(grid, mnist5k.take(2000, 500), progress=False)
    h = run.history
    assert list(h.columns) == ["seed", "l1", "n_classes", "epoch", "train_loss", "train_acc", "test_loss",
                               "test_acc", "grad_norm"]
    assert len(h) == len(grid) * 3
    ten = h[h.n_classes == 10].set_index(["seed", "epoch"])
    assert (ten.test_acc.xs(3, level="epoch") > 0.3).all(), "three epochs should beat chance (0.1) clearly"
    assert (ten.train_loss.xs(3, level="epoch") < ten.train_loss.xs(1, level="epoch")).all()


def test_records_auto_switch_off_for_big_grids(small):
    run = train(Grid(seeds=(0,), epochs=1), small, progress=False)
    assert run.snapshots["w1"].shape == (1, 2, 16, 784) and run.embeddings.shape == (1, 2, 100, 16)
    off = train(Grid(seeds=(0,), epochs=1), small, progress=False, snapshots=False, embeddings=False)
    assert off.snapshots is None and off.embeddings is None
    with pytest.raises(underspec.UnderspecError, match="snapshots must be"):
        train(Grid(seeds=(0,), epochs=1), small, progress=False, snapshots="yes")


def test_unknown_member_is_a_clear_error(small):
    run = train(Grid(seeds=(0,), epochs=1), small, progress=False)
    with pytest.raises(underspec.UnderspecError, match="no member seed=1"):
        run.member(seed=1, l1=0.0, n_classes=10)


def test_device_and_dtype_are_checked(small):
    grid = Grid(seeds=(0,), epochs=1)
    if not torch.cuda.is_available():
        with pytest.raises(underspec.UnderspecError, match="no GPU is visible"):
            train(grid, small, device="cuda", progress=False)
    with pytest.raises(underspec.UnderspecError, match="unknown device"):
        train(grid, small, device="tpu", progress=False)
    with pytest.raises(underspec.UnderspecError, match="dtype must be"):
        train(grid, small, dtype=torch.float16, progress=False)
    with pytest.raises(underspec.UnderspecError, match="sparse must be True, False or 'auto'"):
        train(grid, small, sparse="yes", progress=False)
    with pytest.raises(underspec.UnderspecError, match="tf32 must be True or False"):
        train(grid, small, tf32="fast", progress=False)


def test_float32_products_on_a_gpu_are_exact_unless_tf32_is_asked_for():
    """The flag only switches torch's global setting, so this runs without a GPU."""
    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision
    try:
        matmul.fp32_precision = "tf32"  # a user who turned TF32 on globally
        with matmul_precision(torch.device("cuda"), tf32=False):
            assert matmul.fp32_precision == "ieee"
        assert matmul.fp32_precision == "tf32"
        matmul.fp32_precision = "ieee"
        with matmul_precision(torch.device("cuda"), tf32=True):
            assert matmul.fp32_precision == "tf32"
        assert matmul.fp32_precision == "ieee"
    finally:
        matmul.fp32_precision = before


def test_auto_measures_the_faster_products_once_and_remembers(small, tmp_path, monkeypatch):
    """On a CPU, "auto" times both first-layer products at this data's density and shape, takes the faster,
    and remembers the choice for this machine (so later trainings take the same path and give the same bits)."""
    monkeypatch.setenv("UNDERSPEC_DATA", str(tmp_path))
    grid = Grid(seeds=(0,), epochs=1)
    first = train(grid, small, device="cpu", progress=False).meta
    again = train(grid, small, device="cpu", progress=False).meta
    assert first["products"]["measured"] and not again["products"]["measured"]
    assert first["sparse"] == again["sparse"] == (first["products"]["sparse_ms"] < first["products"]["dense_ms"])
    assert (tmp_path / "products.json").is_file()
    g = torch.Generator().manual_seed(0)  # no zeros at all: summing over non-zero pixels cannot win
    noise = underspec.Dataset("noise", torch.rand(300, 784, generator=g), small.y_train,
                              torch.rand(100, 784, generator=g), small.y_test)
    assert train(grid, noise, device="cpu", progress=False).meta["sparse"] is False


def test_the_product_choice_is_measured_apart_under_a_fixed_mmap_threshold(tmp_path, monkeypatch):
    """Where glibc maps every block of a megabyte or more afresh (the book's kernels), the sparse products' new
    gradient of every step costs page faults that the dense buffers do not: the choice made without that setting
    is not reused with it, and the other way round."""
    from underspec.training import products

    monkeypatch.setenv("UNDERSPEC_DATA", str(tmp_path))
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    times = {products.DenseProducts: 10.0, products.SparseProducts: 5.0}
    monkeypatch.setattr(products, "_time_steps", lambda cls, *a: times[cls])
    x = torch.rand(200, 50)

    def choose():
        return products.choose_products(x, 50, streams=1, units=16, batch_size=8)

    assert choose()[0] is products.SparseProducts and choose()[1]["measured"] is False
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "1048576")
    times[products.SparseProducts] = 20.0  # the faults
    cls, choice = choose()
    assert choice["measured"] and cls is products.DenseProducts
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    assert choose() == (products.SparseProducts, {**choice, "sparse": True, "sparse_ms": 5.0, "measured": False})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_members_equal_the_reference_loop(small):
    """The same code on the GPU: float64 is exact to rounding, like on the CPU."""
    grid = Grid(seeds=(0, 42), l1=(0.0, 0.01), n_classes=(2, 10), epochs=2)
    run = train(grid, small, device="cuda", dtype=torch.float64, progress=False, probe_size=50)
    for seed, l1, c in grid.members():
        ref = reference_train(seed, l1, c, small, epochs=2, dtype=torch.float64, probe_size=50)
        assert max_difference(run.member(seed, l1, c), ref) < 1e-10


def test_a_step_budget_trains_whole_epochs_and_equals_the_loop(small):
    """steps=100 on 300 images in batches of 64 (5 steps an epoch): 20 epochs, recorded with the budget."""
    grid = Grid(seeds=(0, 42), l1=(0.0, 0.01), n_classes=(3,), steps=100)
    run = train(grid, small, dtype=torch.float64, progress=False, probe_size=20, snapshots=True, embeddings=True)
    assert run.grid.epochs == 20 and run.grid.steps == 100 and run.history.epoch.max() == 20
    for seed, l1, c in grid.members():
        ref = reference_train(seed, l1, c, small, steps=100, dtype=torch.float64, probe_size=20)
        assert len(ref.history) == 20
        assert max_difference(run.member(seed, l1, c), ref) < 1e-10
    assert Grid(seeds=(0,), steps=101).for_data(300).epochs == 21  # rounded up to whole epochs
    with pytest.raises(underspec.UnderspecError, match="steps budget needs class_mode relabel"):
        Grid(seeds=(0,), steps=100, class_mode="subset")


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_a_program_without_l1_skips_the_l1_term_and_gives_the_same_networks(small, monkeypatch, sparse):
    """Every lambda 0: the L1 sign and its multiply-add are skipped; the networks are those of the same program
    with the L1 path on (it adds 0 * sign), bit for bit in float64."""
    from underspec.training import engine

    grid = Grid(seeds=(0, 42), l1=(0.0,), n_classes=(3, 10), epochs=2, momentum=0.9)
    kw = dict(dtype=torch.float64, progress=False, probe_size=20, sparse=sparse)
    lean = train(grid, small, **kw)
    monkeypatch.setattr(engine, "SKIP_ZERO_L1", False)
    full = train(grid, small, **kw)
    for name in RECORDS:
        assert all(torch.equal(getattr(lean, name)[k], getattr(full, name)[k]) for k in lean.init), name
    assert lean.history.equals(full.history)


def test_adam_at_depth_3_in_float32_equals_the_loop_to_float32_rounding(small):
    """Adam in float32 at its usual rate (3e-4), depth 3: every member within 1e-4 of the paper's loop after an
    epoch (seen: about 2e-5; the loop against itself at another thread count: about 1e-5). At a rate of 0.01 the
    same networks drift apart by 1e-1 and more, the loop from itself in float64 as much as the engine from it:
    Adam there amplifies rounding chaotically, and in float64 the two agree to 1e-12 (the mixed-grid tests)."""
    knobs = dict(hidden=64, depth=3, optimizer="adam", lr=3e-4, epochs=2)
    run = train(Grid(seeds=(0, 42), l1=(0.0, 0.01), n_classes=(10,), **knobs), small, progress=False, probe_size=10)
    for seed, l1 in ((0, 0.0), (42, 0.01)):
        ref = reference_train(seed, l1, 10, small, dtype=torch.float32, probe_size=10, **knobs)
        member = run.member(seed, l1, 10)
        assert max((member.final[k] - ref.final[k]).abs().max().item() for k in ref.final) < 1e-4, (seed, l1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_one_ulp_twin_differs_in_exactly_one_initial_weight_and_is_the_loops(small, dtype):
    """perturb_ulp = [0, 1]: every seed twice, the twin's W1[0, 0] one unit in the last place of the training
    dtype higher and nothing else; after training, the twin is the loop's network with the same nudge."""
    grid = Grid(seeds=(0, 42), l1=(0.0, 0.01), n_classes=(10,), epochs=2, perturb_ulp=(0, 1))
    run = train(grid, small, progress=False, dtype=dtype, probe_size=10)
    for seed, l1 in ((0, 0.0), (42, 0.01)):
        a, b = run.member(seed, l1, 10, perturb_ulp=0), run.member(seed, l1, 10, perturb_ulp=1)
        changed = sum(int((a.init[k] != b.init[k]).sum()) for k in a.init)
        assert changed == 1 and b.init["w1"][0, 0] == torch.nextafter(a.init["w1"][0, 0], torch.tensor(1.0, dtype=dtype))
        ref = reference_train(seed, l1, 10, small, epochs=2, perturb_ulp=1, dtype=dtype, probe_size=10)
        tolerance = 1e-10 if dtype == torch.float64 else 1e-5
        assert max((b.final[k] - ref.final[k]).abs().max().item() for k in ref.final) < tolerance
    with pytest.raises(underspec.UnderspecError, match="perturb_ulp moves W1"):
        Grid(perturb_ulp=2)


def test_choices_of_another_code_version_stay_remembered_beside_this_ones(tmp_path, monkeypatch):
    """Two checkouts of different code on one machine share the data cache: each one's choice is kept (keyed by
    its code version), so neither measures again at every call; the file keeps only the newest choices."""
    from underspec.training import products

    monkeypatch.setenv("UNDERSPEC_DATA", str(tmp_path))
    monkeypatch.setattr(products, "_time_steps", lambda cls, *a: 1.0)
    x = torch.rand(200, 50)

    def choose(code):
        monkeypatch.setattr(products, "code_hash", lambda: code)
        return products.choose_products(x, 50, streams=1, units=16, batch_size=8)[1]["measured"]

    assert choose("a") and choose("b") and not choose("a") and not choose("b")
    for i in range(products.KEPT_CHOICES + 5):
        choose(f"other {i}")
    assert len(json.loads((tmp_path / "products.json").read_text())) == products.KEPT_CHOICES
    assert choose("a")  # among the oldest: dropped, measured again
