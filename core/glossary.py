"""Plain-words explanations of the terms the workbench shows (metrics, search methods, drift
tests), as data: every page, the CLI's help and the docs can show the same sentence."""

from __future__ import annotations

from core.automl.metrics import METRICS

SCORE_KINDS: dict[str, str] = {
    "cv": "CV score: the model was trained on part of the data and scored on the rest, several "
          "times (folds); this is the average of those fold scores.",
    "oof": "Out-of-fold score: every row's prediction comes from a model that did not see that "
           "row in training; all those predictions are scored together. An ensemble is scored "
           "this way, so this is not an average of fold scores.",
    "holdout": "Holdout score: the most recent rows, kept aside from every fold and every "
               "model choice, scored once at the end.",
}

TERMS: dict[str, str] = {
    **{name: m.describe() for name, m in METRICS.items()},
    "tpe": "tpe (Tree-structured Parzen Estimator): a smart search that tries settings similar "
           "to the ones that scored well so far. Usually the best choice.",
    "random": "random: tries settings at random. Simple, and a fair baseline.",
    "grid": "grid: tries every combination from a fixed list of settings, in order.",
    "fingerprint": "fingerprint: a short code computed from the table's exact contents. The "
                   "same data always gets the same fingerprint, so you can tell whether a model "
                   "was trained on exactly this table.",
    "psi": "PSI (population stability index): how much a feature's distribution has shifted "
           "from training to now. Below 0.1 is stable, above 0.25 is a large shift.",
    "jensen_shannon": "Jensen-Shannon distance: how different two distributions are, from 0 "
                      "(identical) to 1 (nothing in common). Used for categorical columns.",
    "ks": "KS test (Kolmogorov-Smirnov): checks whether two samples of numbers come from the "
          "same distribution; a small p-value (below 0.05) means they probably do not.",
    "p_value": "p-value: how likely a difference this large would be by chance alone; small "
               "means the shift is probably real.",
    "effect_size": "effect size: how large the shift is, whatever the sample size (for numbers "
                   "the Wasserstein distance in standard deviations, for categories the "
                   "Jensen-Shannon distance).",
    "wasserstein": "Wasserstein distance: how far the values moved, in standard deviations of "
                   "the training data. Used for numeric columns on large samples.",
    "chi2": "chi-squared test: checks whether categories appear as often as in training; a "
            "small p-value (below 0.05) means the mix changed.",
    "ensemble": "ensemble: a weighted average of the best few models' predictions, kept only "
                "when it scores better than the best single model.",
}


def explain(term: str) -> str | None:
    """The plain-words help for a term (case and `-`/space insensitive), or None."""
    return TERMS.get(term.lower().replace("-", "_").replace(" ", "_"))
