"""The planner: the pure planning engine (engine/) and the HTTP service."""
