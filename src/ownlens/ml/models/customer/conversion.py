"""Conversion: will a non-subscriber subscribe in the 30 days after the feature date? (LightGBM, seed 003)"""

from functools import partial

from ownlens.ml.features.sets import USER_FEATURES
from ownlens.ml.models.estimators import OwnLensClassifier
from ownlens.ml.models.seed_api import feature_engineer, seed_classes
from ownlens.ml.models.spec import Bands
from ownlens.ml.models.supervised import ModelSpec

CONVERSION = ModelSpec(
    name="conversion",
    task="binary",
    description="P(subscription in the 30 days after the feature date), non-subscribers only",
    features=USER_FEATURES,
    label="l.converted_30d",
    oracle="t.conversion_probability",
    population="uf.is_subscriber = 0",
    # rare positives: a slower, longer booster is worth +0.008 AUC here (measured on the default simulation)
    estimator=partial(OwnLensClassifier, n_estimators=300, learning_rate=0.05),
    algorithm="lightgbm",
    predictions_table="customer_conversion_predictions",
    output="conversion_probability",
    level=Bands((0.05, 0.2), ("cold", "warm", "hot")),
    level_column="conversion_tier",
    decision_column="will_convert",
    targets={"roc_auc": 0.80},
)

ConversionModel, ConversionTrainingPipeline, ConversionPredictor, ConversionEvaluator = seed_classes(CONVERSION)
ConversionFeatureEngineer = feature_engineer(CONVERSION)
