"""bitrix24: speaking to Bitrix24 — the OAuth server client, portal REST (calls, batch, the
error family, retries, the bucket wait), outbound HTTP, and parsing what Bitrix24 POSTs to
us. Imports only core."""
