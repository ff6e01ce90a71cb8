"""The one way results are summarised: every chapter's tables and ``esc results`` use these functions.

- :func:`summarise`: mean ± std of every scalar metric over *true repeats* only -- runs whose identities differ in
  nothing but the test fold, the seed and the split they imply -- beside the studies' published number and its
  protocol. Runs that differ in any other input (a learning rate, a dataset tree, a checkpoint) are never averaged
  together: they are separate rows, and the ``setting`` column names what tells them apart.
- :func:`paired_differences`: two arms compared fold by fold -- the difference per fold, its mean and a bootstrap
  interval over folds, and whether that interval contains zero (the difference is then inside the fold noise).
- :func:`run_frame`: one row per run with its readable setting, recipe and metrics (for figures).

Each result is a dict as :class:`esclib.results.store.ResultsStore` saves it (``experiment, arm, setting, identity,
metrics, ...``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from esclib.results.studies import study_value

#: identity keys (flattened) that repeat one configuration: aggregated over, never grouped on -- the seed, the test
#: fold and the split digest they imply
REPEAT_KEYS: tuple[str, ...] = ("seed", "split", "setting.fold", "setting.seed")

#: columns of :func:`summarise`
SUMMARY_COLUMNS: tuple[str, ...] = (
    "experiment", "arm", "setting", "metric", "mean", "std", "n_runs", "folds", "study_value", "study_source",
    "study_protocol",
)

#: numeric metric entries that are counts, not metrics
_NOT_METRICS = frozenset({"n", "n_train", "n_test", "n_labelled", "n_unlabelled", "n_val", "epochs", "best_epoch"})


def flatten(value: Mapping, prefix: str = "") -> dict[str, object]:
    """A nested mapping as one level, keys joined by dots (``{"recipe": {"lr": 1}}`` -> ``{"recipe.lr": 1}``);
    lists become JSON text."""
    flat: dict[str, object] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping):
            flat.update(flatten(item, f"{name}."))
        else:
            flat[name] = json.dumps(item) if isinstance(item, list) else item
    return flat


def _short(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def group_keys(result: Mapping) -> dict[str, object]:
    """The identity of a result without its repeat keys (:data:`REPEAT_KEYS`): what a true repeat shares."""
    flat = flatten(result["identity"])
    return {k: v for k, v in flat.items() if k not in REPEAT_KEYS and k not in ("experiment", "arm")}


def _described(keys: list[dict[str, object]], arms: list[str]) -> list[str]:
    """For each group, ``k=v`` of the keys that tell the groups apart: readable keys first (the setting, then the
    recipe, then the rest, the inputs' digests last), each kept only if it separates groups the earlier ones do not
    (so a value recorded twice, or a digest that follows from a parameter, is not repeated); short names where
    unambiguous."""
    def text(value: object) -> str:
        return json.dumps(value, sort_keys=True, default=str)

    def rank(key: str) -> tuple[int, str]:
        order = ("setting.", "recipe.", "", "inputs.")
        return next(i for i, p in enumerate(order) if key.startswith(p) or p == ""), key

    every = sorted({k for g in keys for k in g}, key=rank)
    chosen: list[str] = []
    for key in every:
        before = {(arm, *(text(g.get(k)) for k in chosen)) for arm, g in zip(arms, keys)}
        after = {(arm, *(text(g.get(k)) for k in [*chosen, key])) for arm, g in zip(arms, keys)}
        if len(after) > len(before):
            chosen.append(key)
    shorts = [_short(k) for k in chosen]
    names = {k: (_short(k) if shorts.count(_short(k)) == 1 else k) for k in chosen}
    return [", ".join(f"{names[k]}={g.get(k)}" for k in chosen) for g in keys]


def study_setting(result: Mapping) -> dict[str, object]:
    """The keys a published number is matched on (:func:`esclib.results.studies.study_value`): the run's readable
    setting and its recipe, by short name."""
    identity = result["identity"]
    return {**{_short(k): v for k, v in flatten(identity.get("recipe", {})).items()}, **result["setting"]}


def _numeric(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def summarise(results: Iterable[Mapping], metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean ± std (sample std, ddof=1) of every scalar metric (or of ``metrics``, in that order) per experiment, arm
    and configuration, over the runs that are true repeats of one another; columns :data:`SUMMARY_COLUMNS`.

    ``setting`` names the keys whose values differ between the rows of one experiment (empty when nothing does);
    ``n_runs`` counts the repeats and ``folds`` lists their test folds. ``study_value`` / ``study_source`` /
    ``study_protocol`` give the published number for that arm and setting (NaN / "" when none).
    """
    groups: dict[str, dict] = {}
    for result in results:
        keys = group_keys(result)
        name = json.dumps([result["experiment"], result["arm"], keys], sort_keys=True, default=str)
        group = groups.setdefault(name, {"experiment": result["experiment"], "arm": result["arm"], "keys": keys,
                                         "first": result, "values": {}, "folds": []})
        group["folds"].append(result["setting"].get("fold"))
        for metric, value in result["metrics"].items():
            if _numeric(value) and metric not in _NOT_METRICS:
                group["values"].setdefault(metric, []).append(value)
    rows = []
    for experiment in dict.fromkeys(g["experiment"] for g in groups.values()):
        members = [g for g in groups.values() if g["experiment"] == experiment]
        for group, described in zip(members, _described([g["keys"] for g in members],
                                                        [g["arm"] for g in members])):
            shown = list(metrics) if metrics is not None else list(group["values"])
            for metric in shown:
                values = np.asarray(group["values"].get(metric, []), dtype=float)
                if values.size == 0:
                    continue
                study = study_value(experiment, group["arm"], metric, study_setting(group["first"]))
                rows.append({
                    "experiment": experiment, "arm": group["arm"], "setting": described, "metric": metric,
                    "mean": float(values.mean()),
                    "std": float(values.std(ddof=1)) if values.size > 1 else float("nan"),
                    "n_runs": int(values.size),
                    "folds": ",".join(str(f) for f in sorted(f for f in group["folds"] if f is not None)),
                    "study_value": study.value if study else float("nan"),
                    "study_source": study.study.source if study else "",
                    "study_protocol": (study.study.protocol + (f"; {study.note}" if study.note else "")) if study
                    else "",
                })
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def mean_std(mean: float, std: float, digits: int = 3) -> str:
    """``"0.812 ± 0.034"`` (``"0.812"`` when the std is NaN: a single run)."""
    return f"{mean:.{digits}f}" if pd.isna(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def summary_table(results: Iterable[Mapping], metrics: Sequence[str] = ("accuracy",), digits: int = 3
                  ) -> pd.DataFrame:
    """:func:`summarise` for reading: one row per arm and configuration, per metric ``"mean ± std"`` and the
    published number with its source and protocol beside it (blank where the studies published none)."""
    table = summarise(results, metrics)
    if table.empty:
        return pd.DataFrame(columns=["arm", "setting", "runs", *metrics])
    rows = []
    for (arm, setting), group in table.groupby(["arm", "setting"], sort=False):
        row = {"arm": arm, "setting": setting, "runs": int(group["n_runs"].max()),
               "folds": group["folds"].iloc[0]}
        for metric_row in group.itertuples():
            row[metric_row.metric] = mean_std(metric_row.mean, metric_row.std, digits)
            if not pd.isna(metric_row.study_value):
                row[f"published {metric_row.metric}"] = f"{metric_row.study_value:.{digits}f}"
                row["published: source and protocol"] = f"{metric_row.study_source} ({metric_row.study_protocol})"
        rows.append(row)
    out = pd.DataFrame(rows).fillna("")
    return out.drop(columns="setting") if (out["setting"] == "").all() else out


def run_frame(results: Iterable[Mapping]) -> pd.DataFrame:
    """One row per run: ``experiment, arm``, its readable setting and recipe (by short name) and its scalar
    metrics, plus ``run`` (the run's id) and ``split_digest``."""
    rows = []
    for result in results:
        row = {"experiment": result["experiment"], "arm": result["arm"], **study_setting(result),
               "run": result.get("id"), "split_digest": (result.get("split") or {}).get("digest")}
        row.update({k: v for k, v in result["metrics"].items() if _numeric(v) or v is None})
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class PairedDifference:
    """``b - a`` of one metric, fold by fold (``per_fold``: ``fold, a, b, difference``), with its mean, the bootstrap
    interval of the mean over folds (``low``, ``high`` at ``level``) and how many folds favour ``b``."""

    a: str
    b: str
    metric: str
    per_fold: pd.DataFrame
    mean: float
    low: float
    high: float
    level: float

    @property
    def inside_noise(self) -> bool:
        """Whether the interval contains zero: the folds do not tell the two apart."""
        return self.low <= 0 <= self.high

    @property
    def favour_b(self) -> int:
        """Folds on which ``b`` scored higher than ``a``."""
        return int((self.per_fold["difference"] > 0).sum())

    def verdict(self, digits: int = 3) -> str:
        """One sentence: the difference, its interval and whether it is inside the fold noise."""
        n = len(self.per_fold)
        where = ("inside the fold noise (the interval contains 0)" if self.inside_noise else
                 f"{'above' if self.low > 0 else 'below'} zero on the folds run")
        return (f"{self.b} − {self.a}: {self.mean:+.{digits}f} {self.metric} (mean over {n} folds; "
                f"{self.level:.0%} bootstrap interval {self.low:+.{digits}f} to {self.high:+.{digits}f}; "
                f"{self.b} higher on {self.favour_b} of {n}) — {where}")

    def row(self, digits: int = 3) -> dict[str, object]:
        """The comparison as one table row."""
        return {"comparison": f"{self.b} − {self.a}", "metric": self.metric, "folds": len(self.per_fold),
                "mean difference": round(self.mean, digits),
                f"{self.level:.0%} interval": f"[{self.low:+.{digits}f}, {self.high:+.{digits}f}]",
                f"folds {self.b} higher": f"{self.favour_b}/{len(self.per_fold)}",
                "inside the noise": self.inside_noise}


def bootstrap_interval(values: Sequence[float], *, level: float = 0.95, n_boot: int = 10_000, seed: int = 0
                       ) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (resampled with replacement; a fixed ``seed``, so the
    same values always give the same interval)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("bootstrap_interval: no values")
    if not 0 < level < 1:
        raise ValueError(f"bootstrap_interval: level must be in (0, 1), got {level}")
    means = np.random.default_rng(seed).choice(values, size=(n_boot, values.size), replace=True).mean(axis=1)
    return float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, (1 + level) / 2))


