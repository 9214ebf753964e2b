"""The HTTP producer's client on real sockets: one keep-alive connection carries request after
request, a server's `Connection: close` or a lost answer ends that connection, and an
unreachable server is told apart from an unanswered request."""

from __future__ import annotations

import asyncio

import pytest

from loadgen.http_client import Client, NotSent, Unanswered
from tests.support.ports import free_port

ANSWER = (b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\n"
          b"content-length: 15\r\n%s\r\n{\"batch\": \"b1\"}")


async def _serve(script: list[bytes | None]):
    """A server answering each request with the next entry of `script` (None: close without
    answering); returns (server, connections made, request bodies read)."""
    connections: list[int] = []
    bodies: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                bodies.append(await reader.readexactly(length))
                answer = script.pop(0)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if b"connection: close" in answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    port = free_port()
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    return server, port, connections, bodies


def _client(port: int) -> Client:
    return Client(f"http://127.0.0.1:{port}", {"X-API-KEY": "k"}, 4, 30.0, 10.0)


def test_requests_share_one_kept_alive_connection_until_the_server_closes_it():
    async def run():
        script = [ANSWER % b"", ANSWER % b"", ANSWER % b"connection: close\r\n", ANSWER % b""]
        server, port, connections, bodies = await _serve(script)
        async with server:
            client = _client(port)
            head = client.request_head("/alerts/event/keep")
            answers = [await client.post(head, b'{"n": %d}' % n) for n in range(4)]
            client.close()
        return answers, connections, bodies

    answers, connections, bodies = asyncio.run(run())
    assert [a.status for a in answers] == [202] * 4
    assert all(a.body == b'{"batch": "b1"}' for a in answers)
    assert bodies == [b'{"n": %d}' % n for n in range(4)]
    assert len(connections) == 2   # three on the first, the fourth after its close


def test_a_lost_answer_is_unanswered_and_no_server_is_not_sent():
    async def run():
        server, port, _connections, bodies = await _serve([None])
        async with server:
            client = _client(port)
            with pytest.raises(Unanswered):
                await client.post(client.request_head("/alerts/event/keep"), b"{}")
        nobody = _client(free_port())
        with pytest.raises(NotSent):
            await nobody.post(nobody.request_head("/alerts/event/keep"), b"{}")
        return bodies

    assert asyncio.run(run()) == [b"{}"]
