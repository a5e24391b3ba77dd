"""The patient's sharing consent as a service: routes, Cedar-decided recording and the
in-force question groups and records ask (the pure model is :mod:`app.consent`)."""
