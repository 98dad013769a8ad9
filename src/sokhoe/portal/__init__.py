"""The citizen's health book (*sổ sức khỏe điện tử*): the services behind ``/portal``.

Each module does one thing a citizen asks for, through the caller's guarded repository like
every other service (the pages under ``web/pages/portal`` only carry them):
``devices`` the phones a citizen stays signed in on; ``selfdeclared`` how a declared item
is told from a facility's record and how far its check went; ``poster`` the A4 poster with the
ward's QR that leads residents to ``/portal/w/{ward}`` (``sokhoe portal ward-qr``); ``book`` the
health book of the profile shown (read whole by ``record``, each line's origin by ``sources``,
results in plain words by ``results``, codes in words by ``words``, prescriptions by
``prescriptions``), ``visit`` one visit of it; ``download`` the record as FHIR JSON, ``printed``
on paper (PDF) with the administrative data of ``administrative``; ``access_log`` who looked,
``concerns`` a citizen's concern about an access, ``glass_alerts`` the SMS after a
break-the-glass opening, ``notices`` each notice sent once; ``sharing`` share codes, consents
and sensitive records; ``family`` a parent's request to look after a child's book (confirmed
by the station); ``immunisation`` the expanded programme's schedule and where a child stands on
it; ``reminders`` the SMS before a due dose (``sokhoe portal remind``).
"""
