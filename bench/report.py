"""The table every benchmark prints: one row per measure, Stopline against its baseline."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def print_table(rows: list[dict], title: str = "Stopline against bare Temporal") -> None:
    table = Table(title=title, show_lines=True)
    for column in ("benchmark", "measure", "Stopline", "baseline", "ratio", "target", "met"):
        table.add_column(column, overflow="fold")
    for row in rows:
        met = row.get("met")
        table.add_row(
            row["benchmark"], row["measure"], str(row.get("stopline", "")), str(row.get("baseline", "")),
            "" if row.get("ratio") is None else f"{row['ratio']:.2f}",
            row.get("target", ""), "" if met is None else ("yes" if met else "NO"),
        )  # fmt: skip
    Console(width=160).print(table)
