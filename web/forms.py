"""The report form on a service page: problem, country and optional subdivision, comment."""

from __future__ import annotations

from functools import lru_cache

import pycountry
from flask import request
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, TextAreaField
from wtforms.validators import InputRequired, ValidationError

from detector.regions import GLOBAL
from store.catalog import Service
from web.geo import client_country
from web.ingest import MAX_COMMENT, Invalid, clean_comment

UNKNOWN = ("", "Not sure / prefer not to say")
WHOLE_COUNTRY = ("", "Whole country")


@lru_cache(maxsize=1)
def country_choices() -> tuple[tuple[str, str], ...]:
    """Every ISO 3166-1 country as (alpha-2, name), by name, after the 'not sure' choice."""
    countries = sorted(
        ((c.alpha_2, getattr(c, "common_name", None) or c.name) for c in pycountry.countries),
        key=lambda c: c[1],
    )
    return (UNKNOWN, *countries)


@lru_cache(maxsize=512)
def subdivision_choices(country: str) -> tuple[tuple[str, str], ...]:
    """The ISO 3166-2 subdivisions of a country as (code, name), by name."""
    if not country:
        return ()
    subs = pycountry.subdivisions.get(country_code=country) or []
    return tuple(sorted(((s.code, s.name) for s in subs), key=lambda s: s[1]))


class ReportForm(FlaskForm):
    """I have a problem with <service>: what, where, and an optional comment."""

    problem = RadioField(
        "What is not working?", validators=[InputRequired("Choose what is not working.")]
    )
    country = SelectField("Country")
    subdivision = SelectField("State or region (optional)", validate_choice=False)
    comment = TextAreaField(f"Comment (optional, up to {MAX_COMMENT} characters)")

    def validate_subdivision(self, field: SelectField) -> None:
        if field.data and field.data not in dict(subdivision_choices(self.country.data or "")):
            raise ValidationError(
                "That region is not in the chosen country: choose one of "
                "its regions, or the whole country."
            )

    def validate_comment(self, field: TextAreaField) -> None:
        try:
            field.data = clean_comment(field.data or "")
        except Invalid as exc:
            raise ValidationError(exc.message.capitalize() + ".") from None

    @property
    def region(self) -> str:
        """The reporter's region: the subdivision, else the country, else `*` (unknown)."""
        return self.subdivision.data or self.country.data or GLOBAL

    @property
    def csrf_failed(self) -> bool:
        """Whether validation failed on the CSRF token (answered 400, not re-rendered)."""
        token = getattr(self, "csrf_token", None)
        return bool(token is not None and token.errors)


def report_form_for(service: Service) -> ReportForm:
    """Build the form for a service; the country is pre-filled from the client's IP or
    Accept-Language on first display and always changeable. On POST it reads request.form."""
    guess = client_country(request.remote_addr, request.accept_languages.values()) or ""
    form = ReportForm(data={"country": guess, "subdivision": ""})
    form.problem.choices = [(p.slug, p.label) for p in service.problems]
    form.country.choices = list(country_choices())
    form.subdivision.choices = [WHOLE_COUNTRY, *subdivision_choices(form.country.data or "")]
    return form
