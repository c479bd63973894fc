"""``animebot serve`` as people run it: one process, web + Telegram on one pool, SIGTERM drains and exits, and
buttons and source keys outlive a restart of the process."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import numpy as np
from PIL import Image

from tests.fake_telegram import FakeTelegram, FakeUser

STARTUP_TIMEOUT = 180.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_ready(url: str, process: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(int(STARTUP_TIMEOUT * 2)):
            assert process.returncode is None, "animebot serve exited during start-up"
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise AssertionError("animebot serve did not become ready")


def serve_env(weights_dir: Path, port: int, telegram: FakeTelegram, **more: str) -> dict[str, str]:
    """The environment of ``animebot serve`` with web + Telegram (the fake) at a 256 px working size."""
    return {
        **os.environ,
        "ANIMEBOT_WEIGHTS_DIR": str(weights_dir),
        "ANIMEBOT_PORT": str(port),
        "ANIMEBOT_WORKING_SIZE": "256",
        "ANIMEBOT_WORKERS": "1",
        "ANIMEBOT_TELEGRAM_TOKEN": telegram.token,
        "ANIMEBOT_TELEGRAM_BASE_URL": telegram.base_url,
        "ANIMEBOT_TELEGRAM_BASE_FILE_URL": telegram.base_file_url,
        **more,
    }


async def test_serve_runs_web_and_telegram_on_one_pool(weights_dir: Path, coffee: np.ndarray) -> None:
    port = free_port()
    async with FakeTelegram() as telegram:
        async with serving(serve_env(weights_dir, port, telegram), port) as output:
            user = FakeUser(id=4242, first_name="Mika")
            chat = telegram.private_chat(user)
            buffer = io.BytesIO()
            Image.fromarray(coffee).save(buffer, "JPEG")
            telegram.send_photo(user, chat, buffer.getvalue())
            async with aiohttp.ClientSession() as session:
                form = aiohttp.FormData()
                form.add_field("image", buffer.getvalue(), filename="coffee.jpg", content_type="image/jpeg")
                async with session.post(f"http://127.0.0.1:{port}/api/v1/stylize", data=form) as response:
                    assert response.status == 200
                    assert response.content_type == "image/jpeg"
                    web_result = await response.read()
                async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                    assert "animebot_jobs_total" in await response.text()
            await telegram.wait_until(lambda: bool(telegram.calls_to("sendPhoto", chat.id)), 120)
            sent = telegram.calls_to("sendPhoto", chat.id)[0].files["photo"].data
            assert Image.open(io.BytesIO(sent)).size == Image.open(io.BytesIO(web_result)).size == (256, 171)
        log = "".join(output)
        assert "telegram front end started" in log and "finishing the photos already accepted" in log
        assert telegram.token.partition(":")[2] not in log  # the token never reaches a log


async def start_serve(env: dict[str, str]) -> asyncio.subprocess.Process:
    """``animebot serve`` as its own process with ``env``, its output (stdout and stderr) in one pipe."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "serve",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


@asynccontextmanager
async def serving(env: dict[str, str], port: int) -> AsyncIterator[list[str]]:
    """``animebot serve`` as its own process, ready; stopped with SIGTERM afterwards (it must exit 0).

    Yields a list that holds the process's whole output once it has exited.
    """
    process = await start_serve(env)
    output: list[str] = []
    try:
        await wait_ready(f"http://127.0.0.1:{port}/readyz", process)
        yield output
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        output.append((await asyncio.wait_for(process.communicate(), 60))[0].decode())
    assert process.returncode == 0, output[0]


async def test_buttons_and_source_keys_outlive_a_restart_of_serve(
    weights_dir: Path, coffee: np.ndarray, tmp_path: Path
) -> None:
    port = free_port()
    buffer = io.BytesIO()
    Image.fromarray(coffee).resize((256, 171)).save(buffer, "JPEG")
    async with FakeTelegram() as telegram:
        env = serve_env(weights_dir, port, telegram, ANIMEBOT_DATA_DIR=str(tmp_path))
        user = FakeUser(id=4343, first_name="Rei")
        chat = telegram.private_chat(user)
        async with serving(env, port):
            telegram.send_photo(user, chat, buffer.getvalue())
            async with aiohttp.ClientSession() as session:
                form = aiohttp.FormData()
                form.add_field("image", buffer.getvalue(), filename="coffee.jpg", content_type="image/jpeg")
                async with session.post(f"http://127.0.0.1:{port}/api/v1/stylize", data=form) as response:
                    assert response.status == 200
                    source = response.headers["X-Source-Key"]
            await telegram.wait_until(lambda: bool(telegram.calls_to("sendPhoto", chat.id)), 120)
        (reply,) = [message for message in telegram.bot_messages(chat.id) if "photo" in message]

        async with serving(env, port):  # a new process: nothing of the first one is in memory
            hayao = next(b for row in reply["reply_markup"]["inline_keyboard"] for b in row if b["text"] == "Hayao")
            telegram.press_button(user, reply, hayao["callback_data"])
            async with aiohttp.ClientSession() as session:
                form = aiohttp.FormData({"source": source, "style": "sketch"})
                async with session.post(f"http://127.0.0.1:{port}/api/v1/stylize", data=form) as response:
                    assert response.status == 200, await response.text()
                    assert response.headers["X-Source-Key"] == source
            await telegram.wait_until(lambda: bool(telegram.calls_to("editMessageMedia", chat.id)), 120)

        assert telegram.message(chat.id, reply["message_id"])["caption"].startswith("Hayao")
        assert not telegram.refused()