def paired_differences(results: Iterable[Mapping], a: str, b: str, metric: str = "accuracy", *,
                       level: float = 0.95, seed: int = 0) -> PairedDifference:
    """``b - a`` of ``metric`` on every test fold both arms ran (runs keyed by ``arm`` or, for variants of one arm,
    by any label a caller put in ``result["label"]``); a ValueError names the arms when they share no fold, or when
    one arm has two runs of one fold (two configurations: select one first)."""
    by_arm: dict[str, dict] = {a: {}, b: {}}
    for result in results:
        label = result.get("label", result["arm"])
        if label in by_arm:
            fold = result["setting"].get("fold")
            if fold in by_arm[label]:
                raise ValueError(f"paired_differences: {label!r} has two runs of fold {fold}; pass the runs of one "
                                 "configuration")
            by_arm[label][fold] = result["metrics"][metric]
    folds = sorted(set(by_arm[a]) & set(by_arm[b]), key=str)
    if not folds:
        raise ValueError(f"paired_differences: {a!r} ({sorted(by_arm[a], key=str)}) and {b!r} "
                         f"({sorted(by_arm[b], key=str)}) share no fold")
    per_fold = pd.DataFrame({"fold": folds, a: [by_arm[a][f] for f in folds], b: [by_arm[b][f] for f in folds]})
    per_fold["difference"] = per_fold[b] - per_fold[a]
    low, high = bootstrap_interval(per_fold["difference"], level=level, seed=seed)
    return PairedDifference(a, b, metric, per_fold, float(per_fold["difference"].mean()), low, high, level)


