"""``GET /healthz``: 200 when all is well, 503 with the reasons when not (no login, no
personal data: see digest.health)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from digest.health import health
from digest.web.deps import Ctx

router = APIRouter()


@router.get("/healthz")
async def healthz(ctx: Ctx) -> JSONResponse:
    report = await run_in_threadpool(health, ctx)
    return JSONResponse(
        report.as_json(),
        status_code=200 if report.ok else 503,
        headers={"Cache-Control": "no-store"},
    )
