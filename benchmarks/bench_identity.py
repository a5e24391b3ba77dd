"""Benchmark of who-is-calling: what placing a caller from the institutions table costs.

Every request now reads the caller's enrolment, institution and affiliation from the
``institutions`` table, strongly consistent and uncached (so an admission or a removal
takes effect on the next request): two DynamoDB round trips that the previous design
(institution from the pool, cached) did not make. This measures, in one run, on a moto
server on loopback:

- **baseline**: verifying the access token alone (signature, claims), the floor every
  request pays;
- **cached profile only**: verification plus the pool profile and register views as
  they are served from their caches (what the old design paid per request in steady
  state);
- **full**: ``Authenticator.authenticate`` as the service runs it: the above plus the two
  table round trips.

It prints medians and the ratio of each to the baseline. moto's round trips on loopback
are far slower than DynamoDB's in-region (single-digit milliseconds), so the absolute
figures overstate the cost; the ratio says how much of a request's authentication the
table reads are. No target is asserted.

Run: ``.venv/bin/python -m benchmarks identity [--requests N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence


def _median_ms(call: Callable[[], object], n: int) -> float:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args(argv)

    import boto3

    from app import local
    from app.dependencies import build_operator_institutions, build_services
    from app.identity.affiliations import Institution, InstitutionStatus, InstitutionType
    from app.identity.register import import_register
    from app.institutions.service import OPERATOR, CohortInstitution
    from app.settings import Settings
    from infra.emulator.server import default_emulator_credentials, start_moto_server

    default_emulator_credentials()
    server, endpoint = start_moto_server()
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        session = boto3.session.Session(region_name="ap-east-1")
        cognito = session.client("cognito-idp")
        names = {k: f"bench-identity-{k}" for k in local.TABLE_KEYS}
        local.create_service_tables(session.client("dynamodb"), names)
        pool_id, client_id = local.create_user_pool(cognito, "bench-identity")
        settings = Settings(
            mode="local",
            table_register=names["register"],
            table_groups=names["groups"],
            table_records=names["records"],
            table_ledger=names["ledger"],
            table_institutions=names["institutions"],
            cognito_user_pool_id=pool_id,
            cognito_client_id=client_id,
            cognito_issuer=f"https://cognito-idp.ap-east-1.amazonaws.com/{pool_id}",
            registration_cache_seconds=300,
        )
        services = build_services(settings, session=session)
        import_register(
            services.register,
            "Registration No.,Name (English),Name (Chinese),Address,Qualifications\n"
            "M61001,SYNTHETIC Bench,合成,1 Bench Road,MB BS (Synthetic)\n",
        )
        operator = build_operator_institutions(
            session.client("dynamodb"),
            services.register,
            institutions_table=names["institutions"],
            ledger_table=names["ledger"],
            phase=1,
        )
        alliance = Institution(
            "bench-alliance", "Bench", InstitutionType.SPECIALIST_ALLIANCE, 1,
            InstitutionStatus.ADMITTED,
        )  # fmt: skip
        operator.seed(OPERATOR, [CohortInstitution(alliance)], [])
        password = "Bench-Synthetic-Passw0rd!"
        local.create_user(cognito, pool_id, "bench-doctor", password, groups=["doctor"])
        token = local.login(cognito, pool_id, client_id, "bench-doctor", password)["AccessToken"]
        attrs = cognito.admin_get_user(UserPoolId=pool_id, Username="bench-doctor")
        sub = next(a["Value"] for a in attrs["UserAttributes"] if a["Name"] == "sub")
        operator.set_affiliation(OPERATOR, "bench-alliance", "M61001", ("doctor",), bind_sub=sub)

        authenticator = services.authenticator
        authenticator.authenticate(token)  # warm the caches and the JWKS

        def cached_only() -> object:
            verified = authenticator.verifier.verify(token)
            authenticator._profile_cache.get(verified.username, authenticator.profiles.profile)
            return authenticator._register_cache.get("M61001", authenticator._load_register)

        n = args.requests
        baseline = _median_ms(lambda: authenticator.verifier.verify(token), n)
        cached = _median_ms(cached_only, n)
        full = _median_ms(lambda: authenticator.authenticate(token), n)
        print(f"## Who is calling ({n} requests each, moto on loopback)")
        print(f"{'':34}median ms  ratio to baseline")
        print(f"{'token verification (baseline)':34}{baseline:9.3f}  1.0x")
        print(f"{'+ cached pool profile, register':34}{cached:9.3f}  {cached / baseline:.1f}x")
        print(f"{'+ institutions table (full)':34}{full:9.3f}  {full / baseline:.1f}x")
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
