"""The citizen's health book (*sổ sức khỏe điện tử*): the services behind ``/portal``.

Each module does one thing a citizen asks for, through the caller's guarded repository like
every other service (the pages under ``web/pages/portal`` only carry them):
``devices`` the phones a citizen stays signed in on; ``selfdeclared`` how a declared item
is told from a facility's record and how far its check went; ``family`` a parent's request to
look after a child's book (confirmed by the station); ``immunisation`` the expanded programme's
schedule and where a child stands on it; ``reminders`` the SMS before a due dose (``cli``:
``sokhoe portal remind``).
"""
