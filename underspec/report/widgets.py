"""Explorers: ipywidgets that move seed, lambda, C and epoch through a trained Run, live in Jupyter.

Every explorer is an ``Explorer``: displayed in a live notebook it is the widget (sliders + figure); on a
static page (the built book, no kernel) the same display shows the default figure instead, or a
precomputed slider (an HTML animation over epochs) where that is cheap. The book's ``_config.yml`` tells
the HTML builder to skip the widget view, so no widget JavaScript is needed there.

The explorers only call the package: the model, the symmetry, the matching, the representations and the
figures; they compute nothing of their own.
"""

from __future__ import annotations

import base64
import html
import os

import numpy as np
import torch

from ..errors import UnderspecError, shown
from ..metrics.matching import match_units
from ..metrics.representations import pca_trajectories
from ..metrics.symmetry import permute_hidden
from ..training.model import forward
from ..training.run import check_run
from . import pictures
from .style import fmt_l1, png_bytes, subtitle


# Set by the book's build and the tests: explorers show their static view only. Their live view is dropped from
# the static pages anyway, and its Output widget makes the executing client (nbclient) send comm messages on the
# shell socket it is also waiting on for the cell's reply; that hung a chapter's build three times here.
STATIC_ENV = "UNDERSPEC_STATIC_EXPLORERS"


class Explorer:
    """A figure with controls. ``draw(**values) -> Figure`` draws one state; ``options`` maps each control
    name to its (label, values[, note]) and ``defaults`` gives the state shown on a static page; ``note`` (or
    a control's note) is shown under the figure, saying what the controls offer.

    Live (ipywidgets available, a kernel, ``$UNDERSPEC_STATIC_EXPLORERS`` unset): the sliders redraw the
    figure. Static: ``defaults`` drawn once, or ``static_html`` (for example ``epoch_slider_html``) when given.
    """

    def __init__(self, draw, options: dict[str, tuple[str, list]], defaults: dict, *, static_html: str | None = None,
                 alt: str = "explorer", note: str | None = None):
        for name, value in defaults.items():
            if name in options and value not in options[name][1]:
                raise UnderspecError(f"default {name}={shown(value)} is not one of {options[name][1]}")
        self.draw, self.options, self.defaults = draw, options, dict(defaults)
        self.static_html, self.alt = static_html, alt
        notes = [option[2] for option in options.values() if len(option) > 2]
        self.note = note if note is not None else " ".join(notes) or None
        self._png = None
        self._widget = None

    def static_png(self) -> bytes:
        """The default state as PNG bytes (drawn once)."""
        if self._png is None:
            self._png = png_bytes(self.draw(**self.defaults))
        return self._png

    @property
    def widget(self):
        """The live ipywidgets box (sliders above the figure)."""
        if self._widget is None:
            import ipywidgets as w

            controls = {}
            readable = dict(style={"description_width": "initial"})  # the whole label, never cut off
            for name, (label, values, *_) in self.options.items():
                values = list(values)
                if all(isinstance(v, (int, np.integer)) for v in values) and values == list(
                        range(values[0], values[-1] + 1)) and len(values) > 12:
                    controls[name] = w.IntSlider(value=self.defaults[name], min=values[0], max=values[-1],
                                                 description=label, continuous_update=False, **readable)
                elif len(values) <= 2 and all(isinstance(v, bool) for v in values):
                    controls[name] = w.Checkbox(value=self.defaults[name], description=label, **readable)
                else:
                    controls[name] = w.SelectionSlider(options=[(self._label(v), v) for v in values],
                                                       value=self.defaults[name], description=label,
                                                       continuous_update=False, **readable)
            fixed = {k: v for k, v in self.defaults.items() if k not in controls}

            def show(**values):
                # a PNG works under any matplotlib backend (plt.show(fig) only under the inline one)
                from IPython.display import Image, display

                display(Image(data=png_bytes(self.draw(**fixed, **values)), format="png"))

            out = w.interactive_output(show, controls)
            box = w.HBox(list(controls.values()), layout=w.Layout(flex_flow="row wrap"))
            note = [w.HTML(f"<small>{html.escape(self.note)}</small>")] if self.note else []
            self._widget = w.VBox([box, out, *note])  # controls, figure, then what the controls offer
        return self._widget

    @staticmethod
    def _label(value) -> str:
        if isinstance(value, float):
            return fmt_l1(value)
        return str(value)

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {"text/plain": f"<{self.alt}: run it live for the sliders>",
                  "image/png": base64.b64encode(self.static_png()).decode()}
        if self.static_html is not None:
            bundle["text/html"] = self.static_html
        try:
            import ipywidgets  # noqa: F401
            from IPython import get_ipython

            live = get_ipython() is not None and getattr(get_ipython(), "kernel", None) is not None
        except ImportError:
            live = False
        live = live and not os.environ.get(STATIC_ENV)
        if live:
            view = self.widget._repr_mimebundle_()
            view.pop("text/plain", None)
            bundle.update(view)
        return bundle


