"""How a route reaches the service it needs without importing the code that built it.

The composition root (:func:`app.main.create_app`, with :mod:`app.dependencies`) builds
every service once per app and registers each under its class with :func:`provide`; a
route declares the one it needs as a typed dependency,
``Annotated[GroupService, Depends(provided(GroupService))]``. So a domain's router
imports its own service and lower layers only, and nothing below the composition root
imports it: the import contract (``[tool.importlinter]`` in ``pyproject.toml``) can hold
the domains in layers.

Guarantees: :func:`provide` is typed (the instance must be of the class it is registered
under); asking for a class the app did not register raises :class:`NotProvided`, which a
route may map to its own error (records without record storage) and is otherwise an
opaque 500.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from fastapi import FastAPI, Request

T = TypeVar("T")


class NotProvided(LookupError):
    """The app has no service registered under the class a route asked for."""


def _registry(app: Any) -> dict[type[Any], object]:
    registry: dict[type[Any], object] | None = getattr(app.state, "provided", None)
    if registry is None:
        registry = {}
        app.state.provided = registry
    return registry


def provide(app: FastAPI, kind: type[T], instance: T) -> None:
    """Register ``instance`` as the app's ``kind``, for routes that depend on it."""
    _registry(app)[kind] = instance


def withdraw(app: FastAPI, kind: type[Any]) -> None:
    """Remove the app's ``kind`` (routes depending on it then get :class:`NotProvided`)."""
    _registry(app).pop(kind, None)


# One dependency callable per class, so FastAPI resolves it once per request however many
# of a route's dependencies ask for it.
_dependencies: dict[type[Any], Callable[[Request], Any]] = {}


def provided(kind: type[T]) -> Callable[[Request], T]:
    """The FastAPI dependency that hands a route the app's ``kind``."""
    found = _dependencies.get(kind)
    if found is None:

        def dependency(request: Request) -> T:
            try:
                return cast(T, _registry(request.app)[kind])
            except KeyError:
                raise NotProvided(kind.__name__) from None

        dependency.__name__ = f"provided_{kind.__name__}"
        found = _dependencies.setdefault(kind, dependency)
    return cast(Callable[[Request], T], found)
