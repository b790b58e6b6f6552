"""Plotly figures for the pages: titled, axis-labelled, with units.

Amounts arrive as exact integers; they become floats here and only here, for the
position of a point on an axis. Hover text shows the exact value.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

import plotly.graph_objects as go

from core.units import micro_to_kwh
from core.views import CostPoint, DayPoint, QueuePoint, RatePoint, SeriesPoint
from core.views._sql import from_epoch
from core.views.certificates import DailyTotal
from core.views.cockpit import TodayBar
from core.views.fleet import CurvePoint

_LAYOUT = {
    "margin": {"l": 60, "r": 20, "t": 70, "b": 50},
    "hovermode": "x unified",
    # Above the plot, right of the title: below it would cover the x axis title.
    "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1},
    "height": 360,
}


def _figure(title: str, x_title: str, y_title: str) -> go.Figure:
    figure = go.Figure()
    figure.update_layout(title={"text": title}, **_LAYOUT)
    figure.update_xaxes(title_text=x_title)
    figure.update_yaxes(title_text=y_title, rangemode="tozero")
    return figure


def energy_chart(points: Sequence[SeriesPoint], bucket_label: str) -> go.Figure:
    figure = _figure(f"Energy per {bucket_label} (kWh)", "Reading time (UTC)", "Energy (kWh)")
    for name, series in groupby(points, key=lambda point: point.series):
        rows = list(series)
        figure.add_trace(
            go.Scatter(
                x=[row.bucket_start for row in rows],
                y=[float(micro_to_kwh(row.kwh_micro)) for row in rows],
                customdata=[
                    f"{micro_to_kwh(row.kwh_micro)} kWh, {row.readings} readings" for row in rows
                ],
                hovertemplate="%{customdata}<extra>" + name + "</extra>",
                mode="lines",
                name=name,
                stackgroup="energy" if len(points) > len(rows) else None,
            )
        )
    return figure


def ingest_chart(points: Sequence[RatePoint], bucket_label: str) -> go.Figure:
    figure = _figure(
        f"Ingest rate (readings per {bucket_label})",
        "Received (UTC)",
        f"Readings per {bucket_label}",
    )
    figure.add_trace(
        go.Bar(x=[p.bucket_start for p in points], y=[p.readings for p in points], name="readings")
    )
    return figure


def queue_chart(points: Sequence[QueuePoint], bucket_label: str) -> go.Figure:
    figure = _figure("Mint queue depth (readings)", "Time (UTC)", "Readings")
    x = [p.bucket_start for p in points]
    figure.add_trace(go.Scatter(x=x, y=[p.depth for p in points], name="waiting", mode="lines"))
    figure.add_trace(
        go.Bar(x=x, y=[p.accepted for p in points], name=f"accepted per {bucket_label}")
    )
    figure.add_trace(go.Bar(x=x, y=[p.minted for p in points], name=f"minted per {bucket_label}"))
    return figure


def daily_chart(points: Sequence[DayPoint], decimals: int) -> go.Figure:
    figure = _figure("Daily production (kWh) and GRX minted", "Day (UTC)", "kWh / GRX")
    x = [p.day for p in points]
    figure.add_trace(
        go.Bar(x=x, y=[float(micro_to_kwh(p.kwh_micro)) for p in points], name="produced (kWh)")
    )
    figure.add_trace(
        go.Scatter(
            x=x,
            y=[p.minted_base_units / 10**decimals for p in points],
            name="minted (GRX)",
            mode="lines+markers",
        )
    )
    return figure


def cost_chart(points: Sequence[CostPoint], bucket_label: str) -> go.Figure:
    figure = _figure(
        f"Fees per minted reading (lamports), per {bucket_label}", "Time (UTC)", "Lamports"
    )
    x = [p.bucket_start for p in points]
    per_reading = [p.cost.lamports_per_reading for p in points]
    figure.add_trace(
        go.Scatter(
            x=x,
            y=[None if value is None else float(value) for value in per_reading],
            customdata=[
                f"{value} lamports/reading, {p.cost.readings_minted} readings, "
                f"{p.cost.transactions} transactions"
                for value, p in zip(per_reading, points, strict=True)
            ],
            hovertemplate="%{customdata}<extra>per reading</extra>",
            mode="lines+markers",
            name="lamports per reading",
        )
    )
    return figure


def today_chart(bars: Sequence[TodayBar]) -> go.Figure:
    """Generated and minted kWh per 15 minutes today; the last bar is the current one."""
    figure = _figure("Today: energy generated and minted per 15 minutes", "Time (UTC)", "kWh")
    x = [bar.bucket_start for bar in bars]
    for name, values in (
        ("generated", [bar.generated_kwh_micro for bar in bars]),
        ("minted", [bar.minted_kwh_micro for bar in bars]),
    ):
        figure.add_trace(
            go.Bar(
                x=x,
                y=[float(micro_to_kwh(value)) for value in values],
                customdata=[f"{micro_to_kwh(value)} kWh" for value in values],
                hovertemplate="%{customdata}<extra>" + name + "</extra>",
                name=f"{name} (kWh)",
            )
        )
    figure.update_layout(barmode="group")
    return figure


def meter_chart(points: Sequence[CurvePoint], serial: str, bucket_label: str) -> go.Figure:
    figure = _figure(f"{serial}: energy per {bucket_label} (kWh)", "Reading time (UTC)", "kWh")
    figure.add_trace(
        go.Bar(
            x=[from_epoch(p.bucket_start) for p in points],
            y=[float(micro_to_kwh(p.kwh_micro)) for p in points],
            customdata=[f"{micro_to_kwh(p.kwh_micro)} kWh, {p.readings} readings" for p in points],
            hovertemplate="%{customdata}<extra></extra>",
            name="kWh",
        )
    )
    return figure


def certificate_chart(points: Sequence[DailyTotal], by: str) -> go.Figure:
    """Wh per UTC day, one bar group per status, stacked by technology or grid region."""
    figure = _figure(f"Certificates per day by {by.replace('_', ' ')} (MWh)", "Day (UTC)", "MWh")
    figure.update_layout(barmode="stack")
    keyed = sorted(points, key=lambda p: (p.status, getattr(p, by), p.day_start))
    for (status, name), series in groupby(keyed, key=lambda p: (p.status, getattr(p, by))):
        rows = list(series)
        figure.add_trace(
            go.Bar(
                x=[from_epoch(row.day_start) for row in rows],
                y=[row.wh / 1_000_000 for row in rows],
                name=f"{status}: {name}",
                offsetgroup=status,
                customdata=[f"{row.wh:,} Wh" for row in rows],
                hovertemplate="%{customdata}<extra>%{fullData.name}</extra>",
            )
        )
    return figure
