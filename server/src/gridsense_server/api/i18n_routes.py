"""Public, cacheable reads the page needs before and after sign-in: the message catalogue of a
language and the display settings (time zone, default language)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel

from gridsense_protocol import utc_now

from ..config import DisplayConfig
from ..i18n import LANGUAGES, catalogue

router = APIRouter()
CATALOGUE_MAX_AGE_S = 3600  # a new release's catalogue is picked up within the hour


class DisplaySettings(BaseModel):
    timezone: str  # IANA zone every time is shown in (labelled on the page)
    utc_offset: str  # the zone's offset now, e.g. +08:00
    language: str  # the language the page opens in
    languages: list[str]  # the catalogues there are
    title: str  # the header's title (display.title), empty for the catalogue's


@router.get("/api/v1/i18n/{language}", tags=["i18n"],
            responses={200: {"content": {"application/json": {}}},
                       304: {"description": "unchanged (If-None-Match)"},
                       404: {"description": "no catalogue for this language"}})
def message_catalogue(language: str, request: Request) -> Response:
    """Every string a user reads, keyed by the codes the API sends (types, states...)."""
    if language not in LANGUAGES:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"没有该语言 / no catalogue for {language[:20]!r}; "
                            f"there are: {', '.join(LANGUAGES)}")
    found = catalogue(language)
    headers = {"ETag": found.etag, "Cache-Control": f"public, max-age={CATALOGUE_MAX_AGE_S}",
               "Content-Language": language}
    if request.headers.get("if-none-match") == found.etag:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(found.body, media_type="application/json", headers=headers)


@router.get("/api/v1/settings/display", response_model=DisplaySettings, tags=["i18n"])
def display_settings(request: Request) -> DisplaySettings:
    config: DisplayConfig = getattr(request.app.state, "display", DisplayConfig())
    offset = utc_now().astimezone(ZoneInfo(config.timezone)).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    return DisplaySettings(timezone=config.timezone,
                           utc_offset=f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}",
                           language=config.language, languages=list(LANGUAGES),
                           title=config.title)