class Results(list):
    """The results of a chapter's runs (what :meth:`esclib.experiments.base.Experiment.grid` returns): a list of
    result dicts with the summaries above as methods, so that every chapter reports the same way."""

    def select(self, **where: object) -> "Results":
        """The runs whose ``arm`` / ``label`` / readable setting / recipe field equals every ``where`` item."""
        def keep(result: Mapping) -> bool:
            known = {"arm": result["arm"], "label": result.get("label", result["arm"]), **study_setting(result)}
            return all(known.get(k) == v for k, v in where.items())

        return Results(r for r in self if keep(r))

    def frame(self) -> pd.DataFrame:
        """:func:`run_frame` of these runs (plus ``label``)."""
        frame = run_frame(self)
        return frame.assign(label=[r.get("label", r["arm"]) for r in self]) if len(frame) else frame

    def summary(self, metrics: Sequence[str] = ("accuracy",), digits: int = 3) -> pd.DataFrame:
        """:func:`summary_table` of these runs."""
        return summary_table(self, metrics, digits)

    def paired(self, a: str, b: str, metric: str = "accuracy", **kwargs: object) -> PairedDifference:
        """:func:`paired_differences` of arms (or labels) ``a`` and ``b``."""
        return paired_differences(self, a, b, metric, **kwargs)

    def provenance(self) -> pd.DataFrame:
        """What produced these runs, for the chapter's record: per split (test fold or kind) its digest and sizes,
        the runs on it, and the digests of the datasets and checkpoints read; trace a split's clips with
        ``ResultsStore.split(digest)``."""
        rows: dict[str, dict] = {}
        for result in self:
            split = result.get("split") or {}
            row = rows.setdefault(split.get("digest", "?"), {
                "split digest": split.get("digest", "?"),
                "split": f"fold {result['setting']['fold']}" if "fold" in result["setting"]
                else result["setting"].get("split", "-"),
                "clips": ", ".join(f"{k} {v}" for k, v in (split.get("sizes") or {}).items()),
                "runs": 0, "inputs": set(), "commits": set()})
            row["runs"] += 1
            row["inputs"] |= {f"{k.removeprefix('inputs.')}={v}" for k, v in flatten(result["identity"]).items()
                              if k.startswith("inputs.") and k.endswith(("digest", "encoder"))}
            row["commits"].add(result.get("environment", {}).get("commit", "?"))
        return pd.DataFrame([{**r, "inputs": "; ".join(sorted(r["inputs"])), "commits": ", ".join(sorted(r["commits"]))}
                             for r in rows.values()])

    def curves(self) -> pd.DataFrame:
        """Per-epoch values of every run, one row per run and epoch (``arm, label, fold, epoch`` and every logged
        value: ``loss``, ``val_acc`` ...), for ``seaborn.lineplot`` (mean ± spread over folds)."""
        rows = [{"arm": r["arm"], "label": r.get("label", r["arm"]), "fold": r["setting"].get("fold"), **c}
                for r in self for c in r.get("curves", [])]
        return pd.DataFrame(rows) if rows else pd.DataFrame(columns=["arm", "label", "fold", "epoch"])
