"""Runtimes that drive the processor: local (asyncio, one process) and Faust (Kafka)."""
