"""The MQTT ingest bridge: meters' readings from a broker into the one acceptance path.

`python -m mqtt_ingest` subscribes (QoS 1, persistent session) to
`gridtokenx/meters/+/readings`, accepts every message through
`core.readings.accept_together` (the rules of the HTTP API), answers on
`gridtokenx/meters/{serial}/acks`, and sends the broker its PUBACK only after the
reading is committed: a crash in between redelivers, and the redelivery is answered
as the duplicate it is. docs/API.md "MQTT" is the wire contract.
"""
