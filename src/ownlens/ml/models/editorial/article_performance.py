"""Article performance (seeds 000/001): an article's views and completion rate at 7 days, predicted at publication
and after 1, 3 and 6 hours of traction (see ``articles``)."""

from ownlens.ml.models.editorial import articles
from ownlens.ml.models.editorial.estimator import ArticlePerformanceRegressor
from ownlens.ml.models.seed_api import seed_classes
from ownlens.ml.models.spec import TaskModel

ARTICLE_PERFORMANCE = TaskModel(
    name="article_performance",
    task="regression",
    description="An article's views and completion rate at 7 days, from its metadata and first hours",
    algorithm="xgboost-staged",
    primary_metric="spearman_1h",
    output_table="editorial_article_predictions",
    record=articles.ArticlePerformance,
    prototype=ArticlePerformanceRegressor,
    input_names=tuple(articles.FEATURES),
    train=articles.train,
    test_set=articles.test_set,
    evaluate=articles.evaluate,
    predict_batch=articles.predict_batch,
    server=articles.server,
    entity=("article_id",),
    entity_type="article",
    label_days=7,
    prediction_fields=("predicted_views_7d", "hours_observed"),
    plots=articles.plots,
    stored_dates=articles.stored_dates,
    realised=articles.realised,
    prediction_drift="numeric",
)

(ArticlePerformanceModel, ArticlePerformanceTrainingPipeline, ArticlePerformancePredictor,
 ArticlePerformanceEvaluator) = seed_classes(ARTICLE_PERFORMANCE)
