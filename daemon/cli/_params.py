"""Argument types checked before a command runs: a bad value exits 2 with click's usage error naming
the argument (``Invalid value for 'NUMBER': …``), as for any other malformed argument."""

from __future__ import annotations

from typing import Any

import click

__all__ = ["ENTERPRISE_NUMBER", "checked_payment_field"]


class _EnterpriseNumber(click.ParamType):
    """A CBE/KBO enterprise number in any common notation, passed on as its ten digits (the form
    stored, so a command comparing numbers matches whatever notation was typed)."""

    name = "enterprise number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from daemon.ebox import InvalidEnterpriseNumber, parse_enterprise_number  # noqa: PLC0415 - lazy CLI imports

        try:
            return parse_enterprise_number(value).canonical
        except InvalidEnterpriseNumber as exc:
            self.fail(f"{value!r} is not an enterprise number: {exc.reason}", param, ctx)


ENTERPRISE_NUMBER = _EnterpriseNumber()


def checked_payment_field(name: str) -> Any:
    """A click callback refusing a value ``eboxd payment edit`` could never store (amount, date), with
    the same rules as the edit itself."""

    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        from daemon.payments.manage import PaymentRefused, validate_changes  # noqa: PLC0415

        if value is not None:
            try:
                validate_changes({name: value})
            except PaymentRefused as exc:
                raise click.BadParameter(str(exc), ctx, param) from None
        return value

    return check
