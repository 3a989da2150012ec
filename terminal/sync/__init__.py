"""Talking to the sync server: the HTTP client, one sync cycle, backoff and the background
worker. Only this package imports httpx, so ``pos-terminal sell`` never loads it."""
