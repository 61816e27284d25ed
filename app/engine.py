"""engine.io sessions that cost less memory each: the same protocol, fewer objects per idle connection.

python-engineio gives every session an asyncio.Queue (three deques and an Event with a fourth, 760
bytes each, on every idle connection), and every websocket session four tasks of its own beyond
aiohttp's two: a reader waiting through wait_for (a task and a timer), a writer waiting through
wait_for (on Python 3.11 another task, and a timer), and a task sleeping until the next PING. An
idle websocket then held about 15 kB of engine.io's objects, as much as aiohttp's whole connection
(bench/connmem.py shows where it goes).

Here a session has a SendQueue (a list and a counter), one PING timer serves every session, and a
websocket session has no task of its own while idle: its reader runs in aiohttp's request task,
and what is queued is sent by a task that runs only while there is something to send (a
WebSocketSender). The reader needs no timeout of its own: a client that closes the websocket ends
it, and every other end of a session goes through AsyncSocket.close (the client's CLOSE packet, a
ping timeout found by engine.io's service task, a server close), which ends a websocket session's
sending within the ping timeout; that closes the websocket, which ends the reader.

Private names of python-engineio used here are listed in tests/test_private_names.py.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

import engineio
from engineio import async_socket, exceptions, packet


class SendQueue:
    """What engine.io needs of a session's queue (asyncio.Queue's behaviour, unbounded), in a list.

    One consumer at a time in practice (a websocket's sender, or a long-poll), any number of
    producers; put never waits. `_unfinished_tasks` is asyncio.Queue's name for the packets put
    and not yet marked done, which app/broadcast.py reads on either kind of queue. `sender`, once
    set, is told of every put (a websocket session's), instead of a consumer waiting in get.
    """

    __slots__ = ("_items", "_getters", "_joiners", "_unfinished_tasks", "sender")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._getters: list[asyncio.Future[None]] = []
        self._joiners: list[asyncio.Future[None]] | None = None
        self._unfinished_tasks = 0
        self.sender: WebSocketSender | None = None

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return False

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        self._unfinished_tasks += 1
        if self.sender is not None:
            self.sender.wake()
        else:
            self._wake_getter()

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.pop(0)

    async def get(self) -> Any:
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                # As asyncio.Queue.get: a getter woken and then cancelled passes its wake-up on.
                getter.cancel()
                if getter in self._getters:
                    self._getters.remove(getter)
                if self._items and not getter.cancelled():
                    self._wake_getter()
                raise
        return self._items.pop(0)

    def task_done(self) -> None:
        if self._unfinished_tasks <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished_tasks -= 1
        if self._unfinished_tasks == 0 and self._joiners:
            joiners, self._joiners = self._joiners, None
            for joiner in joiners:
                if not joiner.done():
                    joiner.set_result(None)

    async def join(self) -> None:
        if self._unfinished_tasks > 0:
            joiner = asyncio.get_running_loop().create_future()
            if self._joiners is None:
                self._joiners = []
            self._joiners.append(joiner)
            try:
                await joiner
            finally:
                if self._joiners and joiner in self._joiners:
                    self._joiners.remove(joiner)

    def _wake_getter(self) -> None:
        while self._getters:
            getter = self._getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                break


class WebSocketSender:
    """Sends a websocket session's queue, in order, from a task that runs only while the queue holds
    something (engine.io's writer task waited on the queue for the session's whole life), until
    engine.io's end-of-queue marker (None) or a failed send; then closes the websocket.

    A packet is marked done as it is taken, as engine.io's poll does; while the task is scheduled
    the queue is not empty, and while it sends, the websocket's send is in progress: app/broadcast.py
    sees either as a busy recipient.
    """

    __slots__ = ("queue", "ws", "task", "ended")

    def __init__(self, queue: SendQueue, ws: Any) -> None:
        self.queue = queue
        self.ws = ws
        self.task: asyncio.Task[None] | None = None
        self.ended = False

    def wake(self) -> None:
        if self.task is None and not self.ended:
            self.task = asyncio.ensure_future(self._send())

    async def _send(self) -> None:
        queue = self.queue
        try:
            while not self.ended and not queue.empty():
                pkt = queue.get_nowait()
                queue.task_done()
                if pkt is None:
                    self.ended = True
                else:
                    await self.ws.send(pkt.encode())
        except Exception:  # noqa: BLE001 - a failed send ends the connection, as engine.io's writer does
            self.ended = True
        try:
            if self.ended:
                await self.ws.close()
        except Exception:  # noqa: BLE001 - closing a websocket that failed: nothing left to tell anyone
            pass
        finally:
            self.task = None


async def _drop_until_closed(ws: Any) -> None:
    """Read and drop what a closed session's client still sends, until its websocket ends."""
    try:
        while await ws.wait() is not None:
            pass
    except (Exception, asyncio.CancelledError):  # noqa: BLE001 - any end of the websocket ends the drop
        pass


class Pinger:
    """engine.io's PINGs for every session, from one timer: each session waits the same
    ping interval after its last PONG, so the sessions due are in the order they were scheduled."""

    def __init__(self) -> None:
        self._due: deque[tuple[float, LeanSocket]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._due)

    def schedule(self, socket: LeanSocket, delay_s: float) -> None:
        loop = asyncio.get_running_loop()
        when = loop.time() + delay_s
        self._due.append((when, socket))
        if self._timer is None:
            self._timer = loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        due = self._due
        while due and due[0][0] <= now:
            due.popleft()[1].ping()
        if due:
            self._timer = loop.call_at(due[0][0], self._fire)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._due.clear()


class Engine(engineio.AsyncServer):
    """engine.io's server, whose sessions are LeanSockets (once `adopt`ed) with SendQueues."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pinger = Pinger()

    def create_queue(self, *args: Any, **kwargs: Any) -> SendQueue:
        """The queue engine.io's AsyncSocket makes for itself (BaseSocket.__init__)."""
        return SendQueue()

    def adopt(self, sid: str) -> None:
        """Make session `sid` a LeanSocket. Called from its connect event, which engine.io fires
        once the session exists and before it schedules the first PING or runs a websocket.

        engine.io builds each session as `async_socket.AsyncSocket(...)` inside its handshake, with
        no hook to choose the class; switching the class of that one object (LeanSocket adds
        methods, no state) is the one way to change what a session does without replacing the
        handshake or patching the module for every server in the process.
        """
        socket = self.sockets.get(sid)
        if type(socket) is async_socket.AsyncSocket:
            socket.__class__ = LeanSocket

    async def shutdown(self) -> None:
        self.pinger.stop()
        await super().shutdown()


class LeanSocket(async_socket.AsyncSocket):
    """An AsyncSocket whose PING comes from the engine's Pinger, and whose websocket holds no task
    of its own while idle."""

    server: Engine
    # As engine.io's BaseSocket sets them (annotated here for mypy, which cannot infer them there).
    last_ping: float | None
    connected: bool

    # Private: engine.io calls schedule_ping at the handshake and at each PONG; its own starts a task
    # that sleeps through the ping interval (_send_ping), for every session.
    def schedule_ping(self) -> None:
        if self.last_ping:  # as engine.io's: only once the previous PING was answered
            self.last_ping = None
            self.server.pinger.schedule(self, self.server.ping_interval)

    def ping(self) -> None:
        """What engine.io's _send_ping does after its sleep: the PING through the queue."""
        if not self.closing and not self.closed:
            self.last_ping = time.time()
            self.queue.put_nowait(packet.Packet(packet.PING))

    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        """engine.io's close; then a websocket session's sending is ended, which closes the
        websocket, within the ping timeout: replies still in flight (an ack a handler is
        finishing) go out meanwhile, and a client that closes the websocket itself ends it
        sooner. engine.io's own reader and writer found the end through their 45 s timeouts (the
        only way after a ping timeout, whose close queues no CLOSE packet). A timer only for a
        session that is closing."""
        closing = not self.closed and not self.closing
        await super().close(wait=wait, abort=abort, reason=reason)
        if closing and self.upgraded:
            # None: engine.io's own end-of-queue marker, as its websocket handler puts it.
            asyncio.get_running_loop().call_later(self.server.ping_timeout, self.queue.put_nowait, None)

    # Private: engine.io's websocket loop, run by its aiohttp websocket wrapper (the handler it was
    # built with). The same steps as engine.io's own, upgrade included, without the reader's task,
    # the two wait_for timers, and the writer task (a WebSocketSender instead).
    async def _websocket_handler(self, ws: Any) -> None:
        if self.connected:  # an upgrade from long-polling: the probe, then the UPGRADE packet
            self.upgrading = True  # engine.io holds packet sends meanwhile
            try:
                probe = packet.Packet(encoded_packet=await self._receive(ws))
            except (OSError, ValueError):
                self.upgrading = False
                return
            if probe.packet_type != packet.PING or probe.data != "probe":
                self.upgrading = False
                return
            await ws.send(packet.Packet(packet.PONG, data="probe").encode())
            await self.queue.put(packet.Packet(packet.NOOP))  # ends the pending long-poll
            try:
                upgrade = packet.Packet(encoded_packet=await self._receive(ws))
            except (OSError, ValueError):
                self.upgrading = False
                return
            self.upgrading = False
            if upgrade.packet_type != packet.UPGRADE:
                self.upgraded = False
                return
            self.upgraded = True
        else:
            self.connected = True
            self.upgraded = True

        sender = self.queue.sender = WebSocketSender(self.queue, ws)
        sender.wake()  # what was queued before (engine.io's OPEN packet, or what came during the upgrade)
        try:
            while True:
                try:
                    # ws.wait awaited here, not through _receive: one coroutine fewer held per connection.
                    data = await ws.wait()
                    if data and len(data) > self.server.max_http_buffer_size:
                        break  # as engine.io's: a packet too large ends the connection
                # Any failure, or a cancel, ends the loop, as in engine.io's.
                except (Exception, asyncio.CancelledError):  # noqa: BLE001
                    break
                if data is None:  # the client closed
                    break
                # One turn of the loop per packet, as engine.io's reader takes (a task per read): a
                # burst of buffered frames does not hold the loop, and the events it starts get on.
                await asyncio.sleep(0)
                try:
                    await self.receive(packet.Packet(encoded_packet=data))
                except exceptions.UnknownPacketError:
                    pass
                except exceptions.SocketIsClosedError:
                    # Closed by the server (a refused packet, a revocation): its sender is closing the
                    # websocket, and aiohttp's close waits for the client's CLOSE frame through this
                    # reader. Frames until then are read and dropped, so the close completes (or
                    # times out) as with engine.io's own loop, rather than the transport being cut
                    # under a client that is still sending. Dropped unparsed and without a turn of
                    # the loop each: an attacker's flood is read off as fast as it comes.
                    await _drop_until_closed(ws)
                    break
                except Exception:  # noqa: BLE001 - logged, and the connection goes on, as engine.io's
                    self.server.logger.exception("Unknown receive error")
        finally:
            self.queue.put_nowait(None)  # the sending ends, and closes the websocket
            try:
                # Shielded: aiohttp cancels this task when the connection is lost (with handler
                # cancellation on), and the cancel must not reach the sender before it closed.
                if sender.task is not None:
                    await asyncio.shield(sender.task)
            except asyncio.CancelledError:
                pass  # as engine.io's loop takes a cancel: the end of the connection, closed below
            await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)

    async def _receive(self, ws: Any) -> Any:
        data = await ws.wait()
        if data and len(data) > self.server.max_http_buffer_size:
            raise ValueError("packet is too large")
        return data
