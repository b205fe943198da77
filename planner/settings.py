"""The planner service's settings, from the environment (EXECPLANNER_PLANNER_*): one place
for each knob. The allowlists are shared with the operator (EXECPLANNER_ALLOWED_*)."""
from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .federation import Site

# Node labels that name a node pool on common platforms, then generic ones (GET /nodes, the web page).
GROUP_LABELS = ("node.kubernetes.io/pool", "cloud.google.com/gke-nodepool", "eks.amazonaws.com/nodegroup",
                "kubernetes.azure.com/agentpool", "karpenter.sh/nodepool", "node.kubernetes.io/instance-type",
                "topology.kubernetes.io/zone", "nvidia.com/gpu.present", "type")


class PlannerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXECPLANNER_PLANNER_", frozen=True)

    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 in a pod).")
    port: int = Field(8080, ge=0, le=65535, description="Port to listen on.")
    public_url: str = Field("", description="Base URL clients reach this service at, for hrefs and "
                                            "endpoints (empty: taken from each request's Host).")
    # -- identity: OAuth2/OIDC bearer tokens (JWT) and/or a static token file ------------------
    jwt_issuer: str = Field("", description="Expected `iss` of bearer JWTs (empty: JWTs are not accepted).")
    jwt_audience: str = Field("execplanner", description="Expected `aud` of bearer JWTs.")
    jwks_url: str = Field("", description="Where the issuer's signing keys (JWKS) are fetched from.")
    jwt_user_claim: str = Field("sub", description="The JWT claim that names the user.")
    token_file: str = Field("", description="Static tokens, one per line: token,user (like kube-apiserver's).")
    anonymous_accepts: bool = Field(True, description="Let callers without a token ask /accepts.")
    # -- where a user's plans live ---------------------------------------------------------------
    namespace_template: str = Field("xp-{user}", description="A user's namespace; {user} is the "
                                                             "user name made DNS-safe.")
    namespace_map: dict[str, str] = Field(default_factory=dict, description="Explicit user -> namespace "
                                                                           "(JSON), before the template.")
    create_namespaces: bool = Field(True, description="Create a user's namespace on first use.")
    # -- behaviour ------------------------------------------------------------------------------
    offerset_wait_seconds: float = Field(10.0, ge=0, description="How long POST /offersets waits for the "
                                                                 "operator's offers before answering.")
    offerset_default_count: int = Field(3, ge=1, le=10, description="Offers proposed when a request does "
                                                                    "not say how many.")
    uws_destruction_days: int = Field(7, ge=1, description="Default UWS destruction time after creation.")
    uws_default_duration_seconds: int = Field(3600, ge=1, description="UWS jobs' execution duration when "
                                                                      "not given.")
    max_wait_seconds: int = Field(300, ge=1, description="Longest blocking UWS WAIT a request may hold.")
    max_body_bytes: int = Field(256 * 1024, ge=1024, description="Largest request body accepted.")
    accepts_headroom: float = Field(1.25, ge=1, le=100, description="POST /accepts: a maxcores or maxmemory left "
                                    "blank is offered up to what is free, at most the minimum times this (the IVOA "
                                    "note's example: 8 cores and 8G asked, up to 10 and 10G offered).")
    accepts_duration_headroom: float = Field(2.0, ge=1, le=100, description="POST /accepts: a maxduration left blank "
                                             "is offered as long as the calendar allows, at most the minimum times "
                                             "this (the note's example: 10m asked, up to 20m offered).")
    # -- protections (docs/security.md) ------------------------------------------------------------
    rate_limit_per_minute: int = Field(600, ge=0, description="Requests a minute each caller may make to "
                                       "POST /accepts, /offersets and /uws/jobs (a user by their token; anonymous "
                                       "callers share one allowance per client address); beyond, 429 with "
                                       "Retry-After. 0: no limit.")
    render_cache_entries: int = Field(256, ge=1, description="Chart renders remembered (5 minutes each; the least "
                                      "recently used goes first when full).")
    pod_annotations: dict[str, str] = Field(default_factory=dict, description="Annotations added to the pods of "
                                            "every task submitted over HTTP (JSON), e.g. kwok's run time on a "
                                            "test cluster or a site's accounting tags.")
    access_log: bool = Field(True, description="One JSON line per request on stderr (written in batches, "
                                               "see accesslog.py).")
    horizon_days: int = Field(7, ge=1, description="How far ahead answers look (as the operator).")
    # -- federation (planner/federation.py) ------------------------------------------------------
    sites: list[Site] = Field(default_factory=list, validation_alias=AliasChoices(
        "EXECPLANNER_SITES", "EXECPLANNER_PLANNER_SITES"), description="Sites a federated question goes to "
        "(JSON: [{name, url, ca}]), this one among them if it is to answer too; empty: no federation.")
    federation_deadline_seconds: float = Field(2.0, gt=0, le=60, description="How long a federated question waits "
                                               "for the sites; one that has not answered by then is reported so.")
    # -- the web page at / (docs/web.md) -----------------------------------------------------------
    anonymous_calendar: bool = Field(True, description="Let callers without a token read the calendar (GET "
                                     "/calendar, /calendar/version, /nodes): capacity and usage, never whose.")
    web_oidc_authorization_url: str = Field("", description="The OpenID Connect issuer's authorization endpoint "
                                            "the web page signs people in at (authorization code flow with PKCE); "
                                            "empty: the page has no sign-in and is anonymous only.")
    web_oidc_token_url: str = Field("", description="The issuer's token endpoint, where the page exchanges the "
                                    "code for an access token (a JWT this service accepts: jwt_issuer, "
                                    "jwt_audience); the issuer must allow the page's origin (CORS).")
    web_oidc_client_id: str = Field("execplanner-web", description="The page's OAuth client id at the issuer "
                                    "(a public client: no secret).")
    web_oidc_scopes: str = Field("openid", description="Scopes the page asks for, space-separated.")
    web_grafana_url: str = Field("", description="A Grafana dashboard the page links to for operators (the "
                                 "chart's dashboard); empty: no link.")
    web_group_labels: list[str] = Field(default_factory=lambda: list(GROUP_LABELS), description="Node labels "
                                        "that name node pools, in order of preference (JSON list); the page groups "
                                        "many nodes by them (GET /nodes gives these labels only).")
