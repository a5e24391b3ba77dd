"""The stage file's initial cohort as the institutions table holds it.

A stage file lists the institutions a phase starts with and its identity providers. They
are seeded into the ``institutions`` table at deploy/seed time (``hub institutions
seed``; ``hub local up`` does it for the local platform) through the institutions
service's operator channel, so each seeded change is a ledger entry. Seeding admits only
institutions the table does not hold yet: from then on the table is the authority
(platform and institution admins change it through the API and ``hub institutions``),
and an institution removed there stays removed whatever the stage file says.
"""

from __future__ import annotations

from app.identity.affiliations import Institution, InstitutionStatus, ProviderMapping
from app.institutions.service import CohortInstitution
from infra.stage import Stage


def initial_cohort(stage: Stage) -> tuple[list[CohortInstitution], list[ProviderMapping]]:
    """(cohort institutions with their hospital codes, provider mappings) of ``stage``."""
    codes = {
        institution: (provider.name, code)
        for provider in stage.federation
        for code, institution in provider.hospital_codes
    }
    cohort = []
    for member in stage.cohort:
        provider, code = codes.get(member.id, (None, None))
        cohort.append(
            CohortInstitution(
                Institution(
                    member.id,
                    member.name,
                    member.type,
                    member.phase,
                    InstitutionStatus.ADMITTED,
                    provider,
                    code,
                ),
                provider,
                code,
            )
        )
    return cohort, [p.mapping() for p in stage.federation]
