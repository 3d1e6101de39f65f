"""Attribution (seed 004): the subscriptions each marketing channel caused, next to the credit rules, and the budget
split its response curves recommend (see ``campaigns``)."""

from ownlens.ml.models.marketing import campaigns
from ownlens.ml.models.marketing.touch_model import AdditiveTouchModel, ChannelInputs
from ownlens.ml.models.seed_api import seed_classes
from ownlens.ml.models.spec import TaskModel

ATTRIBUTION = TaskModel(
    name="attribution",
    task="attribution",
    description="Per marketing channel, the subscriptions its touches caused (incremental) and the budget split that earns most",
    algorithm="additive-touch-poisson",
    primary_metric="attribution_accuracy",
    output_table="marketing_channel_attribution",
    record=campaigns.ChannelAttribution,
    prototype=AdditiveTouchModel,
    input_names=ChannelInputs(),
    train=campaigns.train,
    test_set=campaigns.test_set,
    evaluate=campaigns.evaluate,
    predict_batch=campaigns.predict_batch,
    server=campaigns.server,
    entity=("channel_code",),
    entity_type="channel",
    targets={"attribution_accuracy": 0.80},
    lookup_options=campaigns.AttributionOptions,
    plots=campaigns.plots,
    stored_dates=campaigns.stored_dates,
    realised=campaigns.realised,
    example_keys=campaigns.example_keys,
)

AttributionModel, AttributionTrainingPipeline, AttributionPredictor, AttributionEvaluator = seed_classes(ATTRIBUTION)