def _run_options(run, epochs: bool = True) -> dict[str, tuple]:
    g = check_run(run, "an explorer").grid
    classes = list(g.n_classes)
    why = (f"C (classes) offers {', '.join(map(str, classes))}: the class counts this run recorded every epoch "
           "for (recording all of 2..10 would need far more memory); the study chapter compares every C.")
    options = {"seed": ("seed", list(g.seeds)), "l1": ("λ (L1 strength)", list(g.l1)),
               "n_classes": ("C (classes)", classes, why) if classes != list(range(2, 11)) else ("C (classes)", classes)}
    if epochs:
        if run.snapshots is None:
            raise UnderspecError("this explorer needs per-epoch snapshots: train with snapshots=True")
        options["epoch"] = ("epoch", list(range(0, g.epochs + 1)))
    return options


def _default(run, seed=None, l1=None, n_classes=None, epoch=None) -> dict:
    g = run.grid
    return {"seed": g.seeds[0] if seed is None else seed, "l1": g.l1[0] if l1 is None else l1,
            "n_classes": max(g.n_classes) if n_classes is None else n_classes,
            "epoch": g.epochs if epoch is None else epoch}


def _snapshot(run, seed, l1, n_classes, epoch) -> dict[str, torch.Tensor]:
    """Parameters of one member after ``epoch`` epochs (0 = init), unpadded."""
    i = run.index(seed, l1, n_classes)
    return {k: (v[i, epoch, :n_classes] if k in ("w2", "b2") else v[i, epoch]) for k, v in run.snapshots.items()}


# ------------------------------------------------------------------------------------------- chapter 2

def training_explorer(run, **defaults) -> Explorer:
    """Seed, λ, C, epoch -> the learning curves of that configuration (the chosen epoch marked) and the
    chosen seed's 16 first-layer filters at that epoch."""
    def draw(seed, l1, n_classes, epoch):
        w1 = _snapshot(run, seed, l1, n_classes, epoch)["w1"]
        return pictures.training_state(run.history, w1, data_name=run.data_name, seed=seed, l1=l1,
                                      n_classes=n_classes, epoch=epoch)
    return Explorer(draw, _run_options(run), _default(run, **defaults), alt="training explorer")


# ------------------------------------------------------------------------------------------- chapter 3

def permutation_explorer(run, x, **defaults) -> Explorer:
    """Seed, λ, C, epoch and a permutation -> the network, its permuted copy, and their outputs on the
    images ``x`` (N, 784), which coincide."""
    options = _run_options(run)
    options["perm_seed"] = ("random reordering of the units, draw no.", list(range(0, 10)))
    state = _default(run, **{k: v for k, v in defaults.items() if k != "perm_seed"})
    state["perm_seed"] = defaults.get("perm_seed", 1)

    def draw(seed, l1, n_classes, epoch, perm_seed):
        params = _snapshot(run, seed, l1, n_classes, epoch)
        perm = torch.randperm(run.grid.hidden, generator=torch.Generator().manual_seed(perm_seed))
        permuted = permute_hidden(params, perm)
        with torch.no_grad():
            before, after = forward(params, x), forward(permuted, x)
        return pictures.permutation_view(params["w1"], permuted["w1"], perm, before, after, title=subtitle(
            run.data_name, seeds=1, l1=l1, n_classes=n_classes, extra=f"seed {seed}, epoch {epoch}"))
    return Explorer(draw, options, state, alt="permutation explorer")


# ------------------------------------------------------------------------------------------- chapter 4

def matching_explorer(run, **defaults) -> Explorer:
    """Seed (against the reference seed), λ, C, epoch, signed or |r| -> R1 before and after matching, and
    the matched filters of both networks side by side."""
    options = _run_options(run)
    options["seed"] = ("seed", list(run.grid.seeds[1:]))
    options["signed"] = ("signed", [False, True])
    state = _default(run, **{k: v for k, v in defaults.items() if k != "signed"})
    if state["seed"] == run.grid.seeds[0]:
        state["seed"] = run.grid.seeds[1]
    state["signed"] = defaults.get("signed", False)
    ref = run.grid.seeds[0]

    def draw(seed, l1, n_classes, epoch, signed):
        a = _snapshot(run, ref, l1, n_classes, epoch)
        b = _snapshot(run, seed, l1, n_classes, epoch)
        m = match_units(a, b, layer=1, signed=signed)
        aligned = permute_hidden(b, m.perm.clamp(min=0))
        return pictures.matching_view(a["w1"], aligned["w1"], m.corr, m.perm, signed=signed, seeds=(ref, seed),
                                     title=subtitle(run.data_name, seeds=2, l1=l1, n_classes=n_classes,
                                                            extra=f"seed {ref} vs {seed}, epoch {epoch}"))
    return Explorer(draw, options, state, alt="matching explorer")


