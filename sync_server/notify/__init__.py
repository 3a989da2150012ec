"""Outbound webhooks: events a school's systems hear of (wallet.low_balance, payment.credited,
bracelet.blocked, sale.applied), written to an outbox in the transaction of the change and
delivered at least once to each subscribed endpoint by a job."""
