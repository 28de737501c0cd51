"""The sentences of "Tuning when seeds disagree" that carry numbers: each computed from the tables of a
``TuningStudy`` or of the committed study (``tuning_verdicts``), so the prose never holds a number typed by
hand."""

from __future__ import annotations

import numpy as np

from ..text import interval, number
from .tuning import BUDGET, DEEP, NOISE
from .tuning_verdicts import bump_estimate, inflation, overparam_curve, picks, seed_findings

TUNER_WORDS = {"grid": "grid search", "random": "random search", "tpe": "TPE"}


def seed_sentence(tables: dict, label: str) -> str:
    """The seed study in words: rank agreement, winners that change, the winner against the runner-up."""
    f = seed_findings(tables["scores"])
    k, s = len(f["configs"]), tables["scores"].seed.nunique()
    w = f["configs"].iloc[f["winner"]]
    rho, changed, m = f["spearman"], f["changed"], f["margin"]
    return (f"In {label}, {k} configurations were each trained with the same {s} seeds. Cut into two halves of "
            f"{s // 2} seeds in every possible way, the halves rank the configurations with a mean Spearman "
            f"correlation of {interval(rho.value, rho.low, rho.high)}, and they crown different winners in "
            f"{changed.value:.0%} of the splits; tuned with one seed per configuration, as most searches are, "
            f"{f['alone']:.0%} of the seeds would crown another configuration than all {s} seeds together (lr "
            f"{w.lr:.3g}, width {int(w.hidden)}). Chosen on the first half of the seeds and judged on the second, "
            f"the winner leads the best other configuration by {interval(m.value, m.low, m.high)} in validation "
            f"accuracy, and {f['tied']} of the other {k - 1} configurations cannot be told from it on those fresh "
            "seeds.")


def inflation_sentence(tables: dict, label: str) -> str:
    """What keeping the best of k reruns adds, at k = 2 and at every seed."""
    inf = inflation(tables["scores"]).set_index("k")
    s = int(inf.index.max())
    return (f"In {label}, rerunning the winning configuration twice and keeping the better run adds "
            f"{number(inf.validation.loc[2])} to its validation accuracy, and keeping the best of all {s} adds "
            f"{number(inf.validation.loc[s])}; the test accuracy of the run that validation picks moves by "
            f"{number(inf.test.loc[2])} and {number(inf.test.loc[s])}.")


def shapes_sentence(tables: dict, label: str) -> str:
    """Depth against width at the equal budget, and funnel against constant, in words."""
    est, con = tables["shapes"], tables["contrasts"].set_index(["contrast", "metric"])
    acc = est[est.metric == "accuracy"].set_index("widths")
    shapes = list(acc.index)
    deep = con.loc[(f"depth {DEEP} - depth 1", "accuracy")]
    funnel = con.loc[("funnel - constant", "accuracy")]
    dis = con.loc[(f"depth {DEEP} - depth 1", "disagreement")]

    def acc_of(shape):
        r = acc.loc[shape]
        return interval(r.value, r.low, r.high, sign=False)

    return (f"In {label}, at about {BUDGET:,} parameters one hidden layer of {shapes[0]} units reaches a test "
            f"accuracy of {acc_of(shapes[0])} and {DEEP} layers of {shapes[1].split('-')[0]} reach "
            f"{acc_of(shapes[1])}: depth {DEEP} minus depth 1 is {interval(deep.value, deep.low, deep.high)}, and "
            f"its seeds disagree with each other by {interval(dis.value, dis.low, dis.high)} more. The funnel "
            f"{shapes[3]} against the constant {shapes[2]}: {interval(funnel.value, funnel.low, funnel.high)} in "
            "accuracy.")


def overparam_sentence(tables: dict, label: str) -> str:
    """The test error's curve over widths at each noise level, its best width and its bump."""
    curve = overparam_curve(tables["overparam"])
    parts = []
    for noise in NOISE:
        c = curve[curve.label_noise == noise]
        best = c.loc[c.test_error.idxmin()]
        e, top = bump_estimate(tables["overparam"], noise)
        widest = c.iloc[-1]
        at_widest = (f"the widest, {int(widest.hidden)} ({number(widest.test_error, sign=False)}; train error "
                     f"{number(widest.train_error, sign=False)})")
        lowest = (f"is lowest at {at_widest}" if best.hidden == widest.hidden else
                  f"is lowest at width {int(best.hidden)} ({number(best.test_error, sign=False)}), against {at_widest}")
        parts.append(f"at {noise:.0%} noise the test error {lowest}, and its largest bump is "
                     f"{interval(e.value, e.low, e.high)}" + (f" at width {top}" if top > 0 else ""))
    sd = curve.groupby("label_noise").sd.median()
    return (f"In {label}, " + "; ".join(parts) + ". The seeds' standard deviation of the test error, the median "
            "over widths, is " + ", ".join(f"{number(v, sign=False)} at {n:.0%}" for n, v in sd.items()) + ".")


def tuners_sentence(tables: dict, label: str) -> str:
    """What each tuner found and picked, at the whole budget."""
    p = picks(tables["tuners"])
    parts = []
    for tuner, part in p.groupby("tuner", sort=False):
        widths = sorted(set(int(h) for h in part.hidden))
        parts.append(f"{TUNER_WORDS[tuner]} {number(part.validation.mean(), sign=False)} "
                     f"(from {number(part.validation.min(), sign=False)} to {number(part.validation.max(), sign=False)}"
                     f" over its sampler seeds; widths picked: {', '.join(map(str, widths))}; test accuracy of its "
                     f"picks {number(part.test.mean(), sign=False)})")
    networks = int(tables["tuners"].groupby(["tuner", "repeat"]).size().iloc[0])
    return (f"In {label}, with {networks} networks each, the best validation accuracy found was: "
            + "; ".join(parts) + ".")


def committed_words(committed: dict | None) -> str:
    """Where the committed study comes from, or that it is not committed."""
    if committed is None:
        return "The committed study (`scripts/tuning_results.py`) is not in this checkout: only this build is shown."
    p = committed["provenance"]
    minutes = np.round(p["train_cpu_seconds"] / 60, 1)
    return (f"The committed study (`results/{p['study']}`, made by `scripts/tuning_results.py` at commit "
            f"{p['code_commit'][:7]} on {p['written'][:10]}) runs the same design larger: {p['summary']} Its "
            f"training took {minutes} minutes of CPU time at one thread.")
