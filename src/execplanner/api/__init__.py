"""execplanner.api: the bottom layer. The types of the API (the ExecutionPlan and TaskRun
specs), the one reading of units (quantities, durations, instants), and the names execplanner
puts on things. Imports nothing else of execplanner."""
