"""A registered OwnLens version as an MLflow pyfunc model, defined from code (MLflow's models-from-code): MLflow
loads this file and the version's own artifact (native booster files and JSON, its sha256 checked), so nothing is
pickled. Logged by ``registry/mlflow_mirror.py``; loaded with ``mlflow.pyfunc.load_model(uri)`` wherever OwnLens
is installed.

Input: a DataFrame with the version's feature columns (``feature_names`` in the model's MLflow metadata); output:
the version's values, as OwnLens computes them (the calibrated probability of a classifier, a regressor's value).
"""

import json

import mlflow
from mlflow.pyfunc import PythonModel


class OwnLensVersion(PythonModel):
    def load_context(self, context):
        from ownlens.ml.models.trained import TrainedModel

        with open(context.artifacts["checksum"]) as f:
            expected = json.load(f)["sha256"]
        self.model = TrainedModel.load(context.artifacts["ownlens_model"], expected)

    def predict(self, context, model_input, params=None):
        return self.model.predict_values(model_input)


mlflow.models.set_model(OwnLensVersion())
