"""Outbound webhook endpoints of this school: add, choose events, (de)activate, rotate, test.

Admins only (school and platform admins): an endpoint's secret lets whoever holds it forge
the school's events, and its URL says where the school's data goes, so managers and viewers
do not see these pages at all. The secret is made here and shown once, on the page that
answers its creation or rotation; afterwards only the delivery job reads it (to sign).
Every change is audited, without the secret and without the URL's query (it may hold a
token). Deliveries and redelivery are in :mod:`.webhook_deliveries`.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow
from shared.ids import new_id

from ..i18n import _
from ..keys import config_key
from ..notify.outbox import EVENT_TYPES
from ..notify.producers import forget_subscriptions
from ..storage.schema import webhook_deliveries, webhook_endpoints, webhook_events
from ..transactions import reading, writing
from . import auditlog
from .render import FormError, redirect, render, text
from .scope import admin_of, found, require_admin_role, school_of

routes = web.RouteTableDef()
TEST_EVENT = "webhook.test"  # sent by the "send a test event" button only; no one emits it
MAX_ENDPOINTS = 20  # per school: a typo guard; each endpoint gets every event it hears
ENDPOINT = "/admin/webhooks/{endpoint_id:whe_[A-Za-z0-9_-]+}"


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def shown_url(url: str) -> str:
    """The URL without its query or fragment, for the audit log and messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def check_url(raw: str, allow_http: bool) -> str:
    """An endpoint URL as typed, or FormError: https://, or http:// to a loopback or private
    address when ``webhooks_allow_http`` is on (a host name is not resolved for this)."""
    try:
        parts = urlsplit(raw)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise FormError(_("This is not a URL.")) from None
    if parts.scheme not in ("https", "http") or not host or parts.username or parts.password:
        raise FormError(_("Enter a full https:// URL, without a user name or password."))
    if _never(host):
        raise FormError(_("This address cannot receive webhooks."))
    if parts.scheme == "http":
        if not allow_http:
            raise FormError(_("Only https:// URLs are accepted."))
        if not _local(host):
            raise FormError(_("http:// is accepted only for loopback and private addresses; "
                              "use https://."))
    return raw


