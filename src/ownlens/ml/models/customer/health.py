"""Subscriber health (seed 004): will a subscriber cancel or downgrade in the 30 days after the feature date? The
probability, from their plan, tenure, payments and reading; ``health_band`` names it for customer success."""

from dataclasses import replace

from ownlens.ml.features.sets import SUBSCRIBER_FEATURES
from ownlens.ml.models.estimators import OwnLensClassifier
from ownlens.ml.models.oracle import CANCEL_OR_DOWNGRADE_ORACLE
from ownlens.ml.models.seed_api import seed_classes
from ownlens.ml.models.spec import Bands, user_rows
from ownlens.ml.models.supervised import ModelSpec


def subscribers(client, d) -> list[str]:
    """Subscribers with features on ``d``."""
    rows = client.query("SELECT toString(user_id) FROM customer_subscription_features WHERE feature_date = {d:Date} "
                        "ORDER BY user_id LIMIT 10", parameters={"d": d}).result_rows
    return [r[0] for r in rows]


HEALTH = ModelSpec(
    name="health",
    task="binary",
    description="P(a subscriber cancels or downgrades in the 30 days after the feature date)",
    features=SUBSCRIBER_FEATURES,
    label="l.cancelled_or_downgraded_30d",
    label_table="customer_subscription_labels",
    source=replace(user_rows(SUBSCRIBER_FEATURES, "l.cancelled_or_downgraded_30d", "1", "customer_subscription_labels"),
                   oracle=CANCEL_OR_DOWNGRADE_ORACLE),
    # measured on the 20k simulation, test 2026-03-06: logistic 0.642 AUC, a depth-2 XGBoost 0.616, the default
    # XGBoost 0.571 (oracle 0.782): few subscribers, and early dates whose subscribers are mostly long-standing
    estimator=OwnLensClassifier,
    algorithm="logistic",
    predictions_table=None,
    output="cancel_or_downgrade_probability",
    level=Bands((0.1, 0.3), ("healthy", "at_risk", "critical")),
    level_column="health_band",
    decision_column="at_risk",
    example_keys=subscribers,
)

HealthModel, HealthTrainingPipeline, HealthPredictor, HealthEvaluator = seed_classes(HEALTH)
