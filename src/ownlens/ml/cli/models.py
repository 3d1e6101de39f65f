"""Commands for models, the same for every model: train, predict, evaluate, and the ``models`` registry sub-app."""

from __future__ import annotations

import json
from typing import Optional

import typer

from ownlens.ml.cli.common import (
    MODEL_NAMES,
    Dsn,
    app,
    brief,
    connect,
    console,
    dsn_option,
    emit,
    json_option,
    metrics_table,
    model,
    out,
    parse_date,
    progress,
    rounded,
)
from ownlens.ml.errors import InvalidInput, NotFound

models_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="List, inspect, promote and roll back registered model versions.")
app.add_typer(models_app, name="models")

TRAINABLE = f"{MODEL_NAMES}, all, or baselines"


def _options(**given) -> dict:
    """The command line's training options that were given (the model refuses any it does not take)."""
    return {k: v for k, v in given.items() if v not in (None, 0)}


@app.command(epilog="Examples: ownlens-ml train churn --promote\n\nownlens-ml train conversion --test-date 2026-03-02 --json\n\n"
                    "ownlens-ml train segmentation --clusters 5\n\nownlens-ml train baselines --model churn")
def train(
    name: str = typer.Argument(..., metavar="MODEL", help=f"What to train: {TRAINABLE}."),
    feature_date: Optional[str] = typer.Option(None, "--date", help="Train as of this date: a random split of its rows, or, for a date too recent for its labels, the latest labelled dates known by then."),
    test_date: Optional[str] = typer.Option(None, "--test-date", help="Test on this date, train on dates before it whose outcomes were known by then (default: the latest date that can be judged)."),
    brand: Optional[str] = typer.Option(None, "--brand", help="Only this brand (id, code or name)."),
    limit: Optional[int] = typer.Option(None, help="At most this many rows (users for segmentation and recommendation)."),
    test_size: Optional[float] = typer.Option(None, help="Test share for a random split (default 0.25)."),
    algorithm: Optional[str] = typer.Option(None, help="Another algorithm than the model's (xgboost, lightgbm, logistic, random_forest, mlp, linear)."),
    tune: int = typer.Option(0, help="Optuna trials of hyper-parameter search (needs the tune extra); 0 = off."),
    cv: int = typer.Option(0, help="Also report k-fold cross-validation on the training rows; 0 = off."),
    clusters: Optional[int] = typer.Option(None, help="segmentation: the number of segments (default: picked by silhouette)."),
    baseline_model: Optional[str] = typer.Option(None, "--model", help="With `baselines`: only this model."),
    promote: bool = typer.Option(False, help="Put the new version in production if it scores at least as well as production on the same test rows."),
    report: bool = typer.Option(True, help="Write the HTML evaluation report."),
    as_json: bool = json_option("the metrics (oracle included)"),
    dsn: Dsn = dsn_option(),
):
    """Train a model, evaluate it on rows it was not trained on next to the oracle and the seed targets, register it."""
    from ownlens.ml.models import names
    from ownlens.ml.pipelines.training import train_model

    if name == "baselines":
        return _baselines(baseline_model, feature_date, test_date, brand, limit, test_size, as_json, dsn)
    chosen = names() if name == "all" else [model(name).name]
    client = connect(dsn)
    common = dict(feature_date=parse_date(feature_date, "--date"), test_date=parse_date(test_date, "--test-date"),
                  brand_id=brand, limit=limit, test_size=test_size)
    results = {}
    for each in chosen:
        definition = model(each)
        options = _options(algorithm=algorithm, tune_trials=tune, cv_folds=cv, n_clusters=clusters)
        with console.status(f"training {each}"):
            result, summary = train_model(definition, client, promote=promote, report=report, **common, **options)
        results[each] = summary
        if not as_json:
            split = result.split
            out.print(metrics_table(f"{each} {result.model.version} · {split.get('test_rows', 0):,} test rows · {split['kind']}"
                                    + (f" (test {split['test_date']})" if split.get("test_date") else ""),
                                    result.metrics, result.oracle_metrics, definition.targets))
            for key, value in result.metrics.items():
                if isinstance(value, dict):
                    out.print(f"{key}: {brief(value)}")
            if "promotion" in summary:
                duel = summary["promotion"]
                against = "no production version" if duel["production"] is None else \
                    f"production {duel['production_version']} {duel['production']:.4f} on the same rows"
                out.print(f"{'promoted to production' if duel['promoted'] else 'kept as a candidate'}: {duel['metric']} "
                          f"{duel['new']:.4f} vs {against}")
            if "report" in summary:
                out.print(f"report: {summary['report']}")
    if as_json:
        out.print_json(json.dumps(rounded(results if len(results) > 1 else results[chosen[0]]), default=str))


