"""``animebot serve`` as people run it: one process, web + Telegram on one pool, SIGTERM drains and exits."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import sys
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


async def test_serve_runs_web_and_telegram_on_one_pool(weights_dir: Path, coffee: np.ndarray) -> None:
    port = free_port()
    async with FakeTelegram() as telegram:
        env = {
            **os.environ,
            "ANIMEBOT_WEIGHTS_DIR": str(weights_dir),
            "ANIMEBOT_PORT": str(port),
            "ANIMEBOT_WORKING_SIZE": "256",
            "ANIMEBOT_WORKERS": "1",
            "ANIMEBOT_TELEGRAM_TOKEN": telegram.token,
            "ANIMEBOT_TELEGRAM_BASE_URL": telegram.base_url,
            "ANIMEBOT_TELEGRAM_BASE_FILE_URL": telegram.base_file_url,
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "serve", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        try:
            await wait_ready(f"http://127.0.0.1:{port}/readyz", process)
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
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            output = (await asyncio.wait_for(process.communicate(), 60))[0].decode()
        assert process.returncode == 0, output
        assert "telegram bot started" in output and "finishing the photos already accepted" in output
        assert telegram.token.partition(":")[2] not in output  # the token never reaches a log
