"""A SPY around the real ``google.cloud.firestore`` client, counting the documents its reads
return per collection: it still talks to the emulator (every call goes to the real client);
it only counts. What Firestore bills is one read per document a query, a ``get_all`` or a
transactional read returns, so this is the count a bill would show."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any


class ReadSpy:
    """A SPY around a real Firestore client (it still talks to the emulator): counts, per
    collection of ``watched``, the documents its reads return."""

    def __init__(self, client: Any, *watched: str):
        self._client = client
        self.watched = set(watched)
        self.reads: Counter[str] = Counter()

    def count(self, snaps: Any) -> Iterator[Any]:
        for snap in snaps:
            name = snap.reference.parent.id
            if name in self.watched:
                self.reads[name] += 1
            yield snap

    def collection(self, *path: str) -> Any:
        return _QuerySpy(self._client.collection(*path), self)

    def transaction(self, **kwargs: Any) -> Any:
        return _TransactionSpy(self._client.transaction(**kwargs), self)

    def get_all(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        return self.count(self._client.get_all(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:  # everything else: the real client
        return getattr(self._client, name)


class _QuerySpy:
    """A collection or query of the spied client: its reads counted, the rest the real one's."""

    def __init__(self, query: Any, spy: ReadSpy):
        self._query = query
        self._spy = spy

    def where(self, *args: Any, **kwargs: Any) -> _QuerySpy:
        return _QuerySpy(self._query.where(*args, **kwargs), self._spy)

    def order_by(self, *args: Any, **kwargs: Any) -> _QuerySpy:
        return _QuerySpy(self._query.order_by(*args, **kwargs), self._spy)

    def limit(self, *args: Any, **kwargs: Any) -> _QuerySpy:
        return _QuerySpy(self._query.limit(*args, **kwargs), self._spy)

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        return self._spy.count(self._query.stream(*args, **kwargs))

    def get(self, *args: Any, **kwargs: Any) -> list[Any]:
        return list(self._spy.count(self._query.get(*args, **kwargs)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._query, name)


class _TransactionSpy:
    """A transaction of the spied client (``@firestore.transactional`` drives the real one)."""

    def __init__(self, tx: Any, spy: ReadSpy):
        self._tx = tx
        self._spy = spy

    def get_all(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        return self._spy.count(self._tx.get_all(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)
