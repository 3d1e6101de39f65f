"""User segmentation: K-Means on PCA of behavioural features (seed 003), stored in customer_user_segments.

The inputs come from customer_user_features of a date (point in time). Training fits the scaler, PCA and K-Means
on one feature date (the number of segments picked by silhouette unless given) and evaluates on a later date;
segments are named after the trait they stand out on, the segment types seed 003 lists. The pieces:
``estimator`` (the scikit-learn estimator), ``sql``, ``training`` (fit and evaluate), ``batch`` (assignments of a
date) and ``serving`` (a user's segment now, stored shares).
"""

from ownlens.ml.models.customer.segmentation import batch, serving, sql, training
from ownlens.ml.models.customer.segmentation.estimator import KMeansSegmenter
from ownlens.ml.models.seed_api import seed_classes
from ownlens.ml.models.spec import TaskModel, Thresholds

SEGMENTATION = TaskModel(
    name="segmentation",
    task="clustering",
    description="Behavioural user segments (K-Means on PCA of customer_user_features)",
    algorithm="kmeans-pca",
    primary_metric="silhouette",
    output_table="customer_user_segment_assignments",
    record=serving.Segment,
    prototype=KMeansSegmenter,
    input_names=tuple(sql.INPUTS),
    train=training.train,
    test_set=training.test_set,
    evaluate=training.evaluate,
    predict_batch=batch.assign,
    server=serving.server,
    label_days=1,  # judged on a later date than it was fitted on
    options={"n_clusters": "the number of segments (default: picked by silhouette, 3-8)"},
    prediction_fields=("confidence", "segment_name"),
    prediction_drift="categorical",  # monitoring compares the segments' shares with the reference date's
    # segment shares move like an input (users drift between neighbouring segments), not like a score
    prediction_thresholds=Thresholds(psi_warn=0.1, psi_alert=0.25),
    plots=training.plots,
    realised=serving.realised,
    stored_dates=serving.stored_dates,
)

SegmentationModel, SegmentationTrainingPipeline, SegmentationPredictor, SegmentationEvaluator = seed_classes(SEGMENTATION)
