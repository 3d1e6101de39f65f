"""Engagement: how many sessions will a user have in the 30 days after the feature date? (XGBoost regression)"""

from functools import partial

from ownlens.ml.features.sets import USER_FEATURES
from ownlens.ml.models.estimators import OwnLensRegressor
from ownlens.ml.models.seed_api import feature_engineer, seed_classes
from ownlens.ml.models.spec import Bands
from ownlens.ml.models.supervised import ModelSpec

ENGAGEMENT = ModelSpec(
    name="engagement",
    task="regression",
    description="Expected sessions in the 30 days after the feature date",
    features=USER_FEATURES,
    label="l.sessions_next_30d",
    oracle="t.expected_sessions_30d",
    estimator=partial(OwnLensRegressor, objective="poisson"),
    algorithm="xgboost",
    predictions_table="customer_engagement_predictions",
    output="predicted_sessions_30d",
    level=Bands((2, 8), ("low", "medium", "high")),
    level_column="engagement_level",
    targets={"r2": 0.70},
    primary_metric="r2",
)

EngagementModel, EngagementTrainingPipeline, EngagementPredictor, EngagementEvaluator = seed_classes(ENGAGEMENT)
EngagementFeatureEngineer = feature_engineer(ENGAGEMENT)
