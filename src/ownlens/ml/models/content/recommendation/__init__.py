"""Content recommendation: a hybrid of collaborative filtering and content-based filtering (seed 003).

Five signals score each user x candidate article of a date (``signals``); the estimator learns how to blend them
for precision@10 on one date's next week of reading (``estimator``, ``training``); on the real MS Web data
(benchmarks/msweb_recommender.py) item-kNN co-reading reaches hit rate@10 0.78 and seed 003's NMF 0.35. Batch
recommendations go to customer_recommendations (``batch``); single users are answered from the newest batch or
computed live (``serving``). The queries are in ``sql``.
"""

from ownlens.ml.models.content.recommendation import batch, serving, training
from ownlens.ml.models.content.recommendation.estimator import HybridRecommender
from ownlens.ml.models.content.recommendation.signals import SIGNALS
from ownlens.ml.models.seed_api import seed_classes
from ownlens.ml.models.spec import TaskModel

RECOMMENDATION = TaskModel(
    name="recommendation",
    task="ranking",
    description="Hybrid article recommendations: co-reading (item kNN) + content similarity + popularity + section recency and news",
    algorithm="hybrid",
    primary_metric="precision_at_k",
    output_table="customer_recommendations",
    record=serving.Recommendations,
    prototype=HybridRecommender,
    input_names=SIGNALS,
    train=training.train,
    test_set=training.test_set,
    evaluate=training.evaluate,
    predict_batch=batch.recommend_batch,
    server=serving.server,
    label_days=7,  # the blend is learnt on a date's next week of reading
    lookup_options=serving.RecommendationOptions,
    plots=training.plots,
    realised=serving.realised,
    stored_dates=serving.stored_dates,
    ab_outcomes=serving.ab_outcomes,
)

RecommendationModel, RecommendationTrainingPipeline, RecommendationPredictor, RecommendationEvaluator = seed_classes(RECOMMENDATION)
