"""Expansion (seed 004): will a subscriber move up a plan in the 30 days after the feature date? Upgrades happen
at the renewal, so who is near one, reads a lot and is not on the top plan already is whom to offer it to."""

from dataclasses import replace

from ownlens.ml.features.sets import SUBSCRIBER_FEATURES
from ownlens.ml.models.customer.health import subscribers
from ownlens.ml.models.estimators import OwnLensClassifier
from ownlens.ml.models.oracle import UPGRADE_ORACLE
from ownlens.ml.models.seed_api import seed_classes
from ownlens.ml.models.spec import Bands, user_rows
from ownlens.ml.models.supervised import ModelSpec

EXPANSION = ModelSpec(
    name="expansion",
    task="binary",
    description="P(a subscriber upgrades their plan in the 30 days after the feature date)",
    features=SUBSCRIBER_FEATURES,
    label="l.upgraded_30d",
    label_table="customer_subscription_labels",
    source=replace(user_rows(SUBSCRIBER_FEATURES, "l.upgraded_30d", "1", "customer_subscription_labels"),
                   oracle=UPGRADE_ORACLE),
    # about 2 % of subscribers upgrade a month: few positives, where a logistic model is steadier than a booster
    estimator=OwnLensClassifier,
    algorithm="logistic",
    predictions_table="customer_expansion_predictions",
    output="upgrade_probability",
    level=Bands((0.02, 0.05), ("unlikely", "possible", "likely")),
    level_column="expansion_tier",
    decision_column="will_upgrade",
    drivers=3,
    monitored=SUBSCRIBER_FEATURES,
    example_keys=subscribers,
)

ExpansionModel, ExpansionTrainingPipeline, ExpansionPredictor, ExpansionEvaluator = seed_classes(EXPANSION)
