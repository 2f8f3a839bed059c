"""nissa: telemetry delivery: the event hub, its sinks (registry, metrics, MLflow), MLflow runs."""
