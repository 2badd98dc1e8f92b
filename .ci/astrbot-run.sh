#!/usr/bin/env bash
# `make run`: a real AstrBot 4.29.3 in the git-ignored root .run/ with THIS checkout mounted as
# the plugin, so edits are live after a reload from the dashboard. The plugin directory is a
# real directory of symlinks to the checkout, its pages hard-linked (.ci/dev_instance.py says
# why), laid out again at every start; the dashboard user is made a bot admin at every start.
# Env: DASHBOARD_HOST (default 127.0.0.1), DASHBOARD_PORT (default 6185),
#      RESET_PASSWORD=1 puts the dashboard password back to the one stored in the root,
#      ASTRBOT_RUN_ROOT (default .run; the tests use a temporary one).
# `--prepare` does everything but start AstrBot (the tests check what it leaves).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd -P)
root=${ASTRBOT_RUN_ROOT:-$repo/.run}
plugin_name=astrbot_plugin_gemini25_image_openrouter
astrbot="$repo/.venv/bin/astrbot"
python="$repo/.venv/bin/python"
helper="$repo/.ci/dev_instance.py"
host=${DASHBOARD_HOST:-127.0.0.1}
port=${DASHBOARD_PORT:-6185}
prepare_only=0
[ "${1:-}" = "--prepare" ] && prepare_only=1

[ -x "$astrbot" ] || { echo "missing $astrbot: run 'make venv' first" >&2; exit 1; }
mkdir -p "$root"
root=$(cd "$root" && pwd -P)
password_file="$root/dashboard-password.txt"
cd "$root"

# AstrBot's root is the current directory; `init -y` only creates .astrbot and data/ dirs.
if [ ! -e .astrbot ]; then
  ASTRBOT_ROOT=$root ASTRBOT_DISABLE_METRICS=1 "$astrbot" init -y >/dev/null
fi

# Mount the checkout: a real directory inside data/plugins (AstrBot 4.29.3's page service
# rejects a plugin directory that resolves outside it), laid out afresh at every start.
link="data/plugins/$plugin_name"
"$python" "$helper" mount "$repo" "$root/$link"

# The dashboard user (renamed at the first login) becomes a bot admin: it is WebChat's sender.
IFS=$'\t' read -r admin admin_change < <("$python" "$helper" admins "$root/data/cmd_config.json")

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
admin_note=""
[ "$admin_change" = "added" ] && admin_note="（刚加入 admins_id / just added to admins_id）"
cat <<EOF

==============================================================================
 AstrBot 4.29.3 开发实例 / development instance
   根目录 Root:        $root
   插件 Plugin:        $root/$link -> $repo
   管理面板 Dashboard: http://$shown_host:$port   (DASHBOARD_HOST, DASHBOARD_PORT)
   用户名 Username:    $admin
   初始密码 Password:  $password   (保存在 saved in $password_file)
   机器人管理员 Admin: $admin $admin_note

 首次登录后 AstrBot 会要求设置新的用户名和密码；之后请使用你设置的新密码。
 忘记密码时运行 RESET_PASSWORD=1 make run，密码会恢复为上面的初始密码（用户名不变）。
 On first login AstrBot asks you to choose a new username and password; use those afterwards.
 Forgot it? RESET_PASSWORD=1 make run puts the password back to the one above (username kept).

 管理员指令（/画图统计 等）：「聊天」页里发消息的是面板用户，make run 每次启动都把面板用户名
 加入 AstrBot 的管理员 ID（admins_id）。首次登录改了用户名后，按 Ctrl-C 再 make run 一次；
 或在「配置文件」→「访问控制」→「管理员 ID」里添加新用户名并点保存（立即生效）。
 Admin commands (/画图统计 ...): the Chat page's sender is the dashboard user, and every
 make run adds its name to AstrBot's admin IDs (admins_id). After renaming it at the first
 login, press Ctrl-C and make run again, or add the new name under Config -> Access Control
 -> Administrator IDs and save (applies at once).

 花费页面：左侧菜单「扩展功能」下的「Gemini 2.5 Image OpenRouter」，或直接打开
 Spend page: "Gemini 2.5 Image OpenRouter" under EXTENSIONS in the side menu, or open
   http://$shown_host:$port/#/plugin-view/$plugin_name/spend
 试用：在「模型提供商」添加一个支持函数调用的对话模型，在插件配置里填写 OpenRouter 密钥，
 然后在「聊天」页让机器人画图。插件代码修改后，在「插件」页重载本插件即可生效。按 Ctrl-C 停止。
 To try it: add a chat model with tool calling under Providers, set the OpenRouter key in the
 plugin's config, then ask for a picture on the Chat page. After editing the plugin's code,
 reload it on the Plugins page. Ctrl-C stops AstrBot.
==============================================================================

EOF

[ "$prepare_only" = 1 ] && exit 0

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
