"""Logger, Tracer and Metrics, created once for every handler."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer

# Most steps publish no metric of their own; an empty flush is normal, not worth a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")

SERVICE = "autopatch"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace="Autopatch", service=SERVICE)
