"""`python -m execplanner.operator`: run the operator (one replica; see README)."""
from __future__ import annotations

import logging
import os

import kopf

from . import handlers  # noqa: F401  (registers the handlers)
from .settings import Settings


def main() -> None:
    settings = Settings()  # fail at once, naming the variable, on a bad setting
    logging.basicConfig(level=os.environ.get("EXECPLANNER_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kubernetes_asyncio").setLevel(logging.WARNING)
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)  # one line per watch event otherwise
    kopf.run(clusterwide=True, standalone=True,
             liveness_endpoint=f"http://127.0.0.1:{settings.health_port}/healthz" if settings.health_port else None)


if __name__ == "__main__":
    main()
