"""card: a lead and its reference data → the card's view-model, localized; rendered-card
reuse. Pure: no network, no database. Imports only core.

    build.py       build_card(lead, reference, locale) -> Card: header, sections, the rest
    model.py       the view-model (Card, Section, Field, Value, Stage) and ReferenceData
    sections/      one builder per section, (Context, Header) -> Shown; SECTIONS lists them
    header.py      title, stage pill, amount, person, company
    extra.py       "Show all fields": filled fields no section accounts for
    context.py     one build's inputs and the lookups sections share (users, CRM links, statuses)
    multifield.py  PHONE / EMAIL / WEB / IM / LINK values
    fields.py      the lead's field catalogue (labels, kinds, USER_FIELDS) and what to fetch
    values.py      one value → safe text: ids, flags, colours, links, BB-code/HTML
    i18n.py        Bitrix24 LANG → locales, catalogs, number/date/money formatting
    rendered.py    CardInputs and the per-process store of rendered cards keyed on them

A new section is a module in sections/ plus one line in sections.SECTIONS.
"""
