"""execplanner.cluster: the Kubernetes side shared by the operator and the planner service,
above the engine: the API client, watches, the feed of nodes and pods into the engine, plans'
booking status, Helm chart rendering and the allowlists. Imports neither of them."""
