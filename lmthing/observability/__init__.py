"""Worker observability: Prometheus metrics (:mod:`.metrics`) and JSON logs (:mod:`.logging`)."""
