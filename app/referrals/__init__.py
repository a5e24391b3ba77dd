"""Referrals: a doctor refers a patient to a specialty, team or named doctor at an
admitted institution; the receiving side accepts (joining the patient's consultation
group), declines with a reason, or redirects; every transition is a ledger entry."""