def _baselines(only, feature_date, test_date, brand, limit, test_size, as_json: bool, dsn) -> None:
    """`train baselines`: each model that takes another algorithm, next to the baselines on the same rows."""
    from rich.table import Table

    from ownlens.ml.models import every
    from ownlens.ml.models.training import compare_baselines

    comparable = [m for m in every() if "algorithm" in m.options]
    if only:
        chosen = model(only)
        if chosen not in comparable:
            raise InvalidInput(f"baselines compare algorithms of {', '.join(m.name for m in comparable)}; {only} has no algorithm to swap")
        comparable = [chosen]
    client = connect(dsn)
    split = dict(feature_date=parse_date(feature_date, "--date"), test_date=parse_date(test_date, "--test-date"), brand_id=brand,
                 limit=limit, **({"test_size": test_size} if test_size else {}))
    results = {}
    for definition in comparable:
        with console.status(f"training {definition.name} and its baselines"):
            results[definition.name] = compare_baselines(definition, client, **split)
    if as_json:
        out.print_json(json.dumps(rounded(results), default=str))
        return
    for name, result in results.items():
        primary = model(name).primary_metric
        table = Table(title=f"{name}: {primary} on {result['split']['test_rows']:,} test rows ({result['split']['kind']})")
        table.add_column("algorithm")
        table.add_column(primary, justify="right")
        table.add_column("fit s", justify="right")
        for algo, metrics in result["results"].items():
            table.add_row(algo, f"{metrics[primary]:.4f}", f"{metrics['fit_s']:.1f}")
        if result["oracle"]:
            table.add_row("oracle", f"{result['oracle'][primary]:.4f}", "")
        out.print(table)


@app.command(epilog="Examples: ownlens-ml predict churn --date 2026-03-09\n\n"
                    "ownlens-ml predict churn --user 3f2b8c1e-0000-4000-8000-000000000000\n\n"
                    "ownlens-ml predict click --user 3f2b8c1e-0000-4000-8000-000000000000 --article 7a1c9e2d-0000-4000-8000-000000000000\n\n"
                    "ownlens-ml predict recommendation --user 3f2b8c1e-0000-4000-8000-000000000000 --option k=20 --json")
def predict(
    name: str = typer.Argument(..., metavar="MODEL", help=f"Model name: {MODEL_NAMES}."),
    feature_date: Optional[str] = typer.Option(None, "--date", help="Feature date to score (default: the latest built)."),
    brand: Optional[str] = typer.Option(None, "--brand", help="Only this brand (id, code or name)."),
    version: str = typer.Option("production", help="Version or stage to use (falls back to the latest when nothing is in production)."),
    user: Optional[list[str]] = typer.Option(None, "--user", help="Predict just for these users (repeatable) and print the result; exit 3 when any has no features on the date."),
    article: Optional[list[str]] = typer.Option(None, "--article", help="With --user, for models of user x article pairs (click): the articles (repeatable)."),
    option: Optional[list[str]] = typer.Option(None, "--option", help="A lookup option of the model as name=value (repeatable), e.g. k=20 for recommendation."),
    as_json: bool = json_option(),
    dsn: Dsn = dsn_option(),
):
    """Score every user (or pair) of a date with a registered version and store the predictions (ml_model_predictions
    and the model's table), or print the predictions for given ids. While an A/B test of the model runs, the batch
    scores each user with the version of their arm (unless --version is given)."""
    from ownlens.ml.pipelines.inference import lookup
    from ownlens.ml.pipelines.inference import predict as predict_all

    definition = model(name)
    client = connect(dsn)
    d = parse_date(feature_date, "--date")
    ids = {"user_id": list(user or []), "article_id": list(article or [])}
    if any(ids.values()):
        keys = _keys(definition, ids)
        frame = lookup(definition, client, keys, version=version, feature_date=d, **_lookup_options(definition, option))
        if frame.empty and frame.attrs.get("message"):  # none is known: the API's 404
            raise NotFound(frame.attrs["message"] + ("" if definition.entity[0] != "user_id" else
                                                     " (unknown ids, or not active in the 30 days before it)"))
        if as_json:
            out.print_json(json.dumps({"predictions": json.loads(frame.to_json(orient="records", date_format="iso")),
                                       "unknown_users": frame.attrs.get("unknown_users", []),
                                       "message": frame.attrs.get("message")}, default=str))
        else:
            out.print(frame.to_string(index=False) if not frame.empty else "no predictions")
            if frame.attrs.get("message"):
                console.print(frame.attrs["message"])
        if frame.attrs.get("unknown"):
            raise typer.Exit(NotFound.exit_code)  # the known ones are printed; some were not found
        return
    with progress() as bar:
        task = bar.add_task(f"scoring {name}", total=None)
        result = predict_all(definition, client, version=version, feature_date=d, brand_id=brand,
                             progress=lambda n: bar.update(task, completed=n))
    if "ab_test" in result:
        console.print(f"A/B test {result['ab_test']} is running: each user was scored by their arm's version")
    emit(result, as_json, f"{name} predictions ({result.get('table')})")


