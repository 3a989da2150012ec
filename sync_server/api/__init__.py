"""The device API (``/api/v1``) and the payment webhook."""
