"""CardInputs, the rendered-card reuse key: it carries exactly what the card page reads.

Two ways a stale card could be served, each closed by a test here: the templates start to read
something that is not in CardInputs (introspection of every name card.html, base.html and
_macros.html read), or an input is in CardInputs but not in the key (each field changed in
turn must change the digest — and the page, which shows it is a real input).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask, g
from jinja2 import Environment, meta, nodes
from jinja2.defaults import DEFAULT_FILTERS

from leadcard.card.model import LeadContext, ReferenceData
from leadcard.card.rendered import CardInputs, digest
from leadcard.web import frontend, security
from leadcard.web.views import placement

ROOT = Path(__file__).resolve().parents[2]
# card.html, what it extends, includes and imports
TEMPLATES = ("card.html", "base.html", "_card_body.html", "_macros.html", "_panels.html",
             "_actions.html")

# Every name the card page's templates read from outside, and where it comes from. A name
# missing here fails the test: put what it depends on into CardInputs (or, for a true
# per-process constant, say so here).
READS: dict[str, tuple[str, ...] | str] = {
    "card": ("lead", "reference", "locale", "now"),  # placement.render_card builds it from these
    "_": ("locale",),  # flask-babel's catalog is chosen by the format locale
    "ui_lang": ("locale",),  # <html lang>
    "ui_dir": ("locale",),  # <html dir>
    "avatar_src": ("frame_origin",),  # filter: photos the CSP loads
    "static_url": "per process: content hashes of files that change only with a deploy",
    "b24jssdk": "per process: the vendored frame library's URL and integrity",
    "csp_nonce": "per response: a stand-in in the stored page, replaced by with_own_nonce",
    "bitrix_lang": ("locale",),  # the LANG the page's actions ask in (data-lc-lang)
}


def template_reads() -> set[str]:
    # A bare environment: Flask's own globals (request, g, config, url_for…) count as reads too.
    env = Environment(autoescape=True)
    names: set[str] = set()
    macros: set[str] = set()
    for name in TEMPLATES:
        source = (ROOT / "templates" / name).read_text(encoding="utf-8")
        tree = env.parse(source)
        names |= meta.find_undeclared_variables(tree)
        names |= {f.name for f in tree.find_all(nodes.Filter) if f.name not in DEFAULT_FILTERS}
        macros |= {m.name for m in tree.find_all(nodes.Macro)}
    return names - macros  # the templates' own macros (card.html imports _macros.html's)


def test_every_name_the_card_page_reads_is_accounted_for():
    assert template_reads() == set(READS)


def test_every_card_input_is_read_by_the_page():
    # "Exactly what the template reads": no field that only splits the cache.
    read = {field for source in READS.values() if isinstance(source, tuple) for field in source}
    assert read == {f.name for f in dataclasses.fields(CardInputs)}


# --- each input changed in turn ------------------------------------------------

LEAD = {
    "ID": "101",
    "TITLE": "Fleet telematics",
    "STATUS_ID": "NEW",
    "SOURCE_ID": "WEB",
    "HONORIFIC": "HNR_EN_1",
    "NAME": "Marta",
    "OPPORTUNITY": "0.00",
    "CURRENCY_ID": "XTS",
    "COMPANY_ID": "7",
    "CONTACT_ID": "15",
    "ASSIGNED_BY_ID": "2",
    "UF_CRM_COLOUR": "3",
    "DATE_CREATE": "2026-11-20T09:00:00+01:00",
}


def reference() -> ReferenceData:
    return ReferenceData(
        fields={"UF_CRM_COLOUR": {"type": "enumeration", "formLabel": "Colour",
                                  "items": [{"ID": "3", "VALUE": "Blue"}]}},
        statuses={"STATUS": [{"STATUS_ID": "NEW", "NAME": "Fresh"}],
                  "SOURCE": [{"STATUS_ID": "WEB", "NAME": "Website"}],
                  "HONORIFIC": [{"STATUS_ID": "HNR_EN_1", "NAME": "Ms."}]},
        currencies=[{"CURRENCY": "XTS", "FULL_NAME": "Test crowns"}],
        users={"2": {"ID": "2", "NAME": "Ben", "LAST_NAME": "Ortiz",
                     "PERSONAL_PHOTO": "http://a.example/upload/ben.png"}},
        companies={"7": {"ID": "7", "TITLE": "Nordwind"}},
        contacts={"15": {"ID": "15", "NAME": "Jon", "LAST_NAME": "Berg"}},
        context=LeadContext(),
    )


def base_inputs() -> CardInputs:
    return CardInputs(lead=copy.deepcopy(LEAD), reference=reference(), locale="en",
                      frame_origin="http://a.example", now="2026-12-01T12:00:00+00:00")


def _ref(**changes: object) -> Callable[[CardInputs], CardInputs]:
    def change(inputs: CardInputs) -> CardInputs:
        return dataclasses.replace(inputs, reference=dataclasses.replace(inputs.reference,
                                                                         **changes))
    return change


def _lead(**changes: object) -> Callable[[CardInputs], CardInputs]:
    return lambda inputs: dataclasses.replace(inputs, lead={**inputs.lead, **changes})


# One change per input, each one the page shows. A new CardInputs or ReferenceData field
# fails test_a_change_is_listed_for_every_input until it gets one here.
CHANGES: dict[str, Callable[[CardInputs], CardInputs]] = {
    "lead": _lead(TITLE="Fleet telematics, 60 vans"),
    "reference.fields": _ref(fields={"UF_CRM_COLOUR": {"type": "enumeration",
                                                        "formLabel": "Colour",
                                                        "items": [{"ID": "3", "VALUE": "Red"}]}}),
    "reference.statuses": _ref(statuses={"STATUS": [{"STATUS_ID": "NEW", "NAME": "Untouched"}]}),
    "reference.currencies": lambda i: _lead(OPPORTUNITY="5.00")(
        _ref(currencies=[{"CURRENCY": "XTS", "FULL_NAME": "Test marks"}])(i)),
    "reference.users": _ref(users={"2": {"ID": "2", "NAME": "Bea", "LAST_NAME": "Ortiz"}}),
    "reference.companies": _ref(companies={"7": {"ID": "7", "TITLE": "Südwind"}}),
    "reference.contacts": _ref(contacts={"15": {"ID": "15", "NAME": "Jan", "LAST_NAME": "Berg"}}),
    "locale": lambda i: dataclasses.replace(i, locale="de"),
    "frame_origin": lambda i: dataclasses.replace(i, frame_origin="http://b.example"),
    "reference.context": _ref(context=LeadContext(
        open_activities=[{"ID": "1", "SUBJECT": "Call back", "TYPE_ID": "2", "DIRECTION": "2",
                          "DEADLINE": "2026-12-03T10:00:00+01:00", "RESPONSIBLE_ID": "2"}])),
    "now": lambda i: dataclasses.replace(i, now="2027-03-01T12:00:00+00:00"),  # the lead's age
}


def input_names() -> set[str]:
    names = set()
    for f in dataclasses.fields(CardInputs):
        if f.name == "reference":
            names |= {f"reference.{r.name}" for r in dataclasses.fields(ReferenceData)}
        else:
            names.add(f.name)
    return names


def test_a_change_is_listed_for_every_input():
    assert set(CHANGES) == input_names()


@pytest.fixture
def app():
    app = Flask("card_inputs_render", root_path=str(ROOT))
    frontend.init_app(app)
    app.config["AVATAR_ANY_HTTPS"] = False  # so frame_origin decides which photos show
    app.jinja_env.globals["csp_nonce"] = security.csp_nonce
    return app


LANG_FOR = {"en": "en", "de": "de"}


def render(app: Flask, inputs: CardInputs) -> str:
    """The page placement.render_card makes, with the request state the view sets up."""
    with app.test_request_context("/placement", method="POST"):
        g.lang = LANG_FOR[inputs.locale]
        assert frontend.current_locale() == inputs.locale  # the view's own derivation
        if inputs.frame_origin:
            security.set_frame_origin(inputs.frame_origin)
        return placement.render_card(inputs)


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_each_input_changes_the_key_and_the_page(app, name):
    before = base_inputs()
    after = CHANGES[name](base_inputs())
    assert digest(after) != digest(before), f"{name} is not part of the reuse key"
    assert render(app, after) != render(app, before), f"{name} does not change the page"


def test_same_inputs_same_key_and_page(app):
    # The key is not just random: equal inputs (users listed in another order) share a page.
    a, b = base_inputs(), base_inputs()
    users = {"3": {"ID": "3", "NAME": "Cy"}, **a.reference.users}
    a = dataclasses.replace(a, reference=dataclasses.replace(a.reference, users=users))
    b = dataclasses.replace(b, reference=dataclasses.replace(b.reference,
                                                             users=dict(reversed(users.items()))))
    assert digest(a) == digest(b)
    assert render(app, a) == render(app, b)

