#!/usr/bin/env bash
# `make run`: a real AstrBot 4.29.3 in the git-ignored root .run/ with THIS checkout mounted
# as the plugin (a symlink), so edits are live after a reload from the dashboard.
# Env: DASHBOARD_HOST (default 127.0.0.1), DASHBOARD_PORT (default 6185),
#      RESET_PASSWORD=1 puts the dashboard password back to the one stored in .run/.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd -P)
root="$repo/.run"
plugin_name=astrbot_plugin_gemini25_image_openrouter
astrbot="$repo/.venv/bin/astrbot"
python="$repo/.venv/bin/python"
host=${DASHBOARD_HOST:-127.0.0.1}
port=${DASHBOARD_PORT:-6185}
password_file="$root/dashboard-password.txt"

[ -x "$astrbot" ] || { echo "missing $astrbot: run 'make venv' first" >&2; exit 1; }
mkdir -p "$root"
cd "$root"

# AstrBot's root is the current directory; `init -y` only creates .astrbot and data/ dirs.
if [ ! -e .astrbot ]; then
  "$astrbot" init -y >/dev/null
fi

# Mount the checkout. AstrBot finds plugins with os.path.isdir, which follows symlinks; an
# uninstall from the dashboard removes only the link, and "update" refuses a symlinked dir.
mkdir -p data/plugins
link="data/plugins/$plugin_name"
if [ -L "$link" ]; then
  [ "$(readlink "$link")" = "$repo" ] || ln -sfn "$repo" "$link"
elif [ -e "$link" ]; then
  echo "$root/$link exists and is not a symlink to this checkout; move it away first." >&2
  exit 1
else
  ln -s "$repo" "$link"
fi

# The initial dashboard password is generated once and kept here (mode 600). AstrBot applies
# it only while data/cmd_config.json has no password yet, or with RESET_PASSWORD=1.
if [ ! -s "$password_file" ]; then
  (umask 077 && "$python" - >"$password_file" <<'PY'
import secrets
import string

alphabet = string.ascii_letters + string.digits
while True:
    pw = "".join(secrets.choice(alphabet) for _ in range(16))
    if any(c.isupper() for c in pw) and any(c.islower() for c in pw) and any(c.isdigit() for c in pw):
        print(pw)
        break
PY
  )
fi
password=$(<"$password_file")

shown_host=$host
[ "$host" = "0.0.0.0" ] && shown_host=127.0.0.1
cat <<EOF

==============================================================================
 AstrBot 4.29.3 开发实例 / development instance
   根目录 Root:        $root
   插件 Plugin:        $link -> $repo
   管理面板 Dashboard: http://$shown_host:$port
   用户名 Username:    astrbot
   初始密码 Password:  $password   (保存在 saved in $password_file)

 首次登录后 AstrBot 会要求设置新的用户名和密码；之后请使用你设置的新密码。
 忘记密码时运行 RESET_PASSWORD=1 make run，密码会恢复为上面的初始密码（用户名不变）。
 On first login AstrBot asks you to choose a new username and password; use those afterwards.
 Forgot it? RESET_PASSWORD=1 make run puts the password back to the one above (username kept).

 试用：在「模型提供商」添加一个支持函数调用的对话模型，在插件配置里填写 OpenRouter 密钥，
 然后在「聊天」页让机器人画图。插件代码修改后，在「插件」页重载本插件即可生效。按 Ctrl-C 停止。
 To try it: add a chat model with tool calling under Providers, set the OpenRouter key in the
 plugin's config, then ask for a picture on the Chat page. After editing the plugin's code,
 reload it on the Plugins page. Ctrl-C stops AstrBot.
==============================================================================

EOF

export DASHBOARD_HOST=$host DASHBOARD_PORT=$port
export ASTRBOT_DASHBOARD_INITIAL_PASSWORD=$password
export ASTRBOT_DISABLE_METRICS=1
export ASTRBOT_ROOT=$root
if [ "${RESET_PASSWORD:-0}" = "1" ]; then
  export ASTRBOT_RESET_DASHBOARD_PASSWORD=1
fi
# exec: AstrBot becomes this process, so Ctrl-C (SIGINT) reaches it directly and it shuts down
# cleanly (plugins' terminate() runs).
exec "$astrbot" run
