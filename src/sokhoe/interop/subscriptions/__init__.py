"""FHIR R4 Subscriptions (criteria + rest-hook): connected systems are told about changes to
their patients' records instead of polling. Registration checks and activates a
Subscription; the dispatcher follows the store's history and delivers with retries. Only
connected systems subscribe, and only to endpoints on their allow-list (``endpoints``).
See: https://hl7.org/fhir/R4/subscription.html
"""

from sokhoe.interop.subscriptions.allowlist import AllowList
from sokhoe.interop.subscriptions.delivery import Backoff, HttpSender, Notification
from sokhoe.interop.subscriptions.dispatcher import Dispatcher, RoundReport
from sokhoe.interop.subscriptions.endpoints import EndpointPolicy, EndpointRefused
from sokhoe.interop.subscriptions.registration import register, unregister

__all__ = [
    "AllowList",
    "Backoff",
    "Dispatcher",
    "EndpointPolicy",
    "EndpointRefused",
    "HttpSender",
    "Notification",
    "RoundReport",
    "register",
    "unregister",
]
