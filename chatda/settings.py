"""Every knob of chatda, read once from the environment (prefix ``CHATDA_``) and ``.env``.

One data dir holds all local state (models, SQLite store, embedded Milvus, broker logs), so a
developer can wipe or move a whole installation by one path.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, computed_field
from pydantic_settings import BaseSettings, SettingsConfigDict

from chatda.redaction import MASK, mask_url_passwords, url_password

EncoderBackend = Literal["torch", "onnx", "onnx-int8"]
EncoderBackendSetting = Literal["auto", "torch", "onnx", "onnx-int8"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CHATDA_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    data_dir: Path = Field(default=Path(".chatda"), description="root of all local state")
    models_dir_override: Path | None = Field(
        default=None,
        alias="CHATDA_MODELS_DIR",
        description="model registry location; defaults to <data_dir>/models",
    )

    # model serving
    model_name: str = "e5-small-ko"
    model_version: str | None = Field(
        default=None, description="pin a registry version; default: the serving pointer"
    )
    device: str = Field(default="auto", description="auto | cpu | cuda")
    cpu_threads: int = Field(default=0, description="torch/onnxruntime CPU threads; 0 = all cores")
    encoder_backend: EncoderBackendSetting = Field(
        default="auto",
        description="auto (onnx on a CPU, torch on a GPU) | torch | onnx (fp32 ONNX, CPU only: "
        "torch's numbers without its GIL stalls under load, BENCHMARKS § 8) | onnx-int8 (CPU "
        "only; 2.7x Infinity's /v1/embeddings, -0.56 KorSTS with @tuned: BENCHMARKS § 1, § 6)",
    )
    max_seq_length: int = 512

    # dynamic batcher
    batch_max_size: int = 64
    batch_max_tokens: int = 16384
    batch_queue_limit: int = 4096
    request_timeout_ms: int = 2000

    # HTTP API
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    admin_token: SecretStr | None = None
    publisher_token: SecretStr | None = None
    max_body_bytes: int = Field(
        default=1 << 20, ge=0, description="request body limit of every route (query.limits)"
    )
    catalog_max_body_bytes: int = Field(
        default=32 << 20,
        ge=0,
        description="body limit of the catalog import (the file has no intent count limit)",
    )
    # admission (query.admission): requests served at once per process and route class, then
    # 429 with Retry-After; 0 = no limit
    max_in_flight_search: int = Field(
        default=32, ge=0, description="/v1/search, /v1/intents/match, /v1/suggest"
    )
    max_in_flight_embeddings: int | None = Field(
        default=None,
        ge=0,
        description="/v1/embeddings; default 2 x batch_max_size (one pass computing, one filling)",
    )
    max_in_flight_admin: int = Field(
        default=8, ge=0, description="admin API and page, the publisher's /v1/articles"
    )
    max_in_flight_other: int = Field(
        default=16, ge=0, description="every other route but /healthz, /readyz and /metrics"
    )

    # intent catalog
    intent_threshold: float = Field(
        default=0.92, ge=0, le=1, description="global raw (fused cosine) threshold: the raw rule"
    )
    # issue #27: the calibrated decision (docs/intents.md)
    intent_decision: Literal["calibrated", "raw"] = Field(
        default="calibrated",
        description="calibrated: thresholds apply to a confidence fitted per catalog snapshot",
    )
    intent_min_confidence: float = Field(
        default=0.25, ge=0, le=1, description="global threshold on the calibrated confidence"
    )
    intent_ambiguity_margin: float = Field(
        default=0.02, ge=0, le=1, description="top two within this confidence: ambiguous"
    )
    intent_calibration_clicks: int = Field(
        default=1000,
        ge=0,
        description="the most recent intent clicks each calibration fit reads (0: none)",
    )
    intent_calibration_refit_clicks: int = Field(
        default=200,
        ge=0,
        description="refit once this many new intent clicks arrived (0: on catalog changes only)",
    )
    intent_lexical_weight: float = Field(default=0.06, ge=0, le=1)
    intent_centroid_weight: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="an intent's dense score: this share from its centroid, the rest from its "
        "best hint (0: best hint only)",
    )
    catalog_poll_s: float = 3.0
    catalog_file: Path | None = Field(default=None, description="imported at start if store empty")

    # indexer jobs: name -> "interval:SECONDS" | "cron:CRONTAB" | "off"
    jobs: dict[str, str] = Field(
        default_factory=lambda: {
            "aggregate-feedback": "interval:600",
            "refresh-suggestions": "interval:300",
            "reindex": "cron:30 3 * * *",
            "retrain": "off",
            "reconcile-outbox": "interval:5",
        }
    )
    retrain_min_pairs: int = Field(default=200, ge=1, description="click pairs before retraining")
    retrain_args: str = Field(default="", description="extra `chatda train retrieval` options")
    scheduler_metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="the scheduler's /metrics port (unset: none)"
    )
    feedback_metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="the feedback consumer's /metrics port"
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="address the ingest worker's, scheduler's and feedback consumer's /metrics "
        "servers bind: loopback, as the API's, unless a scraper outside the host needs them",
    )

    # text
    max_text_chars: int = 20000
    user_dictionary: Path | None = None

    # stores and brokers
    database_url: str | None = None
    kafka_bootstrap: str | None = None
    milvus_uri: str | None = None
    articles_topic: str = "articles"
    dead_letter_topic: str = "articles-dlq"
    events_topic: str = "search-events"
    events_dead_letter_topic: str = Field(
        default="search-events-dlq",
        description="search events the feedback consumer cannot parse or store, with the reason",
    )
    articles_indexed_topic: str = Field(
        default="articles-indexed",
        description="ingest workers announce the articles they wrote; API replicas follow",
    )
    log_level: str = "INFO"
    log_json: bool = False

    # --- article ingest (publishers → Kafka → ingest worker → Milvus) ---
    article_partitions: int = Field(default=4, description="partitions of a new articles topic")
    articles_alias: str = Field(default="articles", description="Milvus alias search reads")
    ingest_group_id: str = "chatda-ingest"
    ingest_batch_size: int = Field(default=64, description="max records per worker poll")
    chunk_max_tokens: int = Field(default=256, description="tokens per embedded chunk")
    chunk_overlap_sentences: int = 1
    outbox_grace_s: float = Field(
        default=60.0, ge=0, description="an unindexed accepted article is re-sent after this"
    )
    outbox_max_attempts: int = Field(
        default=6, ge=0, description="re-sends (grace doubling each time) before 'failed'"
    )
    # --- end article ingest ---

    # --- search API (chatda.search; /v1/search, /v1/suggest, /v1/feedback) ---
    profiles: str | None = Field(
        default=None, description="SLA profiles as JSON/YAML text, merged over the built-in ones"
    )
    profiles_file: Path | None = Field(
        default=None, description="SLA profiles file (JSON/YAML), merged before `profiles`"
    )
    search_default_profile: str = "default"
    article_tier_max_bytes: int = Field(
        default=1 << 30,
        ge=0,
        description="memory for the in-memory article tier per API process (0: off; a larger "
        "collection is searched in Milvus)",
    )
    search_workers: int = Field(default=8, ge=1, description="threads for Milvus search legs")
    index_follow_s: float = Field(
        default=5.0, gt=0, description="how often the API checks which model the index serves"
    )
    search_snippet_chars: int = Field(default=160, ge=20, le=2000)
    search_recent_queries: int = Field(
        default=100_000, ge=1, description="query ids remembered to flag unknown feedback"
    )
    suggest_refresh_s: float = Field(
        default=300.0, gt=0, description="reload article titles and suggestion popularity"
    )
    suggest_max_titles: int = Field(default=50_000, ge=1)
    suggest_max_hint_chars: int = Field(default=30, ge=1, description="longer hints are prose")
    suggest_min_query_searches: int = Field(
        default=3, ge=1, description="searches with feedback before a query is suggested"
    )
    suggest_max_queries: int = Field(default=1000, ge=1)
    suggest_half_life_days: float = Field(
        default=30.0, gt=0, description="a search's weight in popularity halves every N days"
    )
    events_partitions: int = Field(default=4, ge=1, description="partitions of a new events topic")
    feedback_group_id: str = "chatda-feedback"
    feedback_send_timeout_s: float = Field(default=2.0, gt=0)
    # --- end search API ---

    @computed_field  # type: ignore[prop-decorator]
    @property
    def models_dir(self) -> Path:
        return self.models_dir_override or self.data_dir / "models"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def sql_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'chatda.db').resolve()}"

    def secret_values(self) -> list[str]:
        """Every configured secret: the tokens, and the password inside any URL-valued setting
        (database, broker, Milvus). Logging masks these wherever they appear (chatda.logs)."""
        found = []
        for value in self.model_dump().values():
            if isinstance(value, SecretStr):
                found.append(value.get_secret_value())
            elif isinstance(value, str) and (password := url_password(value)):
                found.append(password)
        return [secret for secret in found if secret]

    def masked(self) -> dict[str, Any]:
        """Effective settings for display: secrets and URL passwords masked (one rule,
        chatda.redaction), so terminals and logs never leak them."""
        out: dict[str, Any] = {}
        for key, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                out[key] = MASK if value.get_secret_value() else ""
            elif isinstance(value, Path):
                out[key] = str(value)
            elif isinstance(value, str):
                out[key] = mask_url_passwords(value)
            else:
                out[key] = value
        return out


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The environment's settings; engine addresses left unset come from the running
    ``chatda up`` over the same data dir (``chatda.local_stack``), so no command starts a
    second embedded engine beside it."""
    from chatda.local_stack import with_running_stack

    return with_running_stack(Settings())
