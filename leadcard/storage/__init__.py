"""storage: everything Lead Card keeps. Imports only core.

``db``               the engine (SQLite or PostgreSQL), its deadlines, the one translation of
                     database failures into the error family (`guarded`), the migrations
``tables``           the portal store's tables, as the migrations made them
``portals``          `PortalStore`, the door flows and the CLI use: reads and writes of
                     portals and their encrypted tokens (`records` has the types it returns)
``refresh``          single-flight refresh of a stored grant (row lock, journal, retry)
``grant_journal``    the local journal of renewed grants not yet committed
``viewer_renewals``  single-flight renewal of a viewer's AUTH_ID (`ViewerTokens`)
``oauth_states``     one-time states of the reconnect flow
``key_rotation``     re-encryption of every stored secret under the newest key
``keyring``          the token key ring (Fernet keys, newest first)
``event_log``        events already processed (the repeat filter for /events)
``rest_log``         the REST log: every HTTP attempt to Bitrix24, bodies redacted+encrypted
``cache``            the shared TTL cache of per-portal reference data
``buckets``          the rate-limit buckets (SQL, Redis, Redis with the database as fallback)
"""
