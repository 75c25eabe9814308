"""The service catalog: which services exist and which problems people can report."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class CatalogError(ValueError):
    """A catalog file that cannot be used."""


@dataclass(frozen=True)
class Problem:
    """One problem type people can report, e.g. `login` / "Login"."""

    slug: str
    label: str


@dataclass(frozen=True)
class Service:
    """One service with its category and problem types."""

    slug: str
    name: str
    category: str
    category_name: str
    problems: tuple[Problem, ...]

    @property
    def problem_slugs(self) -> tuple[str, ...]:
        return tuple(p.slug for p in self.problems)

    def to_dict(self) -> dict:
        """Return the API representation."""
        return {
            "slug": self.slug,
            "name": self.name,
            "category": self.category,
            "problems": list(self.problem_slugs),
            "problem_labels": {p.slug: p.label for p in self.problems},
        }


@dataclass(frozen=True)
class Catalog:
    """All services, in catalog order."""

    services: tuple[Service, ...]

    def get(self, slug: str) -> Service | None:
        """Return the service with this slug, or None."""
        return self._by_slug().get(slug)

    def slugs(self) -> list[str]:
        return [s.slug for s in self.services]

    def _by_slug(self) -> dict[str, Service]:
        cache = self.__dict__.get("_index")
        if cache is None:
            cache = {s.slug: s for s in self.services}
            object.__setattr__(self, "_index", cache)
        return cache


def _problems(raw, where: str) -> tuple[Problem, ...]:
    if not isinstance(raw, list) or not raw:
        raise CatalogError(f"{where}: problems must be a non-empty list")
    out = []
    for item in raw:
        slug = item.get("slug") if isinstance(item, dict) else None
        if not isinstance(slug, str) or not SLUG.match(slug):
            raise CatalogError(f"{where}: bad problem slug {slug!r}")
        out.append(Problem(slug=slug, label=str(item.get("label") or slug)))
    if len({p.slug for p in out}) != len(out):
        raise CatalogError(f"{where}: duplicate problem slugs")
    return tuple(out)


def parse_catalog(data: dict) -> Catalog:
    """Build a Catalog from parsed TOML, validating slugs and references."""
    categories = data.get("categories", {})
    services = []
    for i, raw in enumerate(data.get("services", [])):
        where = f"services[{i}]"
        slug = raw.get("slug")
        if not isinstance(slug, str) or not SLUG.match(slug):
            raise CatalogError(f"{where}: bad slug {slug!r} (lower-case letters, digits, -)")
        category = raw.get("category", "")
        cat = categories.get(category)
        if cat is None:
            raise CatalogError(f"{where} ({slug}): unknown category {category!r}")
        problems = _problems(raw.get("problems") or cat.get("problems"), f"{where} ({slug})")
        services.append(
            Service(
                slug=slug,
                name=str(raw.get("name") or slug),
                category=category,
                category_name=str(cat.get("name") or category),
                problems=problems,
            )
        )
    if not services:
        raise CatalogError("the catalog lists no services")
    if len({s.slug for s in services}) != len(services):
        raise CatalogError("the catalog lists a service slug twice")
    return Catalog(services=tuple(services))


def load_catalog(path: Path) -> Catalog:
    """Read and validate a catalog TOML file."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise CatalogError(f"catalog file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: {exc}") from None
    return parse_catalog(data)
