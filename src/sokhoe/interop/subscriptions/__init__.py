"""FHIR R4 Subscriptions (criteria + rest-hook): connected systems are told about changes to
their patients' records instead of polling. Registration checks and activates a
Subscription; the dispatcher follows the store's history and delivers with retries.
See: https://hl7.org/fhir/R4/subscription.html
"""

from sokhoe.interop.subscriptions.delivery import Backoff, HttpSender
from sokhoe.interop.subscriptions.dispatcher import Dispatcher, RoundReport
from sokhoe.interop.subscriptions.registration import EndpointPolicy, register, unregister

__all__ = [
    "Backoff",
    "Dispatcher",
    "EndpointPolicy",
    "HttpSender",
    "RoundReport",
    "register",
    "unregister",
]
