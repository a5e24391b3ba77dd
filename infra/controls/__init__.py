"""What a control is, once, for the policy pack and post-deploy verification alike.

- ``result``: the one result type (:class:`~infra.controls.result.Result`) and status
  vocabulary (``pass``, ``fail``, ``not_applicable``) every rule returns;
- ``policy_documents``: predicates over IAM and resource policy statements (TLS-only
  bucket policies, wildcard grants, who may invoke a function);
- ``predicates``: predicates over resource settings (key rotation, default encryption,
  public access blocks, trail settings, MFA, the API's TLS policy, log retention...);
- ``catalogue``: the ISO 27799, Cap. 486, CIS AWS and AWS FSBP requirements and the
  controls that evidence them, each defined once.

The policy pack (``infra.policies``) adapts declared Pulumi inputs to these predicates,
verification (``infra.verify``) adapts boto3 replies; each binds its rules to controls
from the catalogue. This package imports neither, nor Pulumi, nor boto3.
"""
