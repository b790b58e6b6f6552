"""Renewable energy certificates: hourly bundles of whole Wh issued from minted energy,
moved on chain through the outbox (docs/CERTIFICATES.md).

issuance   closed hours of minted readings -> bundles and certificates
moves      a certificate's chain moves: planned, built, settled from the outbox row
worker     the scheduler's certificate cycle
reconcile  the certificate mint's supply against issued - retired - cancelled
"""
