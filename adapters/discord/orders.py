"""A person's request on Discord as one ``Order`` to the core: the one step /anime, "Animefy" and the style
buttons share. The core fills in what the order leaves open from the person's /settings, tells a clip from a
photo, applies the rate limit and the queue's admission, and only then keeps a new upload for the buttons.
"""

from __future__ import annotations

import discord

from adapters.discord.checks import guild_key, person_key
from adapters.discord.client import AnimeClient
from bot.orders import Accepted, Order


async def submit_order(
    interaction: discord.Interaction[AnimeClient],
    *,
    image: bytes | None = None,
    source: str | None = None,
    style: str | None = None,
    strength: float | None = None,
) -> Accepted:
    """Submit new bytes (``image``) or a kept photo (``source``, a button's key) for the interaction's person.

    ``style`` and ``strength`` (0..1) only when the command or button names them. A new upload is kept as the
    person's, so that /forget deletes it. Raises what ``Service.submit`` raises (``SourceExpired`` and the other
    ``JobError``\\ s), each with the sentence to show.
    """
    service = interaction.client.service
    person = person_key(interaction.user.id)
    chosen = await service.chat_settings.load(person)
    group = guild_key(interaction.guild_id)
    order = Order(
        user=person,
        image=image,
        source=source,
        style=style,
        strength=strength,
        chosen=chosen,
        owner=person,
        group=group,
    )
    return await service.submit(order)
