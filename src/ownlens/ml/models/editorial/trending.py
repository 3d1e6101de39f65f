"""Trending (seeds 000/001): per brand and hour, the categories, topics and articles read far above their own
seasonal level, with burst detection (see ``trends``)."""

from ownlens.ml.models.editorial import trends
from ownlens.ml.models.editorial.burst import SeasonalBurstDetector
from ownlens.ml.models.seed_api import seed_classes
from ownlens.ml.models.spec import TaskModel

TRENDING = TaskModel(
    name="trending",
    task="detection",
    description="Per brand and hour, the categories, topics and articles trending against their seasonal baseline, with bursts",
    algorithm="seasonal-poisson-z",
    primary_metric="burst_f1",
    output_table="editorial_trending",
    record=trends.Trending,
    prototype=SeasonalBurstDetector,
    input_names=tuple(trends.FEATURES),
    train=trends.train,
    test_set=trends.test_set,
    evaluate=trends.evaluate,
    predict_batch=trends.predict_batch,
    server=trends.server,
    entity=("brand_id",),
    entity_type="brand",
    lookup_options=trends.TrendingOptions,
    options={"z_threshold": "the z-score above which an hour is a burst (default 5)"},
    plots=trends.plots,
    stored_dates=trends.stored_dates,
    realised=trends.realised,
)

TrendingModel, TrendingTrainingPipeline, TrendingPredictor, TrendingEvaluator = seed_classes(TRENDING)
