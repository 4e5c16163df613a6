"""flows: the stories one request tells — install, events, the lead tab, reconnect, work with
a portal's stored grant — and the services one app instance wires together. Imports card,
bitrix24, storage and core; never web."""
