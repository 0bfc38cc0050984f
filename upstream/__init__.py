"""The upstream HTTP stub that the target calls in the `http` workload (stdlib only)."""
