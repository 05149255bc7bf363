"""Errors as data: every problem is collected, then reported together."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Diagnostic:
    """One problem with one layer (or with the file when ``layer`` is empty)."""

    level: str  # "error" or "warning"
    code: str
    layer: str
    matlab_class: str
    message: str
    hint: str = ""

    def render(self) -> str:
        where = f"layer '{self.layer}' ({self.matlab_class}): " if self.layer else ""
        text = f"{where}{self.message}"
        return f"{text} {self.hint}".strip() if self.hint else text


class ConversionError(Exception):
    """A conversion that cannot go on; carries every diagnostic found."""

    def __init__(
        self,
        message: str,
        *,
        hint: str = "",
        diagnostics: tuple[Diagnostic, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.diagnostics = diagnostics

    def render(self) -> str:
        lines = [self.message]
        lines += [f"  - {d.render()}" for d in self.diagnostics]
        if self.hint:
            lines.append(self.hint)
        return "\n".join(lines)


def error(
    code: str, layer: str, matlab_class: str, message: str, hint: str = ""
) -> Diagnostic:
    return Diagnostic(
        level="error",
        code=code,
        layer=layer,
        matlab_class=matlab_class,
        message=message,
        hint=hint,
    )
