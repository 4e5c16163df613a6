"""The lead's context on the simulated portals: activities, comments, product rows, duplicates
and what a converted lead became (pure data, no HTTP).

Owns the sample records behind the methods of :mod:`.crm_context`. Deadlines and times are
relative to the world's clock at start, so "overdue" and "upcoming" stay true whenever the demo
runs. Shapes follow the docs pages cited in :mod:`.crm_context`.

On portal "a":
  lead 101: an overdue to-do (501) and an upcoming call (502); completed calls in both
      directions, e-mails in both directions and a meeting; four timeline comments (BB-code, one
      hostile); three product rows in EUR; duplicates by phone and e-mail:
      lead 108 (phone, assigned to user 1, OPENED=N: hidden from user 2), lead 109 (e-mail,
      user 2), contact 15 (phone + e-mail), contact 16 (e-mail, user 1, OPENED=N: hidden),
      company 21 (phone, user 2).
  lead 106 (converted): deal 301, contact 22 and company 23 created from it; deal 302 (from it,
      assigned to user 1, not opened: hidden from user 2).
  lead 104 (private): one open to-do, one comment, one product row (only the admin sees them).
"""

from __future__ import annotations

from typing import Any

from .envelope import iso

DAY = 86400.0
HOUR = 3600.0


def _activity(aid: int, owner: int, *, type_id: int, provider: str, provider_type: str,
              subject: str, completed: bool, start: float, deadline: float, responsible: int,
              direction: int = 0, description: str = "", tz: int = 0) -> dict:
    """An activity as crm.activity.list answers it (UPPER_CASE, every id a string;
    api-reference/crm/timeline/activities/activity-base/crm-activity-list.md)."""
    return {
        "ID": str(aid), "OWNER_ID": str(owner), "OWNER_TYPE_ID": "1", "TYPE_ID": str(type_id),
        "PROVIDER_ID": provider, "PROVIDER_TYPE_ID": provider_type, "SUBJECT": subject,
        "CREATED": iso(start - HOUR, tz), "LAST_UPDATED": iso(start, tz),
        "START_TIME": iso(start, tz), "END_TIME": iso(deadline, tz), "DEADLINE": iso(deadline, tz),
        "COMPLETED": "Y" if completed else "N", "STATUS": "2" if completed else "1",
        "RESPONSIBLE_ID": str(responsible), "PRIORITY": "2", "DIRECTION": str(direction),
        "DESCRIPTION": description, "DESCRIPTION_TYPE": "1", "AUTHOR_ID": str(responsible),
        "EDITOR_ID": str(responsible),
    }


def _comment(cid: int, owner: int, created: float, author: int, text: str, tz: int) -> dict:
    """A timeline comment (api-reference/crm/timeline/comments/crm-timeline-comment-list.md)."""
    return {"ID": str(cid), "ENTITY_ID": owner, "ENTITY_TYPE": "lead", "CREATED": iso(created, tz),
            "COMMENT": text, "AUTHOR_ID": str(author), "FILES": []}


def _row(rid: int, owner: int, name: str, price: float, quantity: float, *, product_id: int,
         discount: float = 0.0, tax: float | None = None, measure: str = "pcs", sort: int = 10) -> dict:
    """A product row (api-reference/crm/universal/product-rows/crm-item-productrow-list.md):
    camelCase, numbers as numbers."""
    exclusive = round(price / (1 - discount / 100), 2) if discount else price
    return {
        "id": rid, "ownerId": owner, "ownerType": "L", "productId": product_id,
        "productName": name, "price": price, "priceAccount": price, "priceExclusive": price,
        "priceNetto": exclusive, "priceBrutto": price, "quantity": quantity,
        "discountTypeId": 2, "discountRate": discount, "discountSum": round(exclusive - price, 2),
        "taxRate": tax, "taxIncluded": "N", "customized": "Y", "measureCode": 796,
        "measureName": measure, "sort": sort, "type": 1, "storeId": None,
    }


def _entity(eid: int, *, title: str, assigned: int, opened: bool, lead_id: int | None,
            name: str = "", last_name: str = "", phones: tuple[str, ...] = (),
            emails: tuple[str, ...] = (), created: str = "2024-05-20T09:15:00+02:00",
            extra: dict | None = None) -> dict:
    """A lead, contact, company or deal record in the legacy UPPER_CASE shape the portal keeps;
    crm.item.list turns it into camelCase."""
    rec: dict[str, Any] = {
        "ID": str(eid), "TITLE": title, "NAME": name, "LAST_NAME": last_name,
        "ASSIGNED_BY_ID": str(assigned), "OPENED": "Y" if opened else "N",
        "LEAD_ID": str(lead_id) if lead_id else None, "DATE_CREATE": created,
        "PHONE": [{"ID": str(eid * 10 + i), "VALUE_TYPE": "WORK", "VALUE": v, "TYPE_ID": "PHONE"}
                  for i, v in enumerate(phones)],
        "EMAIL": [{"ID": str(eid * 10 + 5 + i), "VALUE_TYPE": "WORK", "VALUE": v, "TYPE_ID": "EMAIL"}
                  for i, v in enumerate(emails)],
    }
    rec.update(extra or {})
    return rec


