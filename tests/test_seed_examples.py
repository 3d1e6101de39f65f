"""Seed 000's three Quick Start examples, run as written, as a new user would: on the default embedded warehouse,
after `ownlens-ml init`, `simulate` and `features build`, with only their placeholders ("your-brand-id",
"path/to/model.pkl", "user-id") filled in."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

# copied verbatim from ../shared/seeds/000_*.txt (checked against it below when the seeds are at hand)
TRAINING = '''from ownlens.ml.pipelines.training import ChurnTrainingPipeline
from datetime import date

# Initialize pipeline
pipeline = ChurnTrainingPipeline()

# Run training
metrics = pipeline.run(
    feature_date=date.today(),
    brand_id="your-brand-id",
    limit=10000,
    test_size=0.2
)

print(f"Model accuracy: {metrics['accuracy']}")
print(f"Model AUC: {metrics['roc_auc']}")'''

PREDICTING = '''from ownlens.ml.models.customer.churn import ChurnPredictor, ChurnModel

# Load trained model
model = ChurnModel()
model.load("path/to/model.pkl")

# Create predictor
predictor = ChurnPredictor(model)

# Predict for a user
predictions = predictor.predict("user-id", return_proba=True)
print(f"Churn probability: {predictions['churn_probability'].iloc[0]}")'''

LOADING = '''from ownlens.ml.data.loaders import UserFeaturesLoader
from datetime import date

# Load pre-computed user features
loader = UserFeaturesLoader()
features = loader.load(
    feature_date=date.today(),
    brand_id="your-brand-id",
    include_references=True  # Get human-readable names
)

print(f"Loaded {len(features)} user features")'''

# run in a fresh process (one process holds an embedded warehouse): a new user's set-up (init, simulate, build
# features: what `ownlens-ml init`, `simulate` and `features build` do), then the examples, placeholders filled as they go
RUNNER = '''
import json, sys
from datetime import date
from ownlens.ml import schema
from ownlens.ml.data.loaders import reload_reference_dictionaries
from ownlens.ml.features.build import build_features
from ownlens.ml.simulation import SimulationConfig, simulate
from ownlens.ml.warehouse import connect
examples, setup = json.loads(sys.argv[1]), json.loads(sys.argv[2])
client = connect()
schema.apply(client)
simulate(client, SimulationConfig(users=setup["users"], days=setup["days"], start=date.fromisoformat(setup["start"]), seed=5))
reload_reference_dictionaries(client)
for d in setup["dates"]:
    build_features(client, date.fromisoformat(d))
brand = client.command("SELECT toString(brand_id) FROM brands ORDER BY brand_code LIMIT 1")
namespace = {}
exec(examples["training"].replace("your-brand-id", brand), namespace)
artifact = client.command("SELECT artifact_uri FROM ml_model_registry FINAL WHERE model_name = 'churn' ORDER BY created_at DESC LIMIT 1")
user = client.command("SELECT toString(user_id) FROM customer_user_features WHERE feature_date = today() AND brand_id = {b:UUID} "
                      "ORDER BY user_id LIMIT 1", parameters={"b": brand})
client.close()
exec(examples["predicting"].replace("path/to/model.pkl", artifact).replace("user-id", user), namespace)
exec(examples["loading"].replace("your-brand-id", brand), namespace)
print(json.dumps({"split": namespace["metrics"]["split"], "version": namespace["metrics"]["model_version"],
                  "features": len(namespace["features"])}))
'''


def test_seed_000_blocks_are_copied_verbatim():
    seeds = sorted((Path(__file__).resolve().parents[2] / "shared" / "seeds").glob("000_*.txt"))
    if not seeds:  # a clone without the seeds beside it (CI): the copies above are the record
        return
    blocks = re.findall(r"```python\n(.*?)\n```", seeds[0].read_text(), re.S)
    assert blocks == [TRAINING, PREDICTING, LOADING]


def test_seed_000_quick_start_runs_as_written(tmp_path):
    env = {**os.environ, "OWNLENS_HOME": str(tmp_path)}  # the default embedded warehouse, in a new home
    env.pop("OWNLENS_DSN", None)
    yesterday = date.today() - timedelta(days=1)
    days = 90  # training dates then have a month of history (at 15 days a one-brand model can invert: see BENCHMARKS.md)
    start = yesterday - timedelta(days=days - 1)  # the data ends yesterday: "today" is the date a user would train as of
    test = yesterday - timedelta(days=29)  # the latest date with 30 days of labels, and a training date 30 days before it
    setup = {"users": 2000, "days": days, "start": str(start), "dates": [str(d) for d in (test - timedelta(days=30), test, date.today())]}
    examples = json.dumps({"training": TRAINING, "predicting": PREDICTING, "loading": LOADING})
    done = subprocess.run([sys.executable, "-c", RUNNER, examples, json.dumps(setup)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    printed = done.stdout.splitlines()
    assert printed[0].startswith("Model accuracy: 0.") and printed[1].startswith("Model AUC: 0.")
    assert 0.5 < float(printed[1].split(": ")[1]) <= 1
    churn = float(printed[2].removeprefix("Churn probability: "))
    assert printed[2].startswith("Churn probability: ") and 0 <= churn <= 1
    loaded = int(re.fullmatch(r"Loaded (\d+) user features", printed[3])[1])
    summary = json.loads(printed[4])
    # trained as of today: tested on the latest date whose labels were complete by today, trained 30 days before it
    assert summary["split"] == {**summary["split"], "kind": "time", "test_date": str(test), "train_dates": [str(test - timedelta(days=30))]}
    assert summary["version"] == "1.0.0" and loaded == summary["features"] > 100
