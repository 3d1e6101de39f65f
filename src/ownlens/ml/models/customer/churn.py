"""Churn: will a user have no session in the 30 days after the feature date? (XGBoost, seed 003)"""

from ownlens.ml.features.sets import USER_FEATURES
from ownlens.ml.models.estimators import OwnLensClassifier
from ownlens.ml.models.seed_api import feature_engineer, seed_classes
from ownlens.ml.models.spec import Bands
from ownlens.ml.models.supervised import ModelSpec

CHURN = ModelSpec(
    name="churn",
    task="binary",
    description="P(no session in the 30 days after the feature date)",
    features=USER_FEATURES,
    label="l.churned_30d",
    oracle="t.churn_probability",
    estimator=OwnLensClassifier,
    algorithm="xgboost",
    predictions_table="customer_churn_predictions",
    output="churn_probability",
    level=Bands((0.3, 0.6), ("low", "medium", "high")),
    level_column="churn_risk_level",
    decision_column="is_churned",
    targets={"roc_auc": 0.85, "precision": 0.80, "recall": 0.75},
)

ChurnModel, ChurnTrainingPipeline, ChurnPredictor, ChurnEvaluator = seed_classes(CHURN)
ChurnFeatureEngineer = feature_engineer(CHURN)