def portal_context(name: str, now: float, tz: int) -> dict[str, Any]:
    """Context records of portal ``name`` with times relative to ``now`` (epoch seconds)."""
    if name != "a":
        return {"activities": [], "comments": [], "product_rows": {}, "deals": {},
                "leads": {}, "contacts": {}, "companies": {}}
    act = _activity
    activities = [
        act(501, 101, type_id=6, provider="CRM_TODO", provider_type="TODO", tz=tz,
            subject="Send the pricing for 40 vans and 6 trailers", completed=False,
            start=now - 3 * DAY, deadline=now - 1 * DAY - 2 * HOUR, responsible=2,
            description="Include the fuel-card bundle."),
        act(502, 101, type_id=2, provider="VOXIMPLANT_CALL", provider_type="CALL", tz=tz,
            subject="Call back about trailer tracking", completed=False, direction=2,
            start=now + 2 * DAY, deadline=now + 2 * DAY + 30 * 60, responsible=2),
        act(503, 101, type_id=2, provider="VOXIMPLANT_CALL", provider_type="CALL", tz=tz,
            subject="Incoming call from +44 20 7946 0123", completed=True, direction=1,
            start=now - 6 * DAY, deadline=now - 6 * DAY + 12 * 60, responsible=2),
        act(504, 101, type_id=2, provider="VOXIMPLANT_CALL", provider_type="CALL", tz=tz,
            subject="Qualification call", completed=True, direction=2,
            start=now - 5 * DAY, deadline=now - 5 * DAY + 25 * 60, responsible=2),
        act(505, 101, type_id=4, provider="CRM_EMAIL", provider_type="EMAIL", tz=tz,
            subject="Re: fleet size and trailer count", completed=True, direction=1,
            start=now - 4 * DAY, deadline=now - 4 * DAY, responsible=2),
        act(506, 101, type_id=4, provider="CRM_EMAIL", provider_type="EMAIL", tz=tz,
            subject="Demo recording and next steps", completed=True, direction=2,
            start=now - 2 * DAY, deadline=now - 2 * DAY, responsible=2),
        act(507, 101, type_id=1, provider="CRM_MEETING", provider_type="MEETING", tz=tz,
            subject="Demo at Nordwind HQ", completed=True,
            start=now - 3 * DAY, deadline=now - 3 * DAY + 2 * HOUR, responsible=1),
        act(508, 101, type_id=2, provider="VOXIMPLANT_CALL", provider_type="CALL", tz=tz,
            subject="Missed call", completed=True, direction=1,
            start=now - 9 * DAY, deadline=now - 9 * DAY, responsible=2),
        act(509, 104, type_id=6, provider="CRM_TODO", provider_type="TODO", tz=tz,
            subject="Prepare the board briefing", completed=False,
            start=now - DAY, deadline=now + DAY, responsible=1),
    ]
    comments = [
        _comment(701, 101, now - 7 * DAY, 1, "Referred by our partner [B]FleetOne[/B].", tz),
        _comment(702, 101, now - 4 * DAY, 2,
                 "Budget confirmed for Q3.\n[LIST][*]40 vans[*]6 trailers[/LIST]", tz),
        _comment(703, 101, now - 2 * DAY, 2,
                 "<script>alert('comment')</script>Wants a [URL=javascript:alert(1)]pilot[/URL] "
                 "with <b onmouseover=alert(2)>5 vans</b> first.", tz),
        _comment(704, 101, now - 1 * DAY, 1, "Asked legal to check the data-processing terms.", tz),
        _comment(705, 104, now - DAY, 1, "Board member asked for discretion.", tz),
    ]
    product_rows = {
        101: [_row(901, 101, "Telematics unit T-40", 890.0, 40, product_id=41, sort=10),
              _row(902, 101, "Installation per vehicle", 120.0, 46, product_id=42, sort=20,
                   measure="service"),
              _row(903, 101, "Fleet dashboard licence (annual)", 5850.0, 1, product_id=43,
                   discount=10.0, sort=30, measure="licence")],
        104: [_row(904, 104, "Board advisory package", 250000.0, 1, product_id=44)],
    }
    leads = {
        108: _entity(108, title="Trade fair contact: Nordwind", assigned=1, opened=False,
                     lead_id=None, name="Marta", last_name="Hoffmann",
                     phones=("+44 7700 900123",), created="2024-02-11T10:00:00+01:00"),
        109: _entity(109, title="Newsletter sign-up", assigned=2, opened=True, lead_id=None,
                     name="M.", last_name="Hoffmann", emails=("m.hoffmann@nordwind.example",),
                     created="2024-04-28T08:30:00+02:00"),
    }
    contacts = {
        16: _entity(16, title="", assigned=1, opened=False, lead_id=None, name="Marta",
                    last_name="Hoffmann (private)", emails=("marta.h@mail.example",)),
        22: _entity(22, title="", assigned=2, opened=True, lead_id=106, name="Jun",
                    last_name="Tanaka", emails=("jun.tanaka@example.jp",),
                    created="2024-03-29T17:00:00+01:00"),
    }
    companies = {
        21: _entity(21, title="Nordwind Logistics (Hamburg branch)", assigned=2, opened=True,
                    lead_id=None, phones=("+44 20 7946 0123",)),
        23: _entity(23, title="Tanaka Reefer K.K.", assigned=2, opened=True, lead_id=106,
                    created="2024-03-29T17:00:00+01:00"),
    }
    deals = {
        301: _entity(301, title="Cold chain monitoring: 12 reefer trucks", assigned=2, opened=True,
                     lead_id=106, created="2024-03-29T17:00:00+01:00",
                     extra={"STAGE_ID": "EXECUTING", "OPPORTUNITY": "9990000.00",
                            "CURRENCY_ID": "RUB", "CONTACT_ID": "22", "COMPANY_ID": "23"}),
        302: _entity(302, title="Cold chain: spare sensors", assigned=1, opened=False,
                     lead_id=106, created="2024-04-02T10:00:00+02:00",
                     extra={"STAGE_ID": "NEW", "OPPORTUNITY": "120000.00", "CURRENCY_ID": "RUB"}),
    }
    return {"activities": activities, "comments": comments, "product_rows": product_rows,
            "deals": deals, "leads": leads, "contacts": contacts, "companies": companies}
