"""Every word a chat user, an admin or the chat model reads, in Chinese and in English.

One module per audience or concern; callers import the module they need:

- `language`: the `Lang` of a chat (chosen from the `reply_lang` setting and the message), and
  the pair primitives `say()` and `Words` every other module builds on;
- `units`: times, durations, money and sizes as messages show them;
- `command_names`: the commands' Chinese names and English aliases;
- `failures`: every failure (utils/core/errors.py) as one sentence;
- `replies`: what a request says while and after it runs (progress, remarks, what the chat
  model is handed, what a detached request tells the chat);
- `help`: /画图帮助 (/draw_help) and the usage lines;
- `admin`: /画图配置, /画图接口 and the "switched / saved" replies;
- `keys`: /画图密钥 (the key pool);
- `models`: /画图模型 (the image models, their abilities and prices);
- `spend`: daily cap refusals and /画图统计;
- `tool`: the tool's description and its arguments' descriptions for the chat model.

Nothing here ever includes an API key, a traceback, a host address meant for admins only, or a
raw upstream body. Only utils/chat and main.py import this package.
"""
