"""The words of the emails parents receive, in the student's language (English or Arabic).

Kept here as one small template per language rather than in the console's gettext catalog:
an email is read far from the console, by a parent, and its wording is reviewed as a whole
letter, not string by string. Amounts are formatted as the console formats them
(:func:`sync_server.admin.formatting.money`: CLDR, Western digits in both languages).
"""

from __future__ import annotations

from dataclasses import dataclass

LANGUAGES = ("ar", "en")
# Schools that keep these currencies write to parents in Arabic unless a student's language
# says otherwise; any other school writes in English.
ARABIC_CURRENCIES = frozenset({"SAR", "AED", "KWD", "BHD", "OMR", "QAR", "JOD", "EGP"})


@dataclass(frozen=True, slots=True)
class Letter:
    subject: str
    body: str


def language_for(student_language: str | None, currency: str) -> str:
    """The student's own language when set, else Arabic for a school in an Arabic-speaking
    country (told by its currency), else English."""
    if student_language in LANGUAGES:
        return student_language
    return "ar" if currency.upper() in ARABIC_CURRENCIES else "en"


_LOW_BALANCE = {
    "en": Letter(
        subject="{school}: {student}'s cafeteria balance is low",
        body=("Dear parent,\n\n"
              "The cafeteria balance of {student} at {school} is now {balance}, below "
              "{threshold}.\n\n"
              "Please top up the balance so that {student} can keep buying meals.\n\n"
              "This is an automatic message from the school cafeteria; you receive at most "
              "one a day.\n\n{school}\n")),
    "ar": Letter(
        subject="{school}: رصيد المقصف الخاص بـ {student} منخفض",
        body=("ولي الأمر الكريم،\n\n"
              "أصبح رصيد {student} في مقصف {school} الآن {balance}، وهو أقل من "
              "{threshold}.\n\n"
              "نرجو شحن الرصيد حتى يتمكن {student} من الاستمرار في شراء الوجبات.\n\n"
              "هذه رسالة آلية من مقصف المدرسة، ولا تصلك أكثر من مرة واحدة في اليوم.\n\n"
              "{school}\n")),
}


def low_balance(language: str, *, student: str, school: str, balance: int, threshold: int,
                currency: str) -> Letter:
    """The low-balance email in ``language`` (``ar`` or ``en``)."""
    # Imported here: the ledger imports this module, and the console package imports the ledger.
    from ..admin.formatting import money

    letter = _LOW_BALANCE[language if language in _LOW_BALANCE else "en"]
    values = {"student": student, "school": school,
              "balance": money(balance, currency, language),
              "threshold": money(threshold, currency, language)}
    # One line: a name cannot start a header of its own.
    subject = letter.subject.format(**values).replace("\r", " ").replace("\n", " ")
    return Letter(subject=subject, body=letter.body.format(**values))
