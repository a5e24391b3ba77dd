"""Consultation messaging on a Matrix homeserver (Synapse) that the hub governs.

The hub does not run a chat server of its own: Synapse is the messaging engine and the
hub is its room authority through a Matrix application service. One room per
consultation group, end-to-end encryption (Megolm) on from creation, membership
decided by the hub and mirrored into the room; a membership change that the hub did not
decide is reverted. See ``docs/messaging.md``.

- :mod:`app.messaging.identifiers`: the hub's Matrix names (doctor accounts, group room
  aliases) and the application service namespaces that reserve them.
- :mod:`app.messaging.homeserver`: the homeserver configuration the project generates
  (pure); :mod:`app.messaging.runner` starts it locally with SQLite on loopback.
- :mod:`app.messaging.appservice`: the application service registration.
- :mod:`app.messaging.client`: the Matrix client-server calls the hub makes with its
  application service token.
- :mod:`app.messaging.repository`: what the hub remembers about accounts and rooms.
- :mod:`app.messaging.drift`: which observed membership changes the hub did not decide,
  and how each is reverted (pure).
- :mod:`app.messaging.service`: the room authority (accounts, rooms, membership,
  sessions, incoming transactions).
- :mod:`app.messaging.router`: the application service API the homeserver calls
  (transactions, ping).
- :mod:`app.messaging.e2e`: the doctor's end-to-end encrypted Matrix client.
"""
