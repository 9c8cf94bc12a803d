"""The rejections flow's web view: a requester's refused commands, for the gateway."""

from __future__ import annotations

from faust.web import Request, Response, View

from core.app import app
from streams.rejections.records import log_from_state, log_view
from streams.web import found
from tables.rejections import rejections


# Requester ids are token subjects, free text: a query parameter, not a path segment,
# so no id is ever normalised or split by the router.
@app.page("/rejections/")
@app.table_route(table=rejections.table, query_param="requested_by")
async def get_rejections(web: View, request: Request) -> Response:
    requested_by = request.query["requested_by"]
    record = rejections.get(requested_by)
    view = log_view(requested_by, log_from_state(record)) if record is not None else None
    return found(web, view, f"rejections of {requested_by}")
