"""core: what every layer may use — settings, the error family, logging and redaction, the
outage breaker, and the rate-limit contract. Imports nothing else of Lead Card."""