@app.command(epilog="Examples: ownlens-ml trending --brand DCH\n\n"
                    "ownlens-ml trending --at 2026-03-09 --hours 48 --json")
def trending(
    brand: Optional[str] = typer.Option(None, "--brand", help="This brand (id, code or name); default: every brand."),
    hours: int = typer.Option(24, "--hours", min=1, max=168, help="The window: the hours before --at (or now) looked at."),
    at: Optional[str] = typer.Option(None, "--at", help="A date: the window ends at its start (default: now, or the end of the latest hour with views if earlier)."),
    k: int = typer.Option(10, "-k", min=1, max=20, help="Items per level."),
    version: str = typer.Option("production", help="Version or stage of the trending model."),
    as_json: bool = json_option(),
    dsn: Dsn = dsn_option(),
):
    """What is trending per brand: the categories, topics and articles of the latest hour with article views in the
    window, ranked against their own seasonal baseline, and every burst of the window (as GET /trending)."""
    from ownlens.ml.data.loaders import brand_ids
    from ownlens.ml.pipelines.inference import lookup

    client = connect(dsn)
    d = parse_date(at, "--at")
    brands = brand_ids(client, brand or None)
    frame = lookup(model("trending"), client, brands, version=version, feature_date=d, hours=hours, k=k)
    if frame.empty:
        raise NotFound(f"no article views in the {hours} hours before {('the start of ' + str(d)) if d else 'now (or the latest hour with views)'}: "
                       "pass --at DATE within the editorial events, or a longer --hours")
    records = json.loads(frame.to_json(orient="records"))
    if as_json:
        out.print_json(json.dumps({"trending": records}, default=str))
        return
    from rich.table import Table

    for record in records:
        for level in ("topics", "categories", "articles", "bursts"):
            table = Table(title=f"brand {record['brand_id']}: {level}" + (f" in the {hours} h before {record['as_of']}"
                          if level == "bursts" else f" at {record['hour']}"))
            for column in ("rank", "name", "views", "expected", "score", "reason"):
                table.add_column(column)
            for item in record[level]:
                table.add_row(str(item["rank"]) if level != "bursts" else item["hour"][5:16], item["name"][:40], str(item["views"]),
                              f"{item['expected_views']:.1f}", f"{item['score']:.1f}", item["reason"])
            out.print(table)


@app.command(epilog="Examples: ownlens-ml attribution\n\n"
                    "ownlens-ml attribution --date 2026-03-01 --days 60 --budget 900 --json\n\n"
                    "ownlens-ml attribution --campaigns")
