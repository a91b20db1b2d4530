"""The Blob store on Azurite: objects stream chunk by chunk (the download is never read
whole), a manifest reads in full, a missing blob is named."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from burnguard.adapters.azure.blob import PERMISSIONS, BlobStore, ChunkStream
from burnguard.adapters.azure.eventgrid import blob_created
from burnguard.core.errors import InputError
from tests.adapters.azure.events import CLOUD, GRID, event_json, host_event

pytestmark = pytest.mark.emulator

CHUNK = 64 * 1024


def store_with_counter(azure_storage: Any) -> tuple[BlobStore, BlobServiceClient, list[str]]:
    gets: list[str] = []

    def hook(response: Any) -> None:
        if response.http_request.method == "GET":
            gets.append(response.http_request.headers.get("x-ms-range", ""))

    client = BlobServiceClient.from_connection_string(azure_storage.connection_string, max_single_get_size=CHUNK,
                                                      max_chunk_get_size=CHUNK, raw_response_hook=hook)
    return BlobStore(client), client, gets


def test_an_object_streams_in_chunks(azure_storage: Any) -> None:
    store, client, gets = store_with_counter(azure_storage)
    container = f"c-{uuid.uuid4().hex[:10]}"
    client.create_container(container)
    data = os.urandom(40 * CHUNK + 123)
    client.get_blob_client(container, "big/part_0_0001.csv").upload_blob(data)
    gets.clear()
    with store.open(container, "big/part_0_0001.csv") as fh:
        head = fh.read(100)
        assert head == data[:100]
        assert len(gets) <= 3  # a few ranges of 64 KiB so far, not the 40 of the whole blob
        rest = fh.read()
    assert head + rest == data
    assert len(gets) >= 40  # every range was fetched on demand
    assert store.local_path(container, "big/part_0_0001.csv") is None


def test_read_and_missing_blobs(azure_storage: Any) -> None:
    store, client, _ = store_with_counter(azure_storage)
    container = f"c-{uuid.uuid4().hex[:10]}"
    client.create_container(container)
    client.get_blob_client(container, "x/manifest.json").upload_blob(b'{"blobs": []}')
    assert store.read(container, "x/manifest.json") == b'{"blobs": []}'
    with pytest.raises(InputError, match=r"x/part_9\.csv.*blob not found"):
        store.open(container, "x/part_9.csv")
    assert PERMISSIONS == ("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",)


def test_chunk_stream_names_a_failing_download() -> None:
    def chunks() -> Any:
        yield b"abc"
        raise ConnectionError("reset by peer")

    stream = ChunkStream(chunks(), "run/part_1.csv.gz")
    assert stream.read(2) == b"ab"
    with pytest.raises(InputError, match=r"run/part_1\.csv\.gz.*ConnectionError"):
        stream.read()


@pytest.mark.parametrize("template", [GRID, CLOUD], ids=["eventgrid", "cloudevents"])
def test_event_grid_blob_created_in_both_schemas(template: dict[str, Any]) -> None:
    for event in (template, host_event(template)):  # the JSON, and the host's object
        blob = blob_created(event)
        assert (blob.container, blob.key, blob.account) == ("test-container", "new-file.txt", "my-storage-account")
        assert blob.metadata["contentLength"] == 524288 and blob.metadata["api"] == "PutBlockList"
    azurite = blob_created(event_json("eventgrid", "http://127.0.0.1:10000/devstoreaccount1", "c", "a b/c.csv", 3))
    assert (azurite.account, azurite.key) == ("devstoreaccount1", "a b/c.csv")
    with pytest.raises(InputError, match="type"):
        blob_created({**template, "eventType": "Microsoft.Storage.BlobDeleted", "type": "Microsoft.Storage.BlobDeleted"})
    with pytest.raises(InputError, match="subject"):
        blob_created({**template, "subject": "/blobServices/default/containers/only"})


def test_queue_messages_of_event_grid() -> None:
    import base64
    import json

    from burnguard.adapters.azure.eventgrid import events_of_queue_message

    text = json.dumps(GRID)
    assert events_of_queue_message(text.encode()) == [GRID]
    assert events_of_queue_message(base64.b64encode(text.encode())) == [GRID]  # messageEncoding none
    assert events_of_queue_message(json.dumps([GRID, CLOUD])) == [GRID, CLOUD]
    for bad, why in [(b"%%%", "neither JSON nor base64"), (b"{nope", "not JSON"), (b"[1]", "not an event")]:
        with pytest.raises(InputError, match=why):
            events_of_queue_message(bad)
