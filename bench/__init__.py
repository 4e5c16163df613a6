"""Benchmarks of Lead Card against the local Bitrix24 simulator (`python -m bench.run`)."""
