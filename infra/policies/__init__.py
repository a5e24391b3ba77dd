"""Pre-deploy policy pack (pulumi-policy / CrossGuard) for the Health Collaboration Hub.

``rules`` holds the pure rule functions, ``pack`` binds them to severity, controls and
remediation and evaluates captured stacks; ``__main__`` is the CrossGuard entry point and
starts a gRPC server when run, so nothing else may import it.
"""
