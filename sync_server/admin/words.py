"""The words shown for the machine values pages display: states, flags, codes, roles, actions.

The database and the wire keep their codes (``credential_blocked``); a page shows the words
here, in the reader's language. Each is marked with ``N_`` so ``pybabel extract`` finds it
and translated when shown. A code with no entry is shown with its underscores as spaces (a
new code is readable, in English, until it gets words here: tests/admin/test_i18n.py lists
the codes of shared/protocol.py that have none).
"""

from __future__ import annotations

from ..i18n import N_, _

WORDS: dict[str, str] = {
    # wallet, bracelet, device, cashier, sale and payment states
    "active": N_("active"), "frozen": N_("frozen"), "closed": N_("closed"),
    "blocked": N_("blocked"), "revoked": N_("revoked"), "inactive": N_("inactive"),
    "applied": N_("applied"), "duplicate": N_("duplicate"), "conflict": N_("conflict"),
    "rejected": N_("rejected"), "pending": N_("pending"), "completed": N_("completed"),
    "failed": N_("failed"), "refunded": N_("refunded"), "charged_back": N_("charged back"),
    "refund_requested": N_("refund requested"), "credited": N_("credited"),
    "debited": N_("debited"), "held": N_("held"), "recorded": N_("recorded"),
    "online": N_("online"), "offline": N_("offline"), "void": N_("void"),
    "sale": N_("sale"), "reversed": N_("reversed"), "voided": N_("voided"),
    "created": N_("created"), "updated": N_("updated"), "unchanged": N_("unchanged"),
    "refused": N_("refused"),
    "assigned": N_("assigned"), "replaced_by": N_("replaced by"), "replaces": N_("replaces"),
    "reversal": N_("reversal"), "topup": N_("top-up"), "adjustment": N_("adjustment"),
    "opening": N_("opening balance"),
    "refund": N_("refund"), "chargeback": N_("chargeback"),
    "payment_credit": N_("gateway payment"),
    # sale flags
    "overdraft": N_("overdraft"), "credential_blocked": N_("blocked bracelet"),
    "credential_mismatch": N_("bracelet of another student"),
    "wallet_frozen": N_("wallet frozen"), "daily_limit_exceeded": N_("daily limit exceeded"),
    "price_mismatch": N_("price differs"), "clock_skew": N_("terminal clock wrong"),
    "sale_cap_exceeded": N_("over the largest single sale"),
    "restricted_item": N_("restricted item"),
    # refusal codes
    "wallet_unknown": N_("unknown wallet"), "wallet_other_school": N_("wallet of another school"),
    "wallet_closed": N_("wallet closed"), "total_mismatch": N_("total does not add up"),
    "void_target_unknown": N_("voided sale unknown"), "void_mismatch": N_("void does not match"),
    "void_twice": N_("already voided"), "product_unknown": N_("unknown product"),
    "cashier_unknown": N_("unknown cashier"), "seq_reused": N_("sequence number reused"),
    "balance_out_of_bounds": N_("balance out of bounds"),
    # HTTP errors (the error page's heading)
    "Bad Request": N_("Bad Request"), "Forbidden": N_("Forbidden"), "Not Found": N_("Not Found"),
    "Method Not Allowed": N_("Method Not Allowed"), "Conflict": N_("Conflict"),
    "Request Entity Too Large": N_("Request Entity Too Large"),
    "Too Many Requests": N_("Too Many Requests"),
    "Internal Server Error": N_("Internal Server Error"),
    "Service Unavailable": N_("Service Unavailable"),
    # form fields named in messages
    "offline_max_sale": N_("largest single sale"),
    "offline_max_unsynced_total": N_("cap on unsynced sales per terminal"),
    "offline_max_hours": N_("hours a terminal may sell without syncing"),
    "overdraft_limit": N_("overdraft allowed per wallet"),
    "low_balance_threshold": N_("low-balance alert below"),
    "amount": N_("amount"), "reason": N_("reason"), "name": N_("name"), "note": N_("note"),
    "price": N_("price"), "category": N_("category"), "pin": N_("PIN"),
    "allergen": N_("allergen"), "allergens": N_("allergens"),
    "daily_limit": N_("daily limit"), "new_uid": N_("new bracelet UID"), "uid": N_("UID"),
    "wallet_id": N_("wallet ID"), "email": N_("email"), "password": N_("password"),
    "balance": N_("balance"), "status": N_("status"), "display_name": N_("name"),
    "grade": N_("grade"), "homeroom": N_("homeroom"), "flags": N_("flags"), "seq": N_("seq"),
    "txn_id": N_("transaction"), "op_id": N_("operation"), "active_flag": N_("active"),
    "expires_in_hours": N_("expires in (hours)"), "student_number": N_("student number"),
    # the roster's fields and year-end (issue 16)
    "student_status": N_("student status"), "parent_email": N_("parent email"),
    "parent_phone": N_("parent phone"), "language": N_("language"), "left_at": N_("left on"),
    "transfer": N_("transfer"), "transferred": N_("moved to a sibling"),
    "to_wallet": N_("to student"), "bracelets_blocked": N_("bracelets blocked"),
    "student_created": N_("student added"), "student_updated": N_("student edited"),
    "student_left": N_("student left (year-end)"),
    # audit target types
    "wallet": N_("student"), "device": N_("terminal"), "school": N_("school"),
    "product": N_("product"), "cashier": N_("cashier"), "roster": N_("roster"),
    "credential": N_("bracelet"), "enrollment_code": N_("enrollment code"),
    "admin_user": N_("admin account"), "payment": N_("payment"),
    "payment_event": N_("payment event"),
    # roles
    "platform_admin": N_("platform admin"), "school_admin": N_("school admin"),
    "school_manager": N_("school manager"), "school_viewer": N_("school viewer"),
    # audit actions
    "login": N_("signed in"), "login_failed": N_("sign-in failed"), "logout": N_("signed out"),
    "bracelet_blocked": N_("bracelet blocked"), "bracelet_replaced": N_("bracelet replaced"),
    "bracelet_assigned": N_("bracelet assigned"),
    # the bracelet inventory: states, history actions, block reasons, audit actions
    "in_stock": N_("in stock"), "delivered": N_("delivered"), "retired": N_("retired"),
    "stocked": N_("received into stock"), "lost": N_("lost"), "damaged": N_("damaged"),
    "replaced": N_("replaced"), "left": N_("student left"), "other": N_("other"),
    "bracelet_delivered": N_("bracelet delivered"), "bracelet_retired": N_("bracelet retired"),
    "bracelets_stocked": N_("bracelets received into stock"),
    "roster_import": N_("import"),
    "cashier_created": N_("cashier added"), "cashier_updated": N_("cashier changed"),
    "conflict_reviewed": N_("conflict reviewed"), "device_revoked": N_("terminal revoked"),
    "enrollment_code_created": N_("enrollment code created"),
    "missing_seq_reviewed": N_("missing sequence reviewed"),
    "payment_credited": N_("payment credited"),
    "payment_refund_requested": N_("payment marked for refund"),
    "payment_reviewed": N_("payment reviewed"), "product_created": N_("product added"),
    "product_updated": N_("product changed"), "products_reordered": N_("products reordered"),
    "sale_reversed": N_("sale reversed"), "sale_reviewed": N_("sale reviewed"),
    "settings_updated": N_("settings changed"),
    "wallet_restrictions_set": N_("restrictions changed"),
    "wallet_topup": N_("top-up"), "wallet_adjustment": N_("adjustment"),
    "wallet_updated": N_("student changed"), "roster_imported": N_("roster imported"),
    "wallet_unfrozen": N_("wallet unfrozen"), "product_deactivated": N_("product deactivated"),
    "product_activated": N_("product activated"), "cashier_pin_reset": N_("cashier PIN reset"),
    "cashier_deactivated": N_("cashier deactivated"),
    "cashier_activated": N_("cashier activated"),
    # staff and passwords (admin/users.py, admin/account.py, admin/password_links.py) and the
    # command line (cli_audit.py)
    "user_created": N_("user added"), "user_role_changed": N_("user's role changed"),
    "user_deactivated": N_("user deactivated"), "user_reactivated": N_("user reactivated"),
    "password_reset_created": N_("set-password link made"),
    "password_set_by_link": N_("password set through a link"),
    "password_changed": N_("own password changed"),
    "password_change_failed": N_("own password change refused"),
    "role": N_("role"),
    "school_created": N_("school added"), "admin_created": N_("admin account added"),
    "database_restored": N_("database restored"),
    # outbound webhooks (admin/webhooks.py, admin/webhook_deliveries.py)
    "webhook_endpoint": N_("webhook endpoint"), "webhook_delivery": N_("webhook delivery"),
    "webhook_endpoint_created": N_("webhook endpoint added"),
    "webhook_endpoint_updated": N_("webhook endpoint changed"),
    "webhook_endpoint_activated": N_("webhook endpoint activated"),
    "webhook_endpoint_deactivated": N_("webhook endpoint deactivated"),
    "webhook_secret_rotated": N_("webhook signing secret replaced"),
    "webhook_test_sent": N_("webhook test event sent"),
    "webhook_redelivered": N_("webhook delivery sent again"),
}