def attribution(
    at: Optional[str] = typer.Option(None, "--date", help="The period ends the day before this date (default: the day after the last touchpoint)."),
    days: int = typer.Option(30, "--days", min=7, max=180, help="The period: the days before --date."),
    daily_budget: Optional[float] = typer.Option(None, "--budget", min=0, help="Daily budget in EUR to split (default: the period's mean daily spend)."),
    version: str = typer.Option("production", help="Version or stage of the attribution model."),
    campaigns: bool = typer.Option(False, "--campaigns", help="One row per campaign running in the period instead of per channel."),
    as_json: bool = json_option(),
    dsn: Dsn = dsn_option(),
):
    """Which marketing channels earned the period's subscriptions: the conversions each channel's touches caused
    (incremental), next to last touch, first touch, linear, Markov and Shapley credit, the cost per incremental
    subscription, and the split of the daily budget that earns most (as GET /predict/attribution/{channel_code});
    with --campaigns, each campaign's part of them."""
    from ownlens.ml.models.marketing.journeys import CHANNELS
    from ownlens.ml.pipelines.inference import lookup

    client = connect(dsn)
    d = parse_date(at, "--date")
    if campaigns:
        _print_campaigns(client, d, days, daily_budget, version, as_json)
        return
    channels = ["organic", *[r[0] for r in client.query(CHANNELS).result_rows]]
    options = {"days": days} | ({"budget_eur": daily_budget} if daily_budget is not None else {})
    frame = lookup(model("attribution"), client, channels, version=version, feature_date=d, **options)
    records = json.loads(frame.to_json(orient="records"))
    if as_json:
        out.print_json(json.dumps({"attribution": records}, default=str))
        return
    from rich.table import Table

    first = records[0] if records else {}
    table = Table(title=f"subscriptions {first.get('period_start')} .. {first.get('period_end')} (exclusive) by channel")
    for column in ("channel", "spend EUR", "incremental", "last touch", "markov", "shapley", "EUR per sub", "recommended EUR/day", "expected/day"):
        table.add_column(column)
    for r in records:
        rules = r["conversions_by_rule"]
        cost = r["cost_per_conversion_eur"]
        table.add_row(r["channel_code"], f"{r['spend_eur']:,.0f}", f"{r['conversions']:.1f}", f"{rules['last_touch']:.1f}",
                      f"{rules['markov']:.1f}", f"{rules['shapley']:.1f}", "" if cost is None else f"{cost:,.2f}",
                      "" if r["channel_code"] == "organic" else f"{r['recommended_spend_eur']:,.2f}",
                      "" if r["channel_code"] == "organic" else f"{r['expected_conversions']:.2f}")
    out.print(table)


def _print_campaigns(client, d, days: int, daily_budget, version: str, as_json: bool) -> None:
    from ownlens.ml.models.marketing.campaigns import campaign_table
    from ownlens.ml.models.trained import load

    frame = campaign_table(client, load(client, "attribution", version), d, days, daily_budget)
    records = json.loads(frame.to_json(orient="records"))
    if as_json:
        out.print_json(json.dumps({"period": [str(frame.attrs["start"]), str(frame.attrs["end"])], "campaigns": records}, default=str))
        return
    from rich.table import Table

    table = Table(title=f"subscriptions {frame.attrs['start']} .. {frame.attrs['end']} (exclusive) by campaign")
    for column in ("campaign", "channel", "spend EUR", "touches", "incremental", "EUR per sub", "live", "recommended EUR/day", "expected/day"):
        table.add_column(column)
    for r in records:
        cost = r["cost_per_conversion_eur"]
        table.add_row(r["campaign_name"], r["channel_code"], f"{r['spend_eur']:,.0f}", f"{r['touches']:,}", f"{r['conversions']:.1f}",
                      "" if cost is None else f"{cost:,.2f}", "yes" if r["live_at_end"] else "", f"{r['recommended_spend_eur']:,.2f}",
                      f"{r['expected_conversions']:.2f}")
    out.print(table)


def _keys(definition, ids: dict[str, list[str]]) -> list:
    """The lookup keys of the ids given on the command line, in the model's entity order."""
    import itertools

    flags = {"user_id": "--user", "article_id": "--article"}
    for needed in definition.entity:
        if not ids.get(needed):
            what = " x ".join(e.removesuffix("_id") for e in definition.entity)
            raise InvalidInput(f"{definition.name} scores {what}" + (" pairs" if len(definition.entity) > 1 else "s")
                               + f": add {flags.get(needed, needed)} ID")
    extra = [flags[k] for k, v in ids.items() if v and k not in definition.entity]
    if extra:
        raise InvalidInput(f"{definition.name} does not take {', '.join(extra)}")
    from ownlens.ml.data.loaders import as_uuid

    columns = [[as_uuid(i) for i in ids[e]] for e in definition.entity]  # a malformed id: exit 2 before any lookup
    return columns[0] if len(columns) == 1 else [tuple(k) for k in itertools.product(*columns)]


