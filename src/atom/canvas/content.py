"""What each kind of canvas holds, with its bounds, and the one check every content goes through.

`validate(kind, content)` returns the normalised content or raises InvalidInput whose details name the
field (`content.series.1.values`): a chart whose series lengths do not match its labels, a form schema
that is not valid JSON Schema, a sheet formula that refers to itself or is too deep, and every size bound.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from atom.canvas import forms, sheets
from atom.canvas.models import CanvasKind
from atom.errors import InvalidInput

MAX_CONTENT_BYTES = 2_000_000
MAX_POINTS = 10_000
MAX_SERIES = 10
MAX_TEXT = 100_000

Text = Annotated[str, Field(max_length=MAX_TEXT)]
Short = Annotated[str, Field(max_length=200)]
Number = Annotated[float, Field(allow_inf_nan=False)]


class _Content(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MarkdownContent(_Content):
    text: Text = ""


class Series(_Content):
    name: Short = ""
    values: list[Number] = Field(max_length=MAX_POINTS)
    x: list[Number] | None = Field(default=None, max_length=MAX_POINTS, description="Scatter: the x of each value.")


class ChartContent(_Content):
    chart_type: Literal["line", "bar", "pie", "scatter"]
    labels: list[Short] = Field(default_factory=list, max_length=MAX_POINTS, description="Line, bar, pie: categories.")
    series: list[Series] = Field(min_length=1, max_length=MAX_SERIES)
    x_label: Short = ""
    y_label: Short = ""

    @model_validator(mode="after")
    def _lengths(self) -> ChartContent:
        for index, series in enumerate(self.series):
            where = f"series.{index}"
            if self.chart_type == "scatter":
                if series.x is None or len(series.x) != len(series.values):
                    got = "no x" if series.x is None else f"{len(series.x)} x"
                    raise ValueError(
                        f"{where}: a scatter series needs one x per value ({len(series.values)} values, {got})"
                    )
            elif series.x is not None:
                raise ValueError(f"{where}.x: only scatter charts take x values; use labels")
            elif self.labels and len(series.values) != len(self.labels):
                raise ValueError(
                    f"{where}.values: {len(series.values)} values for {len(self.labels)} labels; the lengths must match"
                )
            elif not self.labels and index > 0 and len(series.values) != len(self.series[0].values):
                raise ValueError(f"{where}.values: every series needs as many values as series 0")
        if self.chart_type == "pie":
            if len(self.series) != 1:
                raise ValueError("series: a pie chart has exactly one series")
            if any(v < 0 for v in self.series[0].values):
                raise ValueError("series.0.values: a pie chart's values cannot be negative")
        return self


SheetCell = str | float | int | bool | None


class SheetContent(_Content):
    columns: list[Short] = Field(default_factory=list, max_length=sheets.MAX_COLUMNS)
    rows: list[list[Annotated[SheetCell, Field(union_mode="left_to_right")]]] = Field(
        default_factory=list, max_length=sheets.MAX_ROWS
    )

    @model_validator(mode="after")
    def _cells(self) -> SheetContent:
        for r, row in enumerate(self.rows):
            if len(row) > sheets.MAX_COLUMNS:
                raise ValueError(f"rows.{r}: at most {sheets.MAX_COLUMNS} cells a row")
            for c, cell in enumerate(row):
                if isinstance(cell, str) and len(cell) > 2000:
                    raise ValueError(f"rows.{r}.{c}: a cell holds at most 2000 characters")
        return self


class FormContent(_Content):
    form_schema: dict[str, Any] = Field(alias="schema")
    description: Annotated[str, Field(max_length=2000)] = ""
    submit_label: Annotated[str, Field(max_length=60)] = "Submit"

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StatusItem(_Content):
    label: Short
    value: Short = ""
    state: Literal["ok", "warning", "error", "info", "pending"] = "info"
    detail: Annotated[str, Field(max_length=2000)] = ""


class StatusContent(_Content):
    items: list[StatusItem] = Field(default_factory=list, max_length=100)
    progress: Annotated[float, Field(ge=0, le=100)] | None = None


Email = Annotated[str, Field(max_length=320, pattern=r"^[^@\s<>]+@[^@\s<>]+$")]


class EmailContent(_Content):
    to: list[Email] = Field(default_factory=list, max_length=50)
    cc: list[Email] = Field(default_factory=list, max_length=50)
    subject: Annotated[str, Field(max_length=300)] = ""
    body: Text = ""


class TerminalContent(_Content):
    command: Annotated[str, Field(max_length=2000)] = ""
    lines: list[Annotated[str, Field(max_length=4000)]] = Field(default_factory=list, max_length=5000)
    exit_code: int | None = None


class CodeContent(_Content):
    language: Annotated[str, Field(max_length=40, pattern=r"^[A-Za-z0-9+#._-]*$")] = "text"
    filename: Annotated[str, Field(max_length=200)] = ""
    code: Annotated[str, Field(max_length=200_000)] = ""


class ComponentContent(_Content):
    component: Annotated[str, Field(min_length=1, max_length=100)]
    version: int = Field(ge=1)
    props: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _props(self) -> ComponentContent:
        if len(json.dumps(self.props, default=str)) > 16_000:
            raise ValueError("props: at most 16000 bytes of JSON")
        return self


MODELS: dict[CanvasKind, type[_Content]] = {
    CanvasKind.MARKDOWN: MarkdownContent,
    CanvasKind.CHART: ChartContent,
    CanvasKind.SHEET: SheetContent,
    CanvasKind.FORM: FormContent,
    CanvasKind.STATUS: StatusContent,
    CanvasKind.EMAIL: EmailContent,
    CanvasKind.TERMINAL: TerminalContent,
    CanvasKind.CODE: CodeContent,
    CanvasKind.COMPONENT: ComponentContent,
}


def _fields(exc: ValidationError, prefix: str) -> list[dict[str, str]]:
    fields = []
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        message = error["msg"]
        if error["type"] == "value_error" and ": " in message:  # our own checks name their field first
            text = message.removeprefix("Value error, ")
            where, _, message = text.partition(": ")
            loc = [*loc, *where.split(".")]
        field = ".".join([prefix, *loc]) if loc else prefix
        fields.append({"field": field, "message": message})
    return fields


def validate(kind: CanvasKind, content: Any, *, prefix: str = "content") -> dict[str, Any]:
    """The content, normalised, if it fits its kind; else InvalidInput naming each bad field."""
    if not isinstance(content, dict):
        raise InvalidInput(f"A {kind.value} canvas's content is a JSON object.", details={"field": prefix})
    if len(json.dumps(content, default=str)) > MAX_CONTENT_BYTES:
        raise InvalidInput(
            f"The content is larger than {MAX_CONTENT_BYTES} bytes.", code="CANVAS_TOO_LARGE", details={"field": prefix}
        )
    try:
        model = MODELS[kind].model_validate(content)
    except ValidationError as exc:
        fields = _fields(exc, prefix)
        named = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:3])
        raise InvalidInput(
            f"Invalid {kind.value} canvas: {named}.", code="INVALID_CANVAS_CONTENT", details={"fields": fields}
        ) from exc
    if isinstance(model, FormContent):
        forms.check_schema(model.form_schema)
    if isinstance(model, SheetContent):
        sheets.Sheet(model.rows)  # parses every formula: a bad one, a cycle or a chain too deep is refused here
    return model.model_dump(mode="json", by_alias=True)
