"""People's settings outlive a full restart of ``animebot serve`` (the SQLite file in the data dir)."""

from __future__ import annotations

from pathlib import Path

from tests.fake_telegram import FakeTelegram, FakeUser
from tests.test_serve import free_port, serve_env, serving

REPLY_TIMEOUT = 120.0


async def test_settings_chosen_before_a_restart_of_serve_hold_after_it(weights_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    async with FakeTelegram() as telegram:
        env = serve_env(weights_dir, port, telegram, ANIMEBOT_DATA_DIR=str(tmp_path))
        user = FakeUser(id=4545, first_name="Asuka", language_code="en")
        chat = telegram.private_chat(user)
        async with serving(env, port) as first_output:
            telegram.send_text(user, chat, "/settings")
            await telegram.wait_until(
                lambda: any("Settings" in m.get("text", "") for m in telegram.bot_messages(chat.id)), REPLY_TIMEOUT
            )
            (panel,) = [m for m in telegram.bot_messages(chat.id) if "Settings" in m.get("text", "")]
            buttons = {b["text"]: b["callback_data"] for row in panel["reply_markup"]["inline_keyboard"] for b in row}
            telegram.press_button(user, panel, buttons["Español"])
            await telegram.wait_until(lambda: bool(telegram.calls_to("editMessageText", chat.id)), REPLY_TIMEOUT)
            telegram.send_text(user, chat, "/style hayao")
            await telegram.wait_until(
                lambda: any("Hayao" in m.get("text", "") for m in telegram.bot_messages(chat.id)), REPLY_TIMEOUT
            )

        async with serving(env, port):  # a new process: only the data dir is shared
            help_request = telegram.send_text(user, chat, "/settings")
            await telegram.wait_until(lambda: bool(telegram.replies_to(help_request)), REPLY_TIMEOUT)
        (after,) = telegram.replies_to(help_request)

    assert after["text"].startswith("Ajustes de este chat:\nEstilo: Hayao")
    assert (tmp_path / "settings.sqlite3").is_file()
    assert not telegram.refused()
    assert first_output  # the first process exited cleanly (serving checks the exit code)
