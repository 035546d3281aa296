"""The Meshy sandbox over real HTTP on 127.0.0.1 (requests, no mocks): what a Meshy client will meet.

Latencies are a few tenths of a second and results are made once for the module (one shared
ResultCache), so the whole file stays within a few seconds of test time."""

from __future__ import annotations

import base64
import json
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from helpers import wait_for

from addon.imaging.png import decode_own_png, encode_png
from sandbox._results import ResultCache
from sandbox.meshy import (
    IMAGE,
    MULTI_IMAGE,
    PREVIEW,
    REFINE,
    REMESH,
    RETEXTURE,
    TEST_MODE_KEY,
    MeshySandbox,
    MeshyState,
)

KEY = "msy_sandbox_test_key_never_logged_0042"
OTHER_KEY = "msy_someone_else_entirely_0043"
TEXT = "/openapi/v2/text-to-3d"
AUTH = {"Authorization": f"Bearer {KEY}"}
FAST = {PREVIEW: 0.3, REFINE: 0.3, IMAGE: 0.3, MULTI_IMAGE: 0.3, REMESH: 0.2, RETEXTURE: 0.2}
RESULTS = ResultCache()
"""Shared by every sandbox here: each (type, prompt) is generated once for the module."""


def state(**knobs: Any) -> MeshyState:
    return MeshyState(**{"latency_s": dict(FAST), "result_cache": RESULTS, **knobs})


@pytest.fixture
def sandbox() -> Iterator[MeshySandbox]:
    with MeshySandbox(state()) as server:
        yield server


def post(server: MeshySandbox, route: str, body: dict[str, Any], key: str = KEY) -> requests.Response:
    return requests.post(server.url + route, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=5)


def get(server: MeshySandbox, route: str, key: str = KEY) -> requests.Response:
    return requests.get(server.url + route, headers={"Authorization": f"Bearer {key}"}, timeout=5)


def create(server: MeshySandbox, route: str, body: dict[str, Any], key: str = KEY) -> str:
    response = post(server, route, body, key)
    assert response.status_code == 202, response.text
    assert list(response.json()) == ["result"]
    return str(response.json()["result"])


def finished(server: MeshySandbox, route: str, task_id: str, key: str = KEY) -> dict[str, Any]:
    """Poll until the task is terminal; returns its task object."""
    seen: dict[str, Any] = {}

    def done() -> bool:
        seen.update(get(server, f"{route}/{task_id}", key).json())
        return seen["status"] in ("SUCCEEDED", "FAILED", "CANCELED")

    wait_for(done, timeout=15, step=0.02)
    return seen


def balance(server: MeshySandbox, key: str = KEY) -> int:
    return int(get(server, "/openapi/v1/balance", key).json()["balance"])


def png_uri(colour: tuple[int, int, int] = (200, 40, 40)) -> str:
    pixels = np.zeros((48, 48, 3), np.uint8)
    pixels[8:40, 8:40] = colour
    return "data:image/png;base64," + base64.b64encode(encode_png(pixels)).decode()


def glb_parts(data: bytes) -> tuple[dict[str, Any], bytes]:
    """The JSON and BIN chunks of a GLB."""
    assert data[:4] == b"glTF"
    json_length = struct.unpack_from("<I", data, 12)[0]
    document = json.loads(data[20 : 20 + json_length])
    bin_length = struct.unpack_from("<I", data, 20 + json_length)[0]
    return document, data[28 + json_length : 28 + json_length + bin_length]


def positions(data: bytes) -> bytes:
    """The vertex positions of every primitive, as bytes: equal means the same geometry."""
    document, binary = glb_parts(data)
    out = b""
    for mesh in document["meshes"]:
        for primitive in mesh["primitives"]:
            accessor = document["accessors"][primitive["attributes"]["POSITION"]]
            view = document["bufferViews"][accessor["bufferView"]]
            out += binary[view["byteOffset"] : view["byteOffset"] + view["byteLength"]]
    return out


