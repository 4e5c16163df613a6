"""storage: the database engine and its migrations, the portal store, the event log, the grant
journal, the token key ring, the shared cache and the rate-limit buckets. Imports only core."""
