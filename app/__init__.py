"""The benchmark target: a FastAPI app with def and async endpoints, and its launcher."""
