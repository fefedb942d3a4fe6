"""The organisation's logo, served from this server at a fixed path for the emails' ``<img>``
(never an image fetched from elsewhere at send time). Each email's address for it carries
the file's hash (``?v=``), so a new logo is a new address and the old one can be cached
for a year."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from digest.errors import ConfigError
from digest.render.branding import LOGO_FOLDER, logo_file, logo_path
from digest.web.deps import Ctx

log = logging.getLogger(__name__)
router = APIRouter()

CACHE_FOR_A_YEAR = "public, max-age=31536000"


@router.api_route(LOGO_FOLDER + "/{name}", methods=["GET", "HEAD"])
def logo(ctx: Ctx, name: str) -> Response:
    """``/brand/logo.png`` (or ``.jpg``, ``.gif``, as the file is): 404 without a logo."""
    try:
        found = logo_file(ctx.settings)
    except ConfigError as exc:  # checked at start; gone or broken since: as if there were none
        log.warning("the logo is not served: %s", exc)
        found = None
    if found is None or f"{LOGO_FOLDER}/{name}" != logo_path(found):
        raise StarletteHTTPException(404)
    return Response(
        found.data,
        media_type=found.content_type,
        headers={"Cache-Control": CACHE_FOR_A_YEAR},
    )
