"""Embedded adapters: SQLite ledger and queue, an inventory-file instance controller, a
console notifier. Everything the local mode and the tests need, with no cloud."""
