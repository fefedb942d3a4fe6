"""The HTTP server for the web app: uvicorn, told which proxies (if any) name the client."""

from __future__ import annotations

import logging
from typing import Any

import uvicorn

from digest.config import Settings
from digest.web.pages import HideTokens


def server_config(
    web: Any, settings: Settings, *, host: str, port: int, **extra: Any
) -> uvicorn.Config:
    """uvicorn's settings for ``web``. Only a proxy in ``[web] trusted_proxies`` may say who
    the client is (``X-Forwarded-For``); with none, the address that connected is the client
    and the header is ignored, so nobody picks their own address to dodge a rate limit."""
    trusted = [str(network) for network in settings.web.trusted_proxies]
    logging.getLogger("uvicorn.access").addFilter(HideTokens())
    return uvicorn.Config(
        web,
        host=host,
        port=port,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted,
        server_header=False,
        **{"log_level": "info", **extra},
    )
