"""CSV exports of the dashboard's tables, streamed from the database page by page.

`tables` says what each table holds and how a TableFilter narrows it (the same
statements the screens read), `csv_stream` writes any of them as CSV in keyset
pages so an export of a million rows never holds more than one page, and
`links` signs the short-lived download links the dashboard hands to a browser.
"""
