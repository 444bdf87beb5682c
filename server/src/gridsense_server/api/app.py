"""The FastAPI application; OpenAPI at /openapi.json."""

from __future__ import annotations

from fastapi import FastAPI

from .. import __version__, web
from . import (
    access_routes,
    commissioning_routes,
    enrollment_routes,
    i18n_routes,
    metrics_routes,
    pass_admin_routes,
    remote_config_routes,
    resident_routes,
    routes,
    series_routes,
    snapshot_routes,
    stream,
)
from .context import ApiContext


def create_app(context: ApiContext) -> FastAPI:
    app = FastAPI(
        title="gridsense server",
        version=__version__,
        description="Incidents routed to the grid staff who own each point; gateways; live stream.",
    )
    app.state.context = context
    app.include_router(routes.router)
    app.include_router(stream.router)
    app.include_router(snapshot_routes.router)
    app.include_router(access_routes.router)
    app.include_router(series_routes.router)
    app.include_router(i18n_routes.router)
    app.include_router(enrollment_routes.router)
    app.include_router(metrics_routes.router)
    app.include_router(commissioning_routes.router)
    app.include_router(remote_config_routes.router)
    app.include_router(resident_routes.router)
    app.include_router(pass_admin_routes.router)
    web.mount(app)
    return app
