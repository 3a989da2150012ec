"""Bracelet readers behind one interface (:class:`terminal.readers.base.BraceletReader`)."""
