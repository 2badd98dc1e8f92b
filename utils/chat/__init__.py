"""The chat side: the request pipeline, commands, admin settings, limits, translation,
delivery, and every text users read."""
