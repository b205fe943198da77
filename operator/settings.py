"""The operator's settings, from the environment (EXECPLANNER_*): one place for each knob."""
from __future__ import annotations

from enum import Enum

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RevokePolicy(str, Enum):
    REPLAN = "Replan"  # book again from the current state (maybe later, maybe elsewhere)
    FAIL = "Fail"      # give up: the plan ends Failed


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXECPLANNER_", frozen=True)

    hold_lead_seconds: int = Field(30, ge=0, description="Create a task's pods this long before its booked start: "
                                   "they hold the capacity (and pull the image) while they wait for it.")
    offer_expiry_seconds: int = Field(300, ge=1, description="How long Manual offers hold their capacity.")
    revoke_policy: RevokePolicy = Field(RevokePolicy.REPLAN, description="What to do when others take booked capacity.")
    waiter_image: str = Field("busybox:1.36", description="Image of the init container that holds a task's pods "
                              "until the booked start (needs sh, date and sleep).")
    task_priority_class: str = "execplanner-task"
    horizon_days: int = Field(7, ge=1, description="How far ahead to look when a plan gives no start window.")
    health_port: int = Field(8081, ge=0, description="kopf's liveness endpoint on 127.0.0.1 (0: off).")
    task_tolerations: list[dict] = Field(default_factory=list, description="Extra tolerations for task pods (JSON).")
    notebook_image: str = Field("quay.io/jupyter/base-notebook:2024-05-27", min_length=1, description=(
        "Image of a notebook task's server when its plan names none (needs python, jupyter lab and jupyter "
        "nbconvert, as the Jupyter Docker Stacks' images have); the allowlist applies to it as to any image."))
