"""Shared fixtures of the test suite."""

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.settings import Settings, load_settings
from server.staff import add_staff
from server.state import DB
from tests.smtpserver import SmtpServer

pytest_plugins = ["tests.postgres"]

REPO = Path(__file__).resolve().parent.parent
STAFF_PASSWORD = "correct horse battery"

AiohttpClient = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A running SMTP server (aiosmtpd) on 127.0.0.1."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings for one test: a fresh data directory (SQLite file) and the shipped templates."""
    monkeypatch.delenv("MADOGUCHI_CONFIG", raising=False)
    return load_settings(data_dir=tmp_path / "data", templates_dir=REPO / "consult_templates")


@pytest.fixture
def app(settings: Settings) -> web.Application:
    """The application under test, not yet started."""
    return create_app(settings)


@pytest.fixture
async def client(app: web.Application, aiohttp_client: AiohttpClient) -> TestClient[Any, Any]:
    """A test client of the started app (database migrated)."""
    return await aiohttp_client(app)


async def logged_in(client: TestClient[Any, Any]) -> TestClient[Any, Any]:
    """Log `client` in as staff `clerk`; its CSRF token is sent with every request after."""
    async with client.app[DB].begin() as session:
        await add_staff(session, "clerk", "市民課 佐藤", STAFF_PASSWORD)
    response = await client.post("/api/login", json={"login": "clerk", "password": STAFF_PASSWORD})
    assert response.status == 200, await response.text()
    client.session.headers["X-CSRF-Token"] = (await response.json())["csrf_token"]
    return client


@pytest.fixture
async def staff_client(client: TestClient[Any, Any]) -> TestClient[Any, Any]:
    """A client logged in as staff `clerk`."""
    return await logged_in(client)


@pytest.fixture
async def smtp_client(
    tmp_path: Path, smtp: SmtpServer, aiohttp_client: AiohttpClient
) -> TestClient[Any, Any]:
    """A started app that mails through the test SMTP server, logged in as staff `clerk`."""
    settings = load_settings(
        data_dir=tmp_path / "data",
        templates_dir=REPO / "consult_templates",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_security="none",
        mail_from="madoguchi@city.example",
    )
    return await logged_in(await aiohttp_client(create_app(settings)))
