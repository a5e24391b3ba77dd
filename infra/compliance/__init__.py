"""The compliance report an assessor can use, per stack and for the hub.

- ``model``: the report as data (header, summary, scope, frameworks in clause order,
  controls with their checks, evidence, gaps and remediation, the audit ledger);
- ``markdown``, ``html`` (Jinja2, autoescaped), ``pdf`` (reportlab, with the diagrams
  drawn from their SVG by svglib): three renderings of the same model, all local;
- ``history``: each report kept, content-addressed, signed with the stack's ledger
  signing key (KMS, ECDSA P-256), locally and in the Object Lock audit bucket, with a
  diff against the previous one;
- ``write``: what ``hub verify`` and ``hub report`` call.
"""
