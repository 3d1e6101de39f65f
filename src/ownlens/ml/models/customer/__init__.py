"""Customer models: churn, conversion, engagement and segmentation."""
