"""Building-energy regression: from two yearly tables to a chosen, retrained model and its predictions.

Steps: generate two yearly benchmarking tables (synthetic, deterministic, no downloads) whose column names
differ between years, merge them, clean them (duplicates, missing values, impossible rows), build
features, train three candidate regressors (SVR, random forest, gradient boosting) and pick the best by R²
on a held-out split, retrain it, evaluate it and predict. The final evaluation (task ``retrain-best``)
logs ``r2``, ``mse``, ``mae`` and ``rmse`` to a KFP ``Metrics`` artifact, which ``kfp-ci gate`` reads;
the comparison logs each candidate's ``<model>_r2`` to its own ``Metrics`` artifact.

Parameters worth knowing: ``n_rows`` (buildings per year), ``seed``, ``noise`` (standard deviation of
the measurement noise added to the target, in kWh/m²: raise it to make the model worse), ``test_size``.

The components import pandas and scikit-learn inside their bodies and install nothing at run time: run
them where those are installed (``pip install 'kfp-ci[local,demo]'`` for the embedded server and
``kfp.local``), or on a cluster with an image that has them (``IMAGE``).
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

# Any image with Python 3.10+, pandas and scikit-learn.
IMAGE = "quay.io/jupyter/scipy-notebook:python-3.11"


@dsl.component(base_image=IMAGE)
def generate_tables(n_rows: int, seed: int, noise: float, year_a: Output[Dataset], year_b: Output[Dataset]) -> None:
    """Two yearly benchmarking tables of ``n_rows`` buildings each, the way two exports of a city's
    disclosure programme look: the second year renamed some columns, and both have duplicates, gaps and
    a few impossible rows."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_buildings = max(n_rows, 20)
    base = pd.DataFrame({
        "building_id": np.arange(1, n_buildings + 1),
        "floor_area": rng.uniform(300, 6000, n_buildings).round(0),
        "storeys": rng.integers(1, 13, n_buildings),
        "year_built": rng.integers(1950, 2021, n_buildings),
        "glazing_ratio": rng.uniform(0.1, 0.7, n_buildings).round(3),
        "u_value": rng.uniform(0.2, 1.5, n_buildings).round(3),
        "orientation": rng.choice(["N", "E", "S", "W"], n_buildings),
        "occupancy": rng.uniform(1, 10, n_buildings).round(2),
    })

    def one_year(year: int, hdd_mean: float) -> pd.DataFrame:
        table = base.copy()
        table["hdd"] = rng.normal(hdd_mean, 150, n_buildings).round(0)
        age = year - table["year_built"]
        orientation_effect = table["orientation"].map({"N": 9.0, "E": 2.0, "S": -6.0, "W": 0.0})
        signal = (
            35.0
            + 0.028 * table["hdd"] * table["u_value"]
            + 55.0 * table["glazing_ratio"] ** 2
            + 3.2 * table["occupancy"]
            + 0.35 * np.clip(age - 20, 0, None)
            - 6.0 * np.log(table["floor_area"] / 300.0)
            + orientation_effect
        )
        table["energy_kwh_m2"] = (signal + rng.normal(0.0, noise, n_buildings)).round(2)
        table["year"] = year
        # A few gaps and impossible rows, and some buildings reported twice.
        gaps = rng.choice(n_buildings, size=max(1, n_buildings // 25), replace=False)
        table.loc[gaps, "glazing_ratio"] = np.nan
        missing_target = rng.choice(n_buildings, size=max(1, n_buildings // 50), replace=False)
        table.loc[missing_target, "energy_kwh_m2"] = np.nan
        bogus = rng.choice(n_buildings, size=max(1, n_buildings // 100), replace=False)
        table.loc[bogus, "floor_area"] = 0.0
        dupes = table.sample(n=max(1, n_buildings // 30), random_state=seed)
        return pd.concat([table, dupes], ignore_index=True)

    first = one_year(2022, 2750.0)
    second = one_year(2023, 2600.0).rename(columns={
        "floor_area": "GrossFloorArea", "energy_kwh_m2": "SiteEUI", "hdd": "HeatingDegreeDays",
    })
    first.to_csv(year_a.path, index=False)
    second.to_csv(year_b.path, index=False)
    year_a.metadata["year"] = 2022
    year_b.metadata["year"] = 2023


@dsl.component(base_image=IMAGE)
def merge_tables(year_a: Input[Dataset], year_b: Input[Dataset], merged: Output[Dataset]) -> int:
    """Harmonise the second year's column names with the first and stack both years."""
    import pandas as pd

    renames = {"GrossFloorArea": "floor_area", "SiteEUI": "energy_kwh_m2", "HeatingDegreeDays": "hdd"}
    first = pd.read_csv(year_a.path)
    second = pd.read_csv(year_b.path).rename(columns=renames)
    missing = sorted(set(first.columns) ^ set(second.columns))
    if missing:
        raise ValueError(f"the yearly tables still differ in columns: {', '.join(missing)}")
    table = pd.concat([first, second[first.columns]], ignore_index=True)
    table.to_csv(merged.path, index=False)
    return len(table)


@dsl.component(base_image=IMAGE)
def clean_table(merged: Input[Dataset], cleaned: Output[Dataset]) -> int:
    """Drop duplicate reports, rows without a target and impossible areas; impute missing glazing."""
    import pandas as pd

    table = pd.read_csv(merged.path)
    table = table.drop_duplicates(subset=["building_id", "year"])
    table = table.dropna(subset=["energy_kwh_m2"])
    table = table[table["floor_area"] > 0]
    table["glazing_ratio"] = table["glazing_ratio"].fillna(table["glazing_ratio"].median())
    table.to_csv(cleaned.path, index=False)
    cleaned.metadata["rows"] = len(table)
    return len(table)


@dsl.component(base_image=IMAGE)
def build_features(cleaned: Input[Dataset], features: Output[Dataset]) -> None:
    """Numeric features: age, heat-loss proxy, log area, one-hot orientation; target last."""
    import numpy as np
    import pandas as pd

    table = pd.read_csv(cleaned.path)
    out = pd.DataFrame({
        "building_id": table["building_id"],
        "year": table["year"],
        "age": table["year"] - table["year_built"],
        "log_floor_area": np.log(table["floor_area"]),
        "storeys": table["storeys"],
        "glazing_ratio": table["glazing_ratio"],
        "u_value": table["u_value"],
        "hdd": table["hdd"],
        "heat_loss": table["u_value"] * table["hdd"] / 1000.0,
        "occupancy": table["occupancy"],
    })
    for side in ("N", "E", "S", "W"):
        out[f"orientation_{side}"] = (table["orientation"] == side).astype(int)
    out["energy_kwh_m2"] = table["energy_kwh_m2"]
    out.to_csv(features.path, index=False)


@dsl.component(base_image=IMAGE)
def compare_candidates(features: Input[Dataset], test_size: float, seed: int,
                       metrics: Output[Metrics]) -> NamedTuple("Best", [("model_type", str), ("r2", float)]):
    """Fit every candidate (SVR, random forest, gradient boosting) on the training split, score each by R²
    on the held-out split (logged as ``<model>_r2``) and return the best (ties: the first listed)."""
    from collections import namedtuple

    import pandas as pd
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
    from sklearn.metrics import r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    makers = {
        "svr": lambda: make_pipeline(StandardScaler(), SVR(C=200.0, epsilon=1.0)),
        "random_forest": lambda: RandomForestRegressor(n_estimators=60, random_state=seed, n_jobs=1),
        "gradient_boosting": lambda: GradientBoostingRegressor(n_estimators=150, random_state=seed),
    }
    table = pd.read_csv(features.path)
    x = table.drop(columns=["building_id", "year", "energy_kwh_m2"])
    y = table["energy_kwh_m2"]
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_size, random_state=seed)
    scores = {}
    for name, make in makers.items():
        scores[name] = float(r2_score(y_test, make().fit(x_train, y_train).predict(x_test)))
        metrics.log_metric(f"{name}_r2", round(scores[name], 6))
    best = max(scores, key=lambda name: scores[name])
    print("candidate R²:", ", ".join(f"{k}={v:.4f}" for k, v in scores.items()), "-> best:", best)
    return namedtuple("Best", ["model_type", "r2"])(best, scores[best])


@dsl.component(base_image=IMAGE)
def retrain_best(features: Input[Dataset], model_type: str, test_size: float, seed: int,
                 model: Output[Model], metrics: Output[Metrics]) -> float:
    """Retrain the chosen model, evaluate it on the held-out split (r2, mse, mae, rmse), then refit it on
    every row and save it."""
    import math
    import pickle

    import pandas as pd
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    makers = {
        "svr": lambda: make_pipeline(StandardScaler(), SVR(C=200.0, epsilon=1.0)),
        "random_forest": lambda: RandomForestRegressor(n_estimators=60, random_state=seed, n_jobs=1),
        "gradient_boosting": lambda: GradientBoostingRegressor(n_estimators=150, random_state=seed),
    }
    table = pd.read_csv(features.path)
    x = table.drop(columns=["building_id", "year", "energy_kwh_m2"])
    y = table["energy_kwh_m2"]
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_size, random_state=seed)
    fitted = makers[model_type]().fit(x_train, y_train)
    predicted = fitted.predict(x_test)
    r2 = float(r2_score(y_test, predicted))
    mse = float(mean_squared_error(y_test, predicted))
    metrics.log_metric("r2", round(r2, 6))
    metrics.log_metric("mse", round(mse, 6))
    metrics.log_metric("mae", round(float(mean_absolute_error(y_test, predicted)), 6))
    metrics.log_metric("rmse", round(math.sqrt(mse), 6))
    metrics.log_metric("n_test", len(y_test))
    final = makers[model_type]().fit(x, y)
    with open(model.path, "wb") as fh:
        pickle.dump(final, fh)
    model.metadata["model_type"] = model_type
    model.metadata["features"] = list(x.columns)
    return r2


@dsl.component(base_image=IMAGE)
def predict(model: Input[Model], features: Input[Dataset], predictions: Output[Dataset]) -> int:
    """Predict the energy use intensity of every building-year with the retrained model."""
    import pickle

    import pandas as pd

    table = pd.read_csv(features.path)
    with open(model.path, "rb") as fh:
        fitted = pickle.load(fh)  # our own model, from the previous task
    x = table[model.metadata["features"]]
    out = table[["building_id", "year", "energy_kwh_m2"]].copy()
    out["predicted_kwh_m2"] = fitted.predict(x).round(2)
    out.to_csv(predictions.path, index=False)
    return len(out)


@dsl.pipeline(
    name="building-energy",
    description="Merge two yearly building-energy tables, clean, build features, pick the best of SVR, "
    "random forest and gradient boosting by R², retrain it and predict.",
)
def building_energy_pipeline(n_rows: int = 200, seed: int = 42, noise: float = 4.0, test_size: float = 0.25) -> None:
    tables = generate_tables(n_rows=n_rows, seed=seed, noise=noise)
    merged = merge_tables(year_a=tables.outputs["year_a"], year_b=tables.outputs["year_b"])
    cleaned = clean_table(merged=merged.outputs["merged"])
    features = build_features(cleaned=cleaned.outputs["cleaned"]).outputs["features"]
    best = compare_candidates(features=features, test_size=test_size, seed=seed)
    final = retrain_best(features=features, model_type=best.outputs["model_type"], test_size=test_size, seed=seed)
    final.set_display_name("retrain-best")
    predict(model=final.outputs["model"], features=features)
