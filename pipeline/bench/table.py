"""STAND-IN until the real table lands (another engineer writes it): the names and shapes
`pipe bench` calls, the simplest text that shows every figure."""

from __future__ import annotations

from pipeline.bench.figures import Figures


def _cell(value: object, fmt: str = "{}") -> str:
    return "–" if value is None else fmt.format(value)


def _row(f: Figures) -> str:
    return " | ".join(
        [
            f.at[:19],
            f.backend,
            f.model,
            _cell(f.context_size),
            _cell(f.gpu_layers),
            f.test,
            f"{f.seconds:.2f}s",
            _cell(f.prompt_tokens),
            _cell(f.prompt_per_second, "{:.1f}"),
            _cell(f.generated_per_second, "{:.1f}"),
            _cell(f.first_token_seconds, "{:.2f}"),
            _cell(f.overhead_ms, "{:.1f}"),
        ]
    )


HEADER = (
    "at | backend | model | contextsize | gpulayers | test | seconds | prompt tokens"
    " | prompt t/s | generated t/s | first token s | overhead ms"
)


def render_table(figures: list[Figures]) -> str:
    return "\n".join([HEADER, *(_row(f) for f in figures)]) + "\n"


def render_history(figures: list[Figures]) -> str:
    return render_table(figures)
