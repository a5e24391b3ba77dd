"""Doctor identity: token verification, the Medical Council register, Cognito triggers."""
