"""Streaming query listeners where threads cannot start (patch 0025): a clear error before
anything reaches the server, instead of a failed Thread.start() after the server-side
listener was registered."""

import pytest
from pyspark.errors import PySparkNotImplementedError
from pyspark.sql.connect.client import reattach
from pyspark.sql.connect.streaming import query
from pyspark.sql.streaming import StreamingQueryListener


class Listener(StreamingQueryListener):
    def onQueryStarted(self, event):
        pass

    def onQueryProgress(self, event):
        pass

    def onQueryIdle(self, event):
        pass

    def onQueryTerminated(self, event):
        pass


class Client:
    """The Connect client's command calls, recorded (none may be made)."""

    def __init__(self):
        self.commands = []

    def execute_command_as_iterator(self, command):
        self.commands.append(command)
        raise AssertionError("the listener was registered on the server")


class Manager:
    def __init__(self, client):
        self._session = type("Session", (), {"client": client})()


def test_a_listener_is_refused_where_threads_cannot_start(monkeypatch):
    monkeypatch.setattr(reattach, "_can_start_threads", lambda: False)
    client = Client()
    bus = query.StreamingQueryListenerBus(Manager(client))
    with pytest.raises(PySparkNotImplementedError) as info:
        bus.append(Listener())
    assert info.value.getCondition() == "STREAMING_LISTENER_NEEDS_THREADS"
    message = str(info.value)
    assert "cannot start threads" in message and "lastProgress" in message
    assert client.commands == [] and bus._listener_bus == []


def test_with_threads_the_listener_is_registered_on_the_server(monkeypatch):
    monkeypatch.setattr(reattach, "_can_start_threads", lambda: True)
    client = Client()
    bus = query.StreamingQueryListenerBus(Manager(client))
    # Upstream's path: the registration is sent (and its failure is a warning).
    with pytest.warns(UserWarning, match="Failed to add the listener"):
        bus.append(Listener())
    assert len(client.commands) == 1
