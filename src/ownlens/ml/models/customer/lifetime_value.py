"""Customer lifetime value (seed 004): each customer's expected revenue over a horizon, from purchases (BG/NBD +
Gamma-Gamma) and their subscription (shifted-beta-geometric retention), validated on a holdout (see ``value``)."""

from ownlens.ml.models.customer import value
from ownlens.ml.models.customer.lifetime import BuyTillYouDie
from ownlens.ml.models.seed_api import seed_classes
from ownlens.ml.models.spec import TaskModel

CLV = TaskModel(
    name="clv",
    task="value",
    description="Expected revenue per customer over a year: purchases (BG/NBD + Gamma-Gamma) and subscription (sBG)",
    algorithm="bgnbd-gamma-gamma+sbg",
    primary_metric="revenue_cohort_mape",
    output_table="customer_lifetime_value",
    record=value.CustomerValue,
    prototype=BuyTillYouDie,
    input_names=tuple(value.FEATURES),
    train=value.train,
    test_set=value.test_set,
    evaluate=value.evaluate,
    predict_batch=value.predict_batch,
    server=value.server,
    targets={"revenue_cohort_mape": 0.15, "revenue_cohort_r2": 0.80},
    lookup_options=value.ValueOptions,
    plots=value.plots,
    stored_dates=value.stored_dates,
    realised=value.realised,
    example_keys=value.example_keys,
)

ClvModel, ClvTrainingPipeline, ClvPredictor, ClvEvaluator = seed_classes(CLV)
