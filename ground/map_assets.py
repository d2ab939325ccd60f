"""The dashboard's map: Leaflet (vendored from npm, ``ground/static/leaflet``) and the script
that draws each scene's tiles over its footprint (``ground/static/scene_map.js``).

Served by the ground itself, so the dashboard works with no internet (there is no base map:
the tiles' outlines and counts are drawn on a blank map in their true places). Only these
files are served, from a fixed list; like the page, they hold no data and need no key (a
script tag cannot send one).
"""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import Response

STATIC = Path(__file__).with_name("static")
FILES = {"leaflet.js": ("leaflet/leaflet.js", "text/javascript"),
         "leaflet.css": ("leaflet/leaflet.css", "text/css"),
         "scene_map.js": ("scene_map.js", "text/javascript")}
PUBLIC = frozenset(f"/static/{name}" for name in FILES)


def add_routes(app) -> None:
    for name, (path, media) in FILES.items():
        def serve(path: str = path, media: str = media) -> Response:
            return Response((STATIC / path).read_bytes(), media_type=media,
                            headers={"Cache-Control": "max-age=3600"})
        app.add_api_route(f"/static/{name}", serve, methods=["GET"], include_in_schema=False,
                          response_class=Response)
