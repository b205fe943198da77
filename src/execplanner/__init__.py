"""execplanner: can I run this, and when? An IVOA execution planner for Kubernetes.

The code is organised in two subpackages that map the repository's top folders:
``execplanner.planner`` (the planning engine and the HTTP service) and
``execplanner.operator`` (the kopf operator).
"""

__version__ = "0.1.0"
