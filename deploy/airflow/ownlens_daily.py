"""OwnLens's daily and weekly runs as Airflow DAGs: the day's features, then every model scored and monitored, one
task each (retried, visible, independent: one model failing does not stop the others); every Monday every model
retrained, a version promoted only if it beats production on the same rows.

Copy this file into the DAGs folder of an Airflow whose workers have OwnLens installed and OWNLENS_DSN set to a
ClickHouse server (the embedded warehouse belongs to one process). The tasks call the CLI, so they do exactly what
a person running it would; each replaces what it wrote for its date, so a retry is safe.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

try:  # the models this OwnLens has, in the order the master run uses
    from ownlens.ml.models import names

    MODELS = names()
except ImportError:  # (parsed where OwnLens is not installed: the scheduler alone)
    MODELS = ["churn", "conversion", "engagement", "click", "segmentation", "recommendation", "ad_placement",
              "article_performance", "trending", "clv", "health", "expansion", "lead", "attribution"]

# features for date D use the data before D: the run for an interval ending at D builds D
DAY = "{{ data_interval_end | ds }}"
DEFAULTS = {"owner": "ownlens", "retries": 2, "retry_delay": timedelta(minutes=10)}

with DAG("ownlens_daily", schedule="10 3 * * *", start_date=datetime(2026, 1, 1), catchup=False, default_args=DEFAULTS,
         max_active_runs=1, tags=["ownlens"], doc_md=__doc__) as daily:
    features = BashOperator(task_id="features_build", bash_command=f"ownlens-ml features build --date {DAY}")
    for name in MODELS:
        predict = BashOperator(task_id=f"predict_{name}", bash_command=f"ownlens-ml predict {name} --date {DAY} --json")
        monitor = BashOperator(task_id=f"monitor_{name}", bash_command=f"ownlens-ml monitor {name} --date {DAY} --report")
        features >> predict >> monitor

with DAG("ownlens_weekly_retrain", schedule="30 4 * * 1", start_date=datetime(2026, 1, 1), catchup=False,
         default_args=DEFAULTS, max_active_runs=1, tags=["ownlens"], doc_md=__doc__) as weekly:
    BashOperator(task_id="retrain", bash_command="ownlens-ml run --models-only --skip-features --json")