def _lookup_options(definition, given: list[str] | None) -> dict:
    """``name=value`` options checked against the model's lookup options."""
    if not given:
        return {}
    schema = definition.lookup_options
    if schema is None:
        raise InvalidInput(f"{definition.name} takes no --option")
    pairs = {}
    for item in given:
        key, sep, value = item.partition("=")
        if not sep or key not in schema.model_fields:
            raise InvalidInput(f"--option {item!r}: use name=value with one of {', '.join(schema.model_fields)}")
        pairs[key] = value
    from pydantic import ValidationError

    try:
        return schema(**pairs).model_dump(exclude_unset=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInput(f"--option {first['loc'][0]}: {first['msg']}") from None


@app.command(epilog="Examples: ownlens-ml evaluate churn --version production --test-date 2026-03-02 --json\n\n"
                    "ownlens-ml evaluate recommendation --version 1.2.0")
def evaluate(
    name: str = typer.Argument(..., metavar="MODEL", help=f"Model name: {MODEL_NAMES}."),
    version: str = typer.Option("production", help="Version or stage to evaluate."),
    test_date: Optional[str] = typer.Option(None, "--test-date", help="Date to evaluate on (default: the latest that can be judged)."),
    brand: Optional[str] = typer.Option(None, "--brand", help="Only this brand."),
    as_json: bool = json_option("the metrics (oracle included)"),
    dsn: Dsn = dsn_option(),
):
    """Evaluate a registered version on rows of a date: metrics, oracle, seed targets and an HTML report."""
    from ownlens.ml.models.evaluation import evaluate_registered

    definition = model(name)
    result = evaluate_registered(definition, connect(dsn), version, parse_date(test_date, "--test-date"), brand_id=brand)
    if as_json:
        out.print_json(json.dumps(rounded(result), default=str))
        return
    out.print(metrics_table(f"{name} {result['version']} on {result['split']['test_date']}", result["metrics"],
                            result["oracle"], definition.targets))
    if result["split"].get("warning"):
        console.print(result["split"]["warning"])
    out.print(f"report: {result['report']}")


@models_app.command("list", epilog="Example: ownlens-ml models list churn --json")
def models_list(
    name: Optional[str] = typer.Argument(None, help="Only this model."),
    as_json: bool = json_option(),
    dsn: Dsn = dsn_option(),
):
    """Registered versions, newest first, with stage and primary metric next to the oracle's."""
    from rich.table import Table

    from ownlens.ml.models import MODELS
    from ownlens.ml.registry import store

    if name:
        model(name)  # an unknown name gets the clear error
    rows = store.versions(connect(dsn), name)
    records = []
    for _, r in rows.iterrows():
        metrics = json.loads(r["metrics"] or "{}")
        key = model(r["model_name"]).primary_metric if r["model_name"] in MODELS else "roc_auc"
        records.append({"model": r["model_name"], "version": r["model_version"], "stage": r["stage"], "algorithm": r["algorithm"],
                        "metric": key, "value": metrics.get(key), "oracle": (metrics.get("oracle") or {}).get(key),
                        "created_at": str(r["created_at"])})
    if as_json:
        out.print_json(json.dumps(rounded(records)))
        return
    table = Table(title="registered models")
    for column in ("model", "version", "stage", "algorithm", "metric", "value", "oracle", "created_at"):
        table.add_column(column)
    for r in records:
        table.add_row(*["" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v)) for v in r.values()])
    out.print(table if records else "no models registered yet: ownlens-ml train churn")


@models_app.command("show", epilog="Example: ownlens-ml models show churn 1.0.0")
def models_show(
    name: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument("latest", help="Version, stage (production...) or latest."),
    dsn: Dsn = dsn_option(),
):
    """Everything the registry knows about one version, as JSON."""
    from ownlens.ml.registry import store

    model(name)
    row = store.get(connect(dsn), name, version)
    row["metrics"] = json.loads(row["metrics"] or "{}")
    row["input_schema"] = json.loads(row["input_schema"] or "{}")
    row["feature_names"] = list(row["feature_names"])
    out.print_json(json.dumps(rounded(row), default=str))


@models_app.command("promote", epilog="Example: ownlens-ml models promote churn 1.1.0")
def models_promote(
    name: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument(..., help="Version to promote."),
    stage: str = typer.Option("production", help="Target stage: candidate, staging, production or archived."),
    dsn: Dsn = dsn_option(),
):
    """Move a version to a stage; the previous production version is archived."""
    from ownlens.ml.registry import store

    model(name)
    row = store.promote(connect(dsn), name, version, stage)
    out.print(f"{name} {row['model_version']} is now {row['stage']}")


@models_app.command("rollback", epilog="Example: ownlens-ml models rollback churn")
def models_rollback(name: str = typer.Argument(..., help="Model name."), dsn: Dsn = dsn_option()):
    """Put the previous production version back in production."""
    from ownlens.ml.registry import store

    model(name)
    row = store.rollback(connect(dsn), name)
    out.print(f"{name} {row['model_version']} is production again")
