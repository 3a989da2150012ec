"""The cafeteria terminal: durable offline sale queue, offline rules, sync client, cashier app.

Only ``terminal/ui``, ``terminal/readers`` and the app entry point may import Qt.
"""
