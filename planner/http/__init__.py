"""The planner's HTTP front-end (aiohttp): IVOA ExecutionPlanner /accepts, ExecutionBroker
/offersets and /sessions, UWS 1.1 /uws/jobs, /calendar, and operations endpoints."""
