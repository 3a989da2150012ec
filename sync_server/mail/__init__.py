"""Email to parents and staff: a queue in the database, sent by a job through SMTP
(aiosmtplib), so a slow or absent mail server never holds up a sale or a page."""
