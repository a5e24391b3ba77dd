"""Notifications: the outbox delivered.

- :mod:`app.notifications.preferences`: how a doctor wants off-line notices (email or
  SMS), stored with the doctor;
- :mod:`app.notifications.channels`: SNS delivery (a doctor's email through the
  notification topic's filtered subscription, SMS to their phone; security alarms to the
  security topic);
- :mod:`app.notifications.cards`: the hub's own Matrix device, posting record cards;
- :mod:`app.notifications.handlers`: one handler per outbox kind, for
  :class:`app.outbox.OutboxDispatcher`;
- :mod:`app.notifications.service`, ``router``, ``schemas``: the preference route.
"""
