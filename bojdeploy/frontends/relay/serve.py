"""`bojdeploy relay` and `bojdeploy worker`: check the settings and the schema, then run."""

from __future__ import annotations

import logging

from bojdeploy.frontends.relay.config import RelayConfig
from bojdeploy.frontends.relay.queue import apply_schema, make_app
from bojdeploy.store import open_store


def prepare_database(config: RelayConfig) -> None:
    """Apply bojdeploy's migrations and procrastinate's schema (idempotent)."""
    open_store(config.database_url).close()
    apply_schema(config.database_url)


def run_relay(config: RelayConfig, host: str, port: int, workers: int) -> None:
    """Serve the relay until stopped."""
    import uvicorn

    from bojdeploy.frontends.relay.app import create_app

    prepare_database(config)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(config, workers), host=host, port=port, log_level="info")


def run_worker(config: RelayConfig, concurrency: int) -> None:
    """Run deploy jobs until stopped."""
    prepare_database(config)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    make_app(config.database_url).run_worker(
        concurrency=concurrency, additional_context={"config": config}
    )
