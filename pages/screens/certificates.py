"""Certificates: staff see issued / retired / cancelled per day by technology and region
and the registry with filters (admins also approve and cancel); prosumers see the
certificates they hold, retire them and download the retirement statement."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from core.certificates.lifecycle import (
    approve_certificate,
    cancel_certificate,
    parse_claim,
    retire_certificate,
    transfer_certificate,
)
from core.certificates.matching import hourly_match, parse_consumption_csv
from core.certificates.statement import retirement_statement_html
from core.db.models import CertificateStatus, Role
from core.device_attributes import Technology
from core.errors import DomainError
from core.views._sql import is_staff
from core.views.certificates import CertificateFilter, certificates, daily_totals
from core.views.filters import TableFilter
from pages.common import charts, exports, session, ui

DAYS = 30
PAGE_ROWS = 200
COUNT_CAP = 10_000  # a row count for the caption: exact up to here, "10,000+" beyond

app = ui.get_app()
viewer = session.viewer_for(app, "certificates")
st.title("Certificates")
ui.show_flash()
now = ui.now()
staff = is_staff(viewer)


def table(rows) -> list[dict]:
    return [
        {
            "id": r.id,
            "status": r.status,
            "Wh": r.wh,
            "ids": f"{r.first_id}-{r.last_id}",
            "device": r.meter_serial,
            "hour (UTC)": ui.when(r.hour_start),
            "technology": r.technology,
            "region": r.grid_region,
            "holder": r.holder,
            "beneficiary": r.beneficiary or "",
            "issued in": ui.short(r.issue_signature),
        }
        for r in rows
    ]


if staff:
    with ui.reading(app) as reading:
        totals = daily_totals(reading, viewer, since=now - timedelta(days=DAYS))
    if totals:
        by = st.radio(
            "Group by", ["technology", "grid_region"], horizontal=True, key="certs.chart_by"
        )
        st.plotly_chart(charts.certificate_chart(totals, by), key="certs.chart")
    else:
        st.info("No certificates issued in the last 30 days.")
    left, middle, right = st.columns(3)
    status = left.selectbox(
        "Status", [s.value for s in CertificateStatus], index=None, key="certs.status"
    )
    technology = middle.selectbox(
        "Technology", [t.value for t in Technology], index=None, key="certs.technology"
    )
    region = right.text_input("Grid region", key="certs.region")
    serial = left.text_input("Device serial", key="certs.serial")
    holder = middle.text_input("Holder", key="certs.holder")
    wanted = CertificateFilter(
        meter_serial=serial or None,
        technology=technology,
        grid_region=region or None,
        status=status,
        holder=holder or None,
    )
    on_screen = TableFilter(
        meter=serial, user=holder, status=status or "", technology=technology or "",
        region=region,
    )  # fmt: skip
else:
    wanted = CertificateFilter()
    on_screen = TableFilter()  # the export, like the table, holds only their own

with ui.reading(app) as reading:
    rows, total = certificates(reading, viewer, wanted, limit=PAGE_ROWS, count_cap=COUNT_CAP)
st.subheader("Registry" if staff else "My certificates")
counted = f"{COUNT_CAP:,}+" if total > COUNT_CAP else f"{total:,}"
st.caption(
    f"{counted} certificates" + (f", the newest {PAGE_ROWS} shown" if total > PAGE_ROWS else "")
)
if rows:
    st.dataframe(table(rows), hide_index=True, key="certs.table")
    exports.download_link(app, viewer, "certificates", on_screen, key="certs.download")
else:
    st.info("No certificates yet: they are issued hourly from minted energy.")

active = [r for r in rows if r.status == CertificateStatus.ACTIVE.value]
if viewer.role == Role.PROSUMER.value and active:
    st.subheader("Retire (claim)")
    with st.form("certs.retire_form"):
        chosen = st.selectbox(
            "Certificate", [r.id for r in active], key="certs.retire_id",
            format_func=lambda i: next(f"#{r.id}: {r.wh:,} Wh, {ui.when(r.hour_start)}"
                                       for r in active if r.id == i),
        )  # fmt: skip
        beneficiary = st.text_input("Beneficiary", key="certs.beneficiary")
        purpose = st.text_input("Purpose", key="certs.purpose")
        period_start = st.date_input("Consumption from", key="certs.period_start")
        period_end = st.date_input("Consumption to", key="certs.period_end")
        country = st.text_input("Country of consumption (ISO alpha-2)", key="certs.country")
        retire = st.form_submit_button("Retire", type="primary", key="certs.retire")
    if retire:
        ui.act(
            app,
            lambda s: retire_certificate(
                s,
                chosen,
                parse_claim(
                    {
                        "beneficiary": beneficiary,
                        "purpose": purpose,
                        "period_start": period_start,
                        "period_end": period_end,
                        "country": country,
                    }
                ),
                viewer,
                now=now,
            ),
            f"Certificate {chosen} is being retired; its statement follows once burned.",
        )
    st.subheader("Transfer")
    with st.form("certs.transfer_form"):
        moving = st.selectbox("Certificate", [r.id for r in active], key="certs.transfer_id")
        recipient = st.text_input("To (username)", key="certs.recipient")
        send = st.form_submit_button("Transfer", key="certs.transfer")
    if send:
        ui.act(
            app,
            lambda s: transfer_certificate(s, moving, recipient, viewer, now=now),
            f"Certificate {moving} is being transferred to {recipient}.",
        )

retired = [r for r in rows if r.status == CertificateStatus.RETIRED.value]
if retired:
    st.subheader("Retirement statements")
    shown = st.selectbox("Retired certificate", [r.id for r in retired], key="certs.statement_id")
    with ui.reading(app) as reading:
        html = retirement_statement_html(reading, viewer, shown)
    st.download_button(
        "Download statement (HTML, printable)",
        html,
        file_name=f"retirement-statement-{shown}.html",
        mime="text/html",
        key="certs.statement_download",
    )

if retired or staff:
    st.subheader("Hourly matching")
    st.caption(
        "Upload a consumption profile (CSV `hour_start,wh`, one row per UTC hour): each hour "
        "is matched only by certificates retired for energy produced in that same hour and "
        "grid region."
    )
    upload = st.file_uploader("Consumption CSV", type=["csv"], key="certs.profile")
    match_region = st.text_input("Grid region of the consumption", key="certs.match_region")
    if upload is not None and match_region:
        try:
            profile = parse_consumption_csv(upload.getvalue().decode("utf-8", "replace"))
            with ui.reading(app) as reading:
                report = hourly_match(reading, viewer, profile, match_region)
        except DomainError as exc:
            ui.show_error(exc)
        else:
            st.metric(
                "Matched hour by hour",
                f"{report.share} %",
                help=f"{report.matched_wh:,} of {report.consumption_wh:,} Wh",
            )
            st.dataframe(
                [
                    {
                        "hour (UTC)": ui.when(h.hour_start),
                        "consumption Wh": h.consumption_wh,
                        "retired Wh (same hour, region)": h.certified_wh,
                        "matched Wh": h.matched_wh,
                        "matched %": str(h.share),
                    }
                    for h in report.hours
                ],
                hide_index=True,
                key="certs.matching",
            )

if viewer.role == Role.ADMIN.value:
    st.subheader("Admin: approve or cancel")
    with st.form("certs.admin_form"):
        target = st.number_input("Certificate id", min_value=1, step=1, key="certs.admin_id")
        reason = st.text_input("Reason (to cancel)", key="certs.reason")
        left, right = st.columns(2)
        approve = left.form_submit_button("Approve (in review)", key="certs.approve")
        cancel = right.form_submit_button("Cancel", key="certs.cancel")
    if approve:
        ui.act(
            app,
            lambda s: approve_certificate(s, int(target), viewer, now=now),
            f"Certificate {int(target)} approved.",
        )
    if cancel:
        ui.act(
            app,
            lambda s: cancel_certificate(s, int(target), reason, viewer, now=now),
            f"Certificate {int(target)} is being cancelled.",
        )