# ------------------------------------------------------------------------------------------- chapter 5

def gradient_explorer(run, **defaults) -> Explorer:
    """Seed, λ, C, epoch -> that epoch's summed W1 gradient (from the SGD identity on consecutive
    snapshots: (W before - W after) / lr), per unit and as a mean |gradient| map over the image."""
    if run.grid.optimizer != "sgd" or run.grid.momentum or run.grid.weight_decay:
        raise UnderspecError("the per-epoch gradient explorer uses the identity of plain SGD: it needs a run with "
                             "optimizer sgd, no momentum and no weight decay")
    options = _run_options(run)
    options["epoch"] = ("epoch", list(range(1, run.grid.epochs + 1)))
    state = _default(run, **defaults)
    state["epoch"] = max(1, state["epoch"])

    def draw(seed, l1, n_classes, epoch):
        before = _snapshot(run, seed, l1, n_classes, epoch - 1)["w1"]
        after = _snapshot(run, seed, l1, n_classes, epoch)["w1"]
        return pictures.epoch_gradient(before, after, lr=run.grid.lr, title=subtitle(
            run.data_name, seeds=1, l1=l1, n_classes=n_classes, extra=f"seed {seed}, epoch {epoch}"))
    return Explorer(draw, options, state, alt="gradient explorer")


# ------------------------------------------------------------------------------------------- chapter 6

def representation_explorer(run, labels, *, static_epochs=None, **defaults) -> Explorer:
    """Seed, λ, C, epoch -> the probe images' first-layer embeddings at that epoch, projected on the
    seed's own 2 principal components (fitted on the final epoch), coloured by digit ``labels`` (P,).

    ``static_epochs``: epochs of a precomputed slider for the static page (default: none, a still image).
    """
    if check_run(run, "the representation explorer").embeddings is None:
        raise UnderspecError("the representation explorer needs embeddings: train with embeddings=True")
    state = _default(run, **defaults)
    cache = {}

    def projection(seed, l1, n_classes):
        key = (seed, l1, n_classes)
        if key not in cache:
            cache[key] = pca_trajectories(run.embeddings[run.index(seed, l1, n_classes)])
        return cache[key]

    def draw(seed, l1, n_classes, epoch):
        p = projection(seed, l1, n_classes)
        return pictures.embedding_scatter(p.coords, labels, epoch, explained=p.explained, title=subtitle(
            run.data_name, seeds=1, l1=l1, n_classes=n_classes, extra=f"seed {seed}, epoch {epoch}"))

    static_html = None
    if static_epochs:
        static_html = epoch_slider_html(lambda e: draw(state["seed"], state["l1"], state["n_classes"], e),
                                        list(static_epochs), label="epoch")
    return Explorer(draw, _run_options(run), state, static_html=static_html, alt="representation explorer")


# ---------------------------------------------------------------------------------- static page slider

def epoch_slider_html(draw_frame, frames: list, *, label: str = "epoch") -> str:
    """A slider that works without a kernel: every frame pre-rendered as a PNG, switched by an HTML range
    input with a few lines of inline JavaScript. ``draw_frame(value) -> Figure`` for each value in ``frames``."""
    images = [base64.b64encode(png_bytes(draw_frame(v))).decode() for v in frames]
    uid = f"us{abs(hash((tuple(frames), images[0][:64]))) % 10**10}"
    data = ",".join(f'"{img}"' for img in images)
    labels = ",".join(f'"{html.escape(str(v))}"' for v in frames)
    last = len(frames) - 1
    return f"""<div class="underspec-slider" id="{uid}">
<label>{html.escape(label)} <input type="range" min="0" max="{last}" value="{last}" step="1" style="width:60%">
<span class="underspec-slider-value">{html.escape(str(frames[-1]))}</span></label>
<img alt="{html.escape(label)} {html.escape(str(frames[-1]))}" style="max-width:100%" src="data:image/png;base64,{images[-1]}">
<script>
(function() {{
  var root = document.getElementById("{uid}");
  var frames = [{data}];
  var labels = [{labels}];
  var input = root.querySelector("input"), img = root.querySelector("img");
  var value = root.querySelector(".underspec-slider-value");
  input.addEventListener("input", function() {{
    var i = parseInt(input.value, 10);
    img.src = "data:image/png;base64," + frames[i];
    img.alt = "{html.escape(label)} " + labels[i];
    value.textContent = labels[i];
  }});
}})();
</script>
</div>"""
