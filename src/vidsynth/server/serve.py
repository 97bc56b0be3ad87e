"""`vidsynth serve`: the studio app on uvicorn."""

from __future__ import annotations

import dataclasses
import logging

from vidsynth.errors import VidsynthError
from vidsynth.server.settings import LOOPBACK_HOSTS, Settings

log = logging.getLogger("vidsynth.server")


def serve(settings: Settings) -> None:
    """Run the server until interrupted (Ctrl-C stops it; running jobs go back to the queue)."""
    import uvicorn

    from vidsynth.pipelines.loading import resolve_model_path
    from vidsynth.server.app import create_app

    resolve_model_path(settings.model)  # a bad --model fails now, in one line
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if settings.host in LOOPBACK_HOSTS:
        if settings.allowed_hosts is None:
            settings = dataclasses.replace(settings, allowed_hosts=LOOPBACK_HOSTS)
    else:
        log.warning(
            "listening on %s: the API has no authentication, so anyone who can reach this "
            "address can submit jobs",
            settings.host,
        )
    log.info("data folder: %s", settings.data_dir)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        timeout_graceful_shutdown=3,  # open event streams must not hold up a restart
    )
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise VidsynthError("the server did not start; the log above says why")