def _never(host: str) -> bool:
    """Link-local (cloud metadata services live there), unspecified and multicast addresses,
    typed as such; a name is not resolved for this check."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_link_local or address.is_unspecified or address.is_multicast


def _local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private


def _event_types(form: MultiDictProxy[Any]) -> list[str]:
    chosen = [t for t in EVENT_TYPES if t in form.getall("event_type", [])]
    if not chosen:
        raise FormError(_("Choose at least one event."))
    return chosen


async def endpoint_of(conn: AsyncConnection, request: web.Request, endpoint_id: str) -> Any:
    return found((await conn.execute(sa.select(webhook_endpoints).where(
        webhook_endpoints.c.endpoint_id == endpoint_id,
        webhook_endpoints.c.school_id == school_of(request).school_id))).first())


@routes.get("/admin/webhooks")
async def endpoint_list(request: web.Request) -> web.StreamResponse:
    require_admin_role(request)
    school = school_of(request)
    async with reading(request.app) as conn:
        rows = (await conn.execute(
            sa.select(webhook_endpoints).where(webhook_endpoints.c.school_id == school.school_id)
            .order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.endpoint_id))).all()
        counts = {str(state): int(n) for state, n in (await conn.execute(
            sa.select(webhook_deliveries.c.state, sa.func.count())
            .where(webhook_deliveries.c.school_id == school.school_id)
            .group_by(webhook_deliveries.c.state))).all()}
    return render(request, "webhooks.html", {
        "endpoints": rows, "event_types": EVENT_TYPES, "counts": counts,
        "allow_http": request.app[config_key].webhooks_allow_http})


@routes.post("/admin/webhooks")
async def endpoint_create(request: web.Request) -> web.StreamResponse:
    require_admin_role(request)
    school = school_of(request)
    form = await request.post()
    try:
        url = check_url(text(form, "url", max_len=500, label=_("URL")),
                        request.app[config_key].webhooks_allow_http)
        events = _event_types(form)
        description = text(form, "description", max_len=200, required=False)
    except FormError as exc:
        return redirect("/admin/webhooks", str(exc), error=True)
    now, endpoint_id, secret = utcnow(), new_id("whe"), new_secret()
    async with writing(request.app) as conn:
        count = (await conn.execute(sa.select(sa.func.count()).where(
            webhook_endpoints.c.school_id == school.school_id))).scalar_one()
        if count >= MAX_ENDPOINTS:
            return redirect("/admin/webhooks", _("A school has at most %(n)d endpoints.",
                                                 n=MAX_ENDPOINTS), error=True)
        await conn.execute(sa.insert(webhook_endpoints).values(
            endpoint_id=endpoint_id, school_id=school.school_id, url=url, secret=secret,
            event_types=events, active=True, description=description or None,
            created_at=now, created_by=admin_of(request).user_id, updated_at=now))
        await auditlog.record(conn, request, "webhook_endpoint_created",
                              school_id=school.school_id, target_type="webhook_endpoint",
                              target_id=endpoint_id,
                              after={"url": shown_url(url), "event_types": events,
                                     "description": description})
    forget_subscriptions()
    return await _with_secret(request, endpoint_id, secret,
                              _("Endpoint added. Copy its signing secret now: it is shown "
                                "only this once."))


async def _with_secret(request: web.Request, endpoint_id: str, secret: str,
                       message: str) -> web.StreamResponse:
    """The endpoint's page, answering the POST itself, with the secret shown this once."""
    return await _endpoint_page(request, endpoint_id, {"secret": secret, "message": message})


@routes.get(ENDPOINT)
async def endpoint_page(request: web.Request) -> web.StreamResponse:
    require_admin_role(request)
    return await _endpoint_page(request, request.match_info["endpoint_id"], {})


async def _endpoint_page(request: web.Request, endpoint_id: str,
                         extra: dict[str, Any]) -> web.StreamResponse:
    async with reading(request.app) as conn:
        endpoint = await endpoint_of(conn, request, endpoint_id)
        recent = (await conn.execute(
            sa.select(webhook_deliveries, webhook_events.c.event_type)
            .join(webhook_events, webhook_events.c.event_id == webhook_deliveries.c.event_id)
            .where(webhook_deliveries.c.endpoint_id == endpoint.endpoint_id)
            .order_by(webhook_deliveries.c.created_at.desc(),
                      webhook_deliveries.c.delivery_id.desc()).limit(20))).all()
    return render(request, "webhook.html", {
        "endpoint": endpoint, "event_types": EVENT_TYPES, "recent": recent,
        "secret": None, "message": None, **extra})


@routes.post(ENDPOINT)
async def endpoint_update(request: web.Request) -> web.StreamResponse:
    """The events it hears and its description (the URL stays: add another endpoint)."""
    require_admin_role(request)
    school = school_of(request)
    endpoint_id = request.match_info["endpoint_id"]
    back = f"/admin/webhooks/{endpoint_id}"
    async with reading(request.app) as conn:
        await endpoint_of(conn, request, endpoint_id)
    form = await request.post()
    try:
        events = _event_types(form)
        description = text(form, "description", max_len=200, required=False)
    except FormError as exc:
        return redirect(back, str(exc), error=True)
    async with writing(request.app) as conn:
        before = await endpoint_of(conn, request, endpoint_id)
        await conn.execute(sa.update(webhook_endpoints)
                           .where(webhook_endpoints.c.endpoint_id == endpoint_id)
                           .values(event_types=events, description=description or None,
                                   updated_at=utcnow()))
        await auditlog.record(conn, request, "webhook_endpoint_updated",
                              school_id=school.school_id, target_type="webhook_endpoint",
                              target_id=endpoint_id,
                              before={"event_types": before.event_types,
                                      "description": before.description},
                              after={"event_types": events, "description": description})
    forget_subscriptions()
    return redirect(back, _("Endpoint saved."))