def sse_events(response: requests.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """A strict reader of text/event-stream: blank-line separated blocks of `event:` and `data:` lines."""
    buffer = b""
    for chunk in response.iter_content(chunk_size=None):
        buffer += chunk
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            fields = dict(line.split(": ", 1) for line in block.decode().split("\n"))
            assert set(fields) == {"event", "data"}, block
            yield fields["event"], json.loads(fields["data"])
    assert buffer == b"", "a stream ended half-way through an event"


def stream(server: MeshySandbox, route: str, task_id: str, key: str = KEY) -> requests.Response:
    response = requests.get(f"{server.url}{route}/{task_id}/stream", stream=True, timeout=10,
                            headers={"Authorization": f"Bearer {key}", "Accept": "text/event-stream"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    return response


def test_every_create_route_makes_a_task_under_its_own_family(sandbox: MeshySandbox) -> None:
    preview = create(sandbox, TEXT, {"mode": "preview", "prompt": "wooden crate", "ai_model": "meshy-6"})
    image = create(sandbox, "/openapi/v1/image-to-3d", {"image_url": png_uri(), "should_texture": False})
    multi = create(sandbox, "/openapi/v1/multi-image-to-3d", {"image_urls": [png_uri(), png_uri((0, 90, 200))],
                                                              "should_texture": False})
    preview_object = finished(sandbox, TEXT, preview)
    remesh = create(sandbox, "/openapi/v1/remesh", {"input_task_id": preview, "topology": "quad",
                                                    "target_polycount": 5000})
    model = requests.get(preview_object["model_urls"]["glb"], timeout=5).content
    model_uri = "data:application/octet-stream;base64," + base64.b64encode(model).decode()
    retexture = create(sandbox, "/openapi/v1/retexture", {"model_url": model_uri, "text_style_prompt": "mossy"})
    refine = create(sandbox, TEXT, {"mode": "refine", "preview_task_id": preview})

    routes = {image: "/openapi/v1/image-to-3d", multi: "/openapi/v1/multi-image-to-3d",
              remesh: "/openapi/v1/remesh", retexture: "/openapi/v1/retexture", refine: TEXT}
    types = {image: IMAGE, multi: MULTI_IMAGE, remesh: REMESH, retexture: RETEXTURE, refine: REFINE}
    for task_id, route in routes.items():
        task = finished(sandbox, route, task_id)
        assert (task["type"], task["status"]) == (types[task_id], "SUCCEEDED"), task
        assert glb_parts(requests.get(task["model_urls"]["glb"], timeout=5).content)[0]["asset"]["version"] == "2.0"
        assert get(sandbox, f"{TEXT if route != TEXT else '/openapi/v1/remesh'}/{task_id}").status_code == 404, \
            "a task is found only under its own family's route"
    remeshed = glb_parts(requests.get(finished(sandbox, "/openapi/v1/remesh", remesh)["model_urls"]["glb"],
                                      timeout=5).content)[0]
    assert remeshed["nodes"][0]["extras"]["topology"] == "quad"
    assert remeshed["nodes"][0]["extras"]["target_polycount"] == 5000
    assert sandbox.state.route_counts["POST /openapi/v1/remesh"] == 1
    assert sandbox.state.route_counts[f"GET {TEXT}/:id"] >= 2
    listed = get(sandbox, f"{TEXT}?page_num=1&page_size=1&sort_by=-created_at").json()
    assert [t["id"] for t in listed] == [refine], "newest first, one per page"
    assert get(sandbox, f"{TEXT}?page_size=51").status_code == 400


def test_a_wrong_key_is_refused_and_tasks_belong_to_their_key(sandbox: MeshySandbox) -> None:
    for key in ("tsk_not_meshy", ""):
        response = requests.get(sandbox.url + "/openapi/v1/balance", headers={"Authorization": f"Bearer {key}"},
                                timeout=5)
        assert response.status_code == 401 and set(response.json()) == {"message"}
    task_id = create(sandbox, TEXT, {"mode": "preview", "prompt": "wooden crate"})
    assert get(sandbox, f"{TEXT}/{task_id}", OTHER_KEY).status_code == 404
    assert get(sandbox, f"{TEXT}/{task_id}", OTHER_KEY).json() == {"message": "Task not found"}
    with MeshySandbox(state(valid_keys={KEY})) as strict:
        assert get(strict, "/openapi/v1/balance", OTHER_KEY).status_code == 401
        assert get(strict, "/openapi/v1/balance").status_code == 200


def test_a_task_goes_pending_in_progress_succeeded_with_growing_progress_and_timestamps() -> None:
    with MeshySandbox(state(latency_s={PREVIEW: 0.6}, progress_step=5)) as server:
        before = balance(server)
        task_id = create(server, TEXT, {"mode": "preview", "prompt": "wooden crate"})
        seen = []
        while not seen or seen[-1]["status"] != "SUCCEEDED":
            seen.append(get(server, f"{TEXT}/{task_id}").json())
            time.sleep(0.03)
        statuses = [s["status"] for s in seen]
        assert statuses[0] == "PENDING" and "IN_PROGRESS" in statuses
        assert statuses == sorted(statuses, key=["PENDING", "IN_PROGRESS", "SUCCEEDED"].index)
        progress = [s["progress"] for s in seen]
        assert progress == sorted(progress) and progress[-1] == 100 and 0 < max(progress[:-1]) < 100
        last = seen[-1]
        assert seen[0]["started_at"] == 0 == seen[0]["finished_at"]
        assert last["created_at"] < last["started_at"] < last["finished_at"] < last["expires_at"]
        assert last["consumed_credits"] == 20 == before - balance(server)
        assert last["task_error"] == {"message": ""}
        assert requests.get(last["thumbnail_url"], timeout=5).content.startswith(b"\x89PNG")
        assert server.state.polls[task_id] == len(seen)
        assert server.state.completions()[task_id] * 1000 == pytest.approx(last["finished_at"], abs=1)


def test_the_stream_sends_each_progress_step_and_ends_at_the_terminal_status(sandbox: MeshySandbox) -> None:
    task_id = create(sandbox, TEXT, {"mode": "preview", "prompt": "wooden crate"})
    with stream(sandbox, TEXT, task_id) as response:
        events = list(sse_events(response))
    assert {name for name, _ in events} == {"message"}
    frames = [data for _, data in events]
    assert [f["status"] for f in frames[:2]] == ["PENDING", "IN_PROGRESS"]
    assert all(set(f) == {"id", "progress", "status"} for f in frames[:-1]), "running frames are short"
    steps = [(f["status"], f["progress"]) for f in frames]
    assert len(set(steps)) == len(steps) >= 8, "one event per change of progress (steps of 10)"
    assert frames[-1]["status"] == "SUCCEEDED" and frames[-1]["model_urls"]["glb"].startswith(sandbox.asset_url)
    assert sandbox.state.polls[task_id] == 0, "nothing polled"
    # The server's thread counts the stream closed just after its last event reached the client.
    wait_for(lambda: sandbox.state.open_streams == 0, timeout=10)
    assert sandbox.state.open_streams == 0 and sandbox.state.stream_events == len(events)
    with stream(sandbox, TEXT, "no-such-task") as response:
        assert list(sse_events(response)) == [("error", {"status_code": 404, "message": "Task not found"})]


def test_a_stream_can_drop_mid_way_and_the_task_is_still_found_by_polling() -> None:
    with MeshySandbox(state(drop_streams=[3])) as server:
        task_id = create(server, TEXT, {"mode": "preview", "prompt": "wooden crate"})
        received = []
        with stream(server, TEXT, task_id) as response, pytest.raises(requests.exceptions.ChunkedEncodingError):
            for event in sse_events(response):
                received.append(event)
        assert len(received) == 3 and all(data["status"] != "SUCCEEDED" for _, data in received)
        assert server.state.streams_dropped == 1
        with stream(server, TEXT, task_id) as response:
            assert list(sse_events(response))[-1][1]["status"] == "SUCCEEDED", "the next stream is whole"
        assert finished(server, TEXT, task_id)["status"] == "SUCCEEDED"


def test_a_stopped_sandbox_ends_its_open_streams() -> None:
    server = MeshySandbox(state(make_results=False))
    with server:
        task_id = create(server, TEXT, {"mode": "preview", "prompt": "wooden crate"})
        response = stream(server, TEXT, task_id)
        events = sse_events(response)
        next(events)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        list(events)
    wait_for(lambda: server.state.open_streams == 0, timeout=5)


def test_many_streams_are_open_at_once() -> None:
    with MeshySandbox(state(queue_limit=30, latency_s={PREVIEW: 30.0})) as server:
        ids = [create(server, TEXT, {"mode": "preview", "prompt": "wooden crate"}) for _ in range(24)]
        all_open = threading.Barrier(len(ids) + 1, timeout=10)
        last: dict[str, str] = {}

        def watch(task_id: str) -> None:
            with stream(server, TEXT, task_id) as response:
                events = sse_events(response)
                next(events)
                all_open.wait()
                last[task_id] = list(events)[-1][1]["status"]

        threads = [threading.Thread(target=watch, args=(task_id,)) for task_id in ids]
        for thread in threads:
            thread.start()
        all_open.wait()
        assert server.state.open_streams == 24
        for task_id in ids:  # ends every stream at once, with the terminal CANCELED
            requests.delete(f"{server.url}{TEXT}/{task_id}", headers=AUTH, timeout=5)
        for thread in threads:
            thread.join(10)
        assert last == dict.fromkeys(ids, "CANCELED")
        wait_for(lambda: server.state.open_streams == 0, timeout=10)  # closed on the server's side just after
        assert server.state.peak_open_streams == 24 and server.state.open_streams == 0


def test_a_full_queue_answers_no_more_concurrent_tasks_and_charges_nothing() -> None:
    with MeshySandbox(state(queue_limit=2)) as server:
        first = [create(server, TEXT, {"mode": "preview", "prompt": "wooden crate"}) for _ in range(2)]
        before = balance(server)
        refused = post(server, TEXT, {"mode": "preview", "prompt": "wooden crate"}, OTHER_KEY)
        assert refused.status_code == 429 and refused.json() == {"message": "NoMoreConcurrentTasks"}, \
            "the queue is the account's, whichever key asks"
        assert balance(server) == before and len(server.state.tasks) == 2
        for task_id in first:
            finished(server, TEXT, task_id)
        create(server, TEXT, {"mode": "preview", "prompt": "wooden crate"})
        assert server.state.refusals["NoMoreConcurrentTasks"] == 1


def test_too_many_requests_a_second_answer_rate_limit_exceeded() -> None:
    with MeshySandbox(state(rate_limit_per_s=3)) as server:
        answers = [get(server, "/openapi/v1/balance") for _ in range(6)]
        refused = [a for a in answers if a.status_code == 429]
        assert refused and all(a.json() == {"message": "RateLimitExceeded"} for a in refused)
        assert server.state.refusals["RateLimitExceeded"] == len(refused)


def test_a_failed_task_carries_its_error_and_is_refunded() -> None:
    failure = {"type": "server_error", "message": "the GPU fell over"}
    with MeshySandbox(state(task_failures=[failure], create_errors=[402, (503, "maintenance")])) as server:
        before = balance(server)
        assert post(server, TEXT, {"mode": "preview", "prompt": "rock"}).json() == {"message": "sandbox error 402"}
        response = post(server, TEXT, {"mode": "preview", "prompt": "rock"})
        assert (response.status_code, response.json()) == (503, {"message": "maintenance"})
        task_id = create(server, TEXT, {"mode": "preview", "prompt": "rock"})
        assert balance(server) == before - 20, "charged at create"
        with stream(server, TEXT, task_id) as response:
            last = list(sse_events(response))[-1][1]
        assert last["status"] == "FAILED" and last["task_error"] == failure and last["consumed_credits"] == 0
        assert last["model_urls"] == {} and balance(server) == before, "refunded"
        server.state.balance = 10
        response = post(server, TEXT, {"mode": "preview", "prompt": "rock"})
        assert response.status_code == 402 and balance(server) == 10


def test_credits_follow_the_table_and_the_test_key_is_free(sandbox: MeshySandbox) -> None:
    def cost(route: str, body: dict[str, Any], key: str = KEY) -> int:
        before = balance(sandbox, key)
        create(sandbox, route, body, key)
        return before - balance(sandbox, key)

    preview = create(sandbox, TEXT, {"mode": "preview", "prompt": "wooden crate"})
    finished(sandbox, TEXT, preview)
    sandbox.state.make_results = False  # only the charges matter here: spare the cores
    assert cost(TEXT, {"mode": "preview", "prompt": "wooden crate", "ai_model": "meshy-5"}) == 5
    assert cost(TEXT, {"mode": "preview", "prompt": "wooden crate", "ai_model": "meshy-7", "ultra_mode": True}) == 25
    assert cost(TEXT, {"mode": "refine", "preview_task_id": preview, "texture_resolution": "8k"}) == 15
    assert cost("/openapi/v1/image-to-3d", {"image_url": png_uri()}) == 30
    assert cost("/openapi/v1/image-to-3d", {"image_url": png_uri(), "should_texture": False}) == 20
    assert cost("/openapi/v1/remesh", {"input_task_id": preview}) == 5
    assert cost("/openapi/v1/retexture", {"input_task_id": preview, "image_style_url": png_uri()}) == 10
    assert cost(TEXT, {"mode": "preview", "prompt": "wooden crate"}, TEST_MODE_KEY) == 0


def test_a_refine_needs_a_succeeded_preview_of_the_same_key_and_keeps_its_geometry(sandbox: MeshySandbox) -> None:
    preview = create(sandbox, TEXT, {"mode": "preview", "prompt": "stone pillar"})
    for body in ({"mode": "refine"}, {"mode": "refine", "preview_task_id": "nope"},
                 {"mode": "refine", "preview_task_id": preview}):
        response = post(sandbox, TEXT, body)
        assert response.status_code == 400 and set(response.json()) == {"message"}, body
    preview_object = finished(sandbox, TEXT, preview)
    assert post(sandbox, TEXT, {"mode": "refine", "preview_task_id": preview}, OTHER_KEY).status_code == 400
    refine = create(sandbox, TEXT, {"mode": "refine", "preview_task_id": preview, "enable_pbr": True,
                                    "texture_prompt": "weathered granite", "texture_resolution": "4k"})
    assert post(sandbox, TEXT, {"mode": "refine", "preview_task_id": refine}).status_code == 400, \
        "a refine is not a preview"
    refined = finished(sandbox, TEXT, refine)
    draft_glb = requests.get(preview_object["model_urls"]["glb"], timeout=5).content
    refined_glb = requests.get(refined["model_urls"]["glb"], timeout=5).content
    assert positions(refined_glb) == positions(draft_glb), "the same mesh"
    document = glb_parts(refined_glb)[0]
    assert document["images"] and all("baseColorTexture" in m["pbrMetallicRoughness"]
                                      for m in document["materials"])
    assert set(refined["texture_urls"][0]) == {"base_color", "metallic", "normal", "roughness"}
    texture = decode_own_png(requests.get(refined["texture_urls"][0]["base_color"], timeout=5).content)
    assert texture.shape[2] == 3
    assert refined["preview_task_id"] == preview and refined["texture_prompt"] == "weathered granite"


def test_asset_links_expire_never_need_the_key_and_go_with_a_deleted_task() -> None:
    with MeshySandbox(state(url_lifetime_s=0.3)) as server:
        task_id = create(server, TEXT, {"mode": "preview", "prompt": "wooden crate"})
        link = finished(server, TEXT, task_id)["model_urls"]["glb"]
        assert not link.startswith(server.url) and link.startswith(server.asset_url), "a separate asset host"
        assert requests.get(link, timeout=5).status_code == 200
        assert requests.get(link.replace("sig=", "sig=0"), timeout=5).status_code == 403
        time.sleep(0.35)
        assert requests.get(link, timeout=5).status_code == 403, "expired"
        fresh = get(server, f"{TEXT}/{task_id}").json()["model_urls"]["glb"]
        assert requests.get(fresh, timeout=5).status_code == 200, "a new task object brings new links"
        assert server.state.asset_auth_headers == []
        requests.get(fresh, headers=AUTH, timeout=5)
        assert server.state.asset_auth_headers == [f"Bearer {KEY}"], "a key sent there would be seen"
        assert requests.delete(f"{server.url}{TEXT}/{task_id}", headers=AUTH, timeout=5).status_code == 200
        assert requests.get(fresh, timeout=5).status_code == 404
        assert get(server, f"{TEXT}/{task_id}").status_code == 404


def test_assets_can_sit_on_the_api_host_and_downloads_can_be_cut() -> None:
    with MeshySandbox(state(asset_route="/openapi/v1/assets/", drop_downloads=1)) as server:
        task_id = create(server, TEXT, {"mode": "preview", "prompt": "wooden crate"})
        link = finished(server, TEXT, task_id)["model_urls"]["glb"]
        assert link.startswith(server.url + "/openapi/v1/assets/")
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            requests.get(link, timeout=5)
        assert requests.get(link, timeout=5).content.startswith(b"glTF")
        assert [path for path, _ in server.state.asset_requests] == [link.split("?")[0][len(server.url):]] * 2
        assert server.state.asset_auth_headers == []


def test_delete_cancels_a_running_task_and_refunds_it() -> None:
    with MeshySandbox(state(latency_s={PREVIEW: 5.0})) as server:
        before = balance(server)
        task_id = create(server, TEXT, {"mode": "preview", "prompt": "wooden crate"})
        response = stream(server, TEXT, task_id)
        events = sse_events(response)
        assert next(events)[1]["status"] == "PENDING"
        assert requests.delete(f"{server.url}{TEXT}/{task_id}", headers=AUTH, timeout=5).status_code == 200
        assert list(events)[-1][1]["status"] == "CANCELED", "an open stream learns of it at once"
        response.close()
        task = get(server, f"{TEXT}/{task_id}").json()
        assert task["status"] == "CANCELED" and task["consumed_credits"] == 0 and balance(server) == before
        assert requests.delete(f"{server.url}{TEXT}/{task_id}", headers={"Authorization": f"Bearer {OTHER_KEY}"},
                               timeout=5).status_code == 404


def test_bad_requests_get_a_400_with_a_message(sandbox: MeshySandbox) -> None:
    bad = [
        (TEXT, {"mode": "preview"}),
        (TEXT, {"mode": "preview", "prompt": "x" * 601}),
        (TEXT, {"mode": "draft", "prompt": "crate"}),
        (TEXT, {"mode": "preview", "prompt": "crate", "target_polycount": 50}),
        (TEXT, {"mode": "preview", "prompt": "crate", "topology": "hex"}),
        ("/openapi/v1/image-to-3d", {"image_url": "not a url"}),
        ("/openapi/v1/image-to-3d", {"image_url": "data:image/gif;base64,R0lG"}),
        ("/openapi/v1/multi-image-to-3d", {"image_urls": [png_uri()] * 5}),
        ("/openapi/v1/multi-image-to-3d", {"image_urls": []}),
        ("/openapi/v1/remesh", {"topology": "quad"}),
        ("/openapi/v1/retexture", {"model_url": "https://example.com/a.glb"}),
    ]
    for route, body in bad:
        response = post(sandbox, route, body)
        assert response.status_code == 400 and set(response.json()) == {"message"}, (route, body)
    assert sandbox.state.tasks == {} and balance(sandbox) == 1000


def test_the_command_line_prints_its_url() -> None:
    process = subprocess.Popen([sys.executable, "-m", "sandbox.meshy", "--port", "0", "--queue-limit", "3"],
                               cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        response = requests.get(url + "/openapi/v1/balance", headers=AUTH, timeout=5)
        assert response.json() == {"balance": 1000}
    finally:
        process.terminate()
        process.wait(5)
