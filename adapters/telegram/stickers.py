"""Telegram stickers: the "Sticker" button under a result sends the picture as a 512 px WEBP sticker, whose own
"Add to my sticker pack" button puts it in the presser's pack ``anime_<user id>_by_<bot name>``: made with
``createNewStickerSet`` the first time, grown with ``addStickerToSet`` after that. The pack's name is kept in
the settings store (``/forget`` drops it; the pack itself stays the person's, on Telegram).

The sticker is made from the picture the message shows (downloaded from Telegram), so it is exactly what the
person sees, with no new job in the queue.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputSticker, Message, Update
from telegram.constants import StickerFormat
from telegram.error import BadRequest

from adapters.telegram.chats import person_owner, query_of, translator
from adapters.telegram.context import BotContext
from adapters.telegram.texts import NO_PICTURE

ADD_TO_PACK_DATA = "stk+"
STICKER_DATA_PATTERN = r"^stk$"  # looks.STICKER_DATA
ADD_TO_PACK_DATA_PATTERN = r"^stk\+$"
STICKER_EMOJI = "🎨"
PACK_LINK = "https://t.me/addstickers/{name}"
PACK_TITLE_LIMIT = 64  # characters Telegram takes in a sticker set's title


def pack_name(user_id: int, bot_username: str) -> str:
    """The person's pack: Telegram wants letters, digits and single underscores, ending in ``_by_<bot>``."""
    return f"anime_{user_id}_by_{bot_username}"


async def on_sticker_button(update: Update, context: BotContext) -> None:
    """Send the result's picture as a sticker, with a button to add it to the presser's pack."""
    query = query_of(update)
    _ = await translator(update, context)
    reply = query.message
    if not isinstance(reply, Message) or not reply.photo:
        await query.answer(_(NO_PICTURE), show_alert=True)
        return
    await query.answer()
    picture = bytes(await (await reply.photo[-1].get_file()).download_as_bytearray())
    sticker = await context.service.sticker(picture)
    add = InlineKeyboardButton(_("Add to my sticker pack"), callback_data=ADD_TO_PACK_DATA)
    await reply.reply_sticker(sticker, reply_markup=InlineKeyboardMarkup([[add]]))


async def on_add_to_pack(update: Update, context: BotContext) -> None:
    """Add the sticker under the button to the presser's own pack (making the pack the first time)."""
    query = query_of(update)
    _ = await translator(update, context)
    message = query.message
    if not isinstance(message, Message) or message.sticker is None:
        await query.answer(_(NO_PICTURE), show_alert=True)
        return
    store = context.service.chat_settings
    owner = person_owner(update)
    user = query.from_user
    sticker = InputSticker(message.sticker.file_id, [STICKER_EMOJI], StickerFormat.STATIC)
    name = await store.sticker_set(owner)
    if name is None:
        name = pack_name(user.id, context.bot.username)
        title = _("{name}'s anime stickers", name=user.first_name)[:PACK_TITLE_LIMIT]
        try:
            await context.bot.create_new_sticker_set(user.id, name, title, [sticker])
        except BadRequest as error:
            if "occupied" not in error.message.lower():  # made before a /forget: it is still theirs, add to it
                raise
            await context.bot.add_sticker_to_set(user.id, name, sticker)
        await store.keep_sticker_set(owner, name)
        await query.answer(_("Made your sticker pack."))
    else:
        await context.bot.add_sticker_to_set(user.id, name, sticker)
        await query.answer(_("Added to your sticker pack."))
    await message.reply_text(_("Your sticker pack: {link}", link=PACK_LINK.format(name=name)))