@routes.post(ENDPOINT + "/active")
async def endpoint_active(request: web.Request) -> web.StreamResponse:
    """Deactivated: it gets no new deliveries, and its pending ones wait until it is active
    again (the job skips them)."""
    require_admin_role(request)
    school = school_of(request)
    endpoint_id = request.match_info["endpoint_id"]
    back = f"/admin/webhooks/{endpoint_id}"
    form = await request.post()
    if form.get("active") not in ("0", "1"):
        return redirect(back, _("Choose active or inactive."), error=True)
    active = form.get("active") == "1"
    async with writing(request.app) as conn:
        before = await endpoint_of(conn, request, endpoint_id)
        if bool(before.active) != active:
            await conn.execute(sa.update(webhook_endpoints)
                               .where(webhook_endpoints.c.endpoint_id == endpoint_id)
                               .values(active=active, updated_at=utcnow()))
            await auditlog.record(
                conn, request,
                "webhook_endpoint_activated" if active else "webhook_endpoint_deactivated",
                school_id=school.school_id, target_type="webhook_endpoint",
                target_id=endpoint_id, before={"active": bool(before.active)},
                after={"active": active})
    forget_subscriptions()
    return redirect(back, _("Endpoint activated.") if active else _("Endpoint deactivated."))


@routes.post(ENDPOINT + "/rotate")
async def endpoint_rotate(request: web.Request) -> web.StreamResponse:
    """A new secret, at once: deliveries from now on (retries too) are signed with it."""
    require_admin_role(request)
    school = school_of(request)
    endpoint_id = request.match_info["endpoint_id"]
    secret = new_secret()
    async with writing(request.app) as conn:
        await endpoint_of(conn, request, endpoint_id)
        await conn.execute(sa.update(webhook_endpoints)
                           .where(webhook_endpoints.c.endpoint_id == endpoint_id)
                           .values(secret=secret, updated_at=utcnow()))
        await auditlog.record(conn, request, "webhook_secret_rotated",
                              school_id=school.school_id, target_type="webhook_endpoint",
                              target_id=endpoint_id)
    return await _with_secret(request, endpoint_id, secret,
                              _("New signing secret made; the old one no longer signs. Copy "
                                "it now: it is shown only this once."))


@routes.post(ENDPOINT + "/test")
async def endpoint_test(request: web.Request) -> web.StreamResponse:
    """A ``webhook.test`` event to this endpoint alone (whether it hears other types or not),
    delivered by the job like any other, so its deliveries page shows what the receiver
    answered."""
    require_admin_role(request)
    school = school_of(request)
    endpoint_id = request.match_info["endpoint_id"]
    now, event_id = utcnow(), new_id("evt")
    async with writing(request.app) as conn:
        await endpoint_of(conn, request, endpoint_id)
        await conn.execute(sa.insert(webhook_events).values(
            event_id=event_id, school_id=school.school_id, event_type=TEST_EVENT,
            data={"endpoint_id": endpoint_id, "message": "a test event from the console"},
            dedupe_key=None, created_at=now))
        delivery_id = new_id("whd")
        await conn.execute(sa.insert(webhook_deliveries).values(
            delivery_id=delivery_id, event_id=event_id, endpoint_id=endpoint_id,
            school_id=school.school_id, state="pending", attempts=0, next_attempt_at=now,
            created_at=now))
        await auditlog.record(conn, request, "webhook_test_sent", school_id=school.school_id,
                              target_type="webhook_endpoint", target_id=endpoint_id,
                              after={"event_id": event_id})
    return redirect(f"/admin/webhooks/deliveries/{delivery_id}",
                    _("Test event queued; it is sent within a few seconds."))
