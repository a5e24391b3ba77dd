"""Who is calling: token verification, the Medical Council register, the placement of an
account from authoritative data (affiliations, federation), and the Cognito triggers."""