def word(code: object) -> str:
    """The words for a code in the page's language (the code itself, spaced, if unknown)."""
    if code is None:
        return ""
    text = str(code)
    known = WORDS.get(text)
    return _(known) if known else text.replace("_", " ")


# Why a payment event is held: the ledger's own sentences (sync_server/ledger/payments.py
# HOLD_WORDS), marked here so they are extracted; the payment page shows them through
# hold_words(). tests/admin/test_i18n.py checks this list still matches the ledger's.
HOLD_SENTENCES = (
    N_("the event has no payment reference"),
    N_("no wallet with this ID exists"),
    N_("the currency is not the school's currency"),
    N_("the currency differs from the payment's earlier events"),
    N_("the event names another wallet than the payment's first event"),
    N_("the amount differs from the payment's earlier events"),
    N_("the amount is above the server's ceiling for one top-up"),
    N_("the payment was reported failed before this completion"),
    N_("the payment was reported failed after it was credited"),
    N_("the payment is already waiting for an admin's decision"),
    N_("nothing was credited for this payment, so nothing can be refunded"),
    N_("this would take back more than the payment credited"),
    N_("this would take the wallet's balance outside the server's bounds; nothing was moved"),
)


def hold_words() -> dict[str, str]:
    """The ledger's hold reasons in the page's language."""
    from ..ledger import bounds
    from ..ledger.payments import HOLD_WORDS
    words = {code: _(text) for code, text in HOLD_WORDS.items()}
    words[bounds.CODE] = _(HOLD_SENTENCES[-1])  # the ledger's names its bounds in minor units
    return words
