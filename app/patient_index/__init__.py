"""The patient index as a service: routes to register, find, link, unlink and correct."""
