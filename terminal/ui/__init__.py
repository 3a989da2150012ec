"""The cashier app's widgets. They bind signals to :class:`terminal.core.Terminal` and never
hold a business rule: what may be sold, to whom, and what a problem means is decided by the
core; these modules decide only how it looks and which thread it runs on."""
