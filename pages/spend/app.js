// The spend page: reads the plugin's JSON through the dashboard's bridge and draws it.
// No libraries: the chart is an SVG built here. Its words follow the dashboard's language
// (the bridge passes the locale, and passes it again when the admin switches): Chinese for
// zh-*, English otherwise.
const bridge = window.AstrBotPluginPage;
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

const TEXTS = {
  zh: {
    lang: "zh-CN",
    title: "画图花费统计",
    loading: "加载中…",
    refresh: "刷新",
    todayPictures: "今天生成图片",
    todayCost: "今天花费",
    weekPictures: "近 7 天图片",
    weekCost: "近 7 天花费",
    caps: "每日上限",
    chartTitle: (n) => `近 ${n} 天每天的图片与花费`,
    legendPictures: "图片（张，左轴）",
    legendSpend: "花费（美元，右轴）",
    keysTitle: "密钥池",
    keysHead: ["密钥", "状态", "成功", "失败", "进行中", "剩余额度", "今日已用"],
    usersTitle: "今天的用户排行",
    usersHead: ["#", "用户", "平台", "图片", "花费"],
    groupsTitle: "今天的群排行",
    groupsHead: ["#", "群", "平台", "图片", "花费"],
    latestTitle: "最新图片",
    latestNote: "（只显示仍在保留期内的图片）",
    pictures: (n) => `${n} 张`,
    unknown: "未知",
    unknownShort: (n) => `${n} 次未知`,
    notes: (list) => `（${list.join("，")}）`,
    unreported: (n) => `另有 ${n} 次未报告花费`,
    pending: (n) => `${n} 次花费查询中`,
    billedBlank: (n, cost) => `另有 ${n} 次未出图但已计费 ${cost}`,
    undelivered: (n) => `${n} 次已生成但未能发出`,
    capsParts: {
      user_daily_limit: (v) => `每人 ${v} 张`,
      group_daily_limit: (v) => `每群 ${v} 张`,
      user_daily_budget_usd: (v) => `每人 ${v}`,
      group_daily_budget_usd: (v) => `每群 ${v}`,
      daily_budget_usd: (v) => `全部 ${v}`,
    },
    capsNone: "未设置",
    join: "，",
    noneToday: "今天还没有生成图片",
    privateChat: "私聊",
    group: (id) => `群 ${id}`,
    updated: (day, at) => `统计日 ${day}，更新于 ${at}（本机时间，零点重置）`,
    dayTitle: (day, pictures, spend) => `${day}：${pictures}，${spend}`,
    dotTitle: (day, spend) => `${day}：${spend}`,
    label: (label) => `（${label}）`,
    states: {
      ok: "正常",
      untested: "正常（尚未使用）",
      "cooling down": "限流冷却中",
      "out of credits": "额度用尽",
      invalid: "无效（401）",
    },
    back: (at) => `，${at} 恢复`,
    noKeys: "插件配置中还没有可用的 API 密钥",
    noLimit: "不限额",
    noPictures: "没有仍在保留期内的图片",
    pictureOf: (user) => `${user} 的图片`,
    failed: (why) => `读取失败：${why}`,
    errors: {
      ledger_unavailable: "花费记录暂时无法读取（插件可能正在重载），请稍后刷新。",
      internal_error: "读取统计时出错，请查看 AstrBot 日志。",
    },
  },
  en: {
    lang: "en",
    title: "Image spend",
    loading: "Loading…",
    refresh: "Refresh",
    todayPictures: "Pictures today",
    todayCost: "Spend today",
    weekPictures: "Pictures, last 7 days",
    weekCost: "Spend, last 7 days",
    caps: "Daily caps",
    chartTitle: (n) => `Pictures and spend per day, last ${n} days`,
    legendPictures: "Pictures (left axis)",
    legendSpend: "Spend (USD, right axis)",
    keysTitle: "API keys",
    keysHead: ["Key", "State", "Succeeded", "Failed", "In flight", "Remaining", "Used today"],
    usersTitle: "Top users today",
    usersHead: ["#", "User", "Platform", "Pictures", "Spend"],
    groupsTitle: "Top groups today",
    groupsHead: ["#", "Group", "Platform", "Pictures", "Spend"],
    latestTitle: "Latest pictures",
    latestNote: "(only those still kept)",
    pictures: (n) => `${n} ${n === 1 ? "picture" : "pictures"}`,
    unknown: "unknown",
    unknownShort: (n) => `${n} unknown`,
    notes: (list) => ` (${list.join(", ")})`,
    unreported: (n) => `${n} more without a reported cost`,
    pending: (n) => `${n} being looked up`,
    billedBlank: (n, cost) => `plus ${n} billed without a picture: ${cost}`,
    undelivered: (n) => `${n} made but not sent`,
    capsParts: {
      user_daily_limit: (v) => `${v} pictures per user`,
      group_daily_limit: (v) => `${v} pictures per group`,
      user_daily_budget_usd: (v) => `${v} per user`,
      group_daily_budget_usd: (v) => `${v} per group`,
      daily_budget_usd: (v) => `${v} in all`,
    },
    capsNone: "none",
    join: ", ",
    noneToday: "No pictures yet today",
    privateChat: "private chat",
    group: (id) => `group ${id}`,
    updated: (day, at) => `Day ${day}, updated ${at} (server time; resets at midnight)`,
    dayTitle: (day, pictures, spend) => `${day}: ${pictures}, ${spend}`,
    dotTitle: (day, spend) => `${day}: ${spend}`,
    label: (label) => ` (${label})`,
    states: {
      ok: "OK",
      untested: "OK (not used yet)",
      "cooling down": "rate limited, cooling down",
      "out of credits": "out of credits",
      invalid: "invalid (401)",
    },
    back: (at) => `, back at ${at}`,
    noKeys: "No usable API key in the plugin's settings yet",
    noLimit: "no limit",
    noPictures: "No pictures still kept",
    pictureOf: (user) => `picture of ${user}`,
    failed: (why) => `Could not load: ${why}`,
    errors: {
      ledger_unavailable: "The spend records cannot be read right now (the plugin may be reloading); refresh in a moment.",
      internal_error: "Reading the statistics failed; see AstrBot's log.",
    },
  },
};
const STATE_CLASSES = {
  ok: "state-ok",
  untested: "state-ok",
  "cooling down": "state-warn",
  "out of credits": "state-bad",
  invalid: "state-bad",
};

let T = TEXTS.zh;
const shown = { overview: null, keys: null, latest: null, error: null };

// "zh-CN", "zh-TW" -> Chinese; any other locale the dashboard offers -> English.
function languageOf(locale) {
  return String(locale || "zh-CN").toLowerCase().startsWith("zh") ? TEXTS.zh : TEXTS.en;
}

function usd(amount) {
  if (amount === null || amount === undefined) return T.unknown;
  if (amount >= 100) return "$" + amount.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  if (amount >= 1 || amount === 0) return "$" + amount.toFixed(2);
  const digits = amount.toFixed(4).replace(/0+$/, "");
  return "$" + (digits.split(".")[1].length >= 2 ? digits : amount.toFixed(2));
}

// What a total's spend is, by the rule of the chat's /画图统计 (utils/chat/texts/spend.py,
// spend_text): unknown only when no answer's cost is known and none is still being looked up;
// otherwise the known sum, missing `unreported` answers (their cost cannot be known) and
// `pending` ones (still being looked up). `unknown` counts both.
function spendOf(t) {
  const pending = t.pending || 0;
  const allUnknown = Boolean(t.generations) && t.unknown === t.generations && !pending;
  const unreported = allUnknown ? 0 : (t.unknown || 0) - pending;
  return { allUnknown, unreported, pending };
}

// A total's spend in a table cell or the chart's titles: the known sum, with short notes.
function spend(t) {
  const s = spendOf(t);
  if (s.allUnknown) return T.unknown;
  const notes = [];
  if (s.unreported) notes.push(T.unknownShort(s.unreported));
  if (s.pending) notes.push(T.pending(s.pending));
  return usd(t.cost) + (notes.length ? T.notes(notes) : "");
}

function clock(epoch, withDate) {
  const d = new Date(epoch * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return withDate ? `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}` : time;
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function fillHead(id, labels) {
  const row = $(id).querySelector("thead tr");
  labels.forEach((label, i) => {
    row.children[i].textContent = label;
  });
}

function fillTable(id, rows, columns, emptyText) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren();
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = cell(tr, emptyText, "empty");
    td.colSpan = columns;
    body.appendChild(tr);
  }
  return body;
}

function svg(name, attrs, parent) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}

function niceMax(value) {
  if (value <= 0) return 1;
  const step = Math.pow(10, Math.floor(Math.log10(value)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= value) return m * step;
  return 10 * step;
}

// Pictures are whole: an axis top that is a multiple of 4 gives whole ticks.
function niceCount(value) {
  return Math.max(4, Math.ceil(niceMax(value) / 4) * 4);
}

function drawChart(days) {
  const W = 900, H = 260, L = 44, R = 56, T_ = 14, B = 34;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": T.chartTitle(days.length) });
  const plotW = W - L - R, plotH = H - T_ - B;
  const maxPictures = niceCount(Math.max(...days.map((d) => d.pictures)));
  const maxCost = niceMax(Math.max(...days.map((d) => d.cost)));
  const slot = plotW / days.length;
  for (let i = 0; i <= 4; i++) {
    const y = T_ + plotH - (plotH * i) / 4;
    svg("line", { x1: L, x2: W - R, y1: y, y2: y, class: "axis" }, root);
    svg("text", { x: L - 6, y: y + 4, "text-anchor": "end" }, root).textContent =
      String((maxPictures * i) / 4);
    svg("text", { x: W - R + 6, y: y + 4 }, root).textContent = usd((maxCost * i) / 4);
  }
  const points = [];
  days.forEach((d, i) => {
    const x = L + slot * i;
    const h = (plotH * d.pictures) / maxPictures;
    const bar = svg("rect", {
      x: x + slot * 0.18, y: T_ + plotH - h, width: slot * 0.64, height: Math.max(h, 0),
      class: "bar", "data-day": d.day, "data-pictures": d.pictures, rx: 2,
    }, root);
    svg("title", {}, bar).textContent = T.dayTitle(d.day, T.pictures(d.pictures), spend(d));
    if (days.length <= 16 || i % 2 === days.length % 2) {
      svg("text", { x: x + slot / 2, y: H - B + 16, "text-anchor": "middle" }, root).textContent = d.day.slice(5);
    }
    if (!spendOf(d).allUnknown) {
      points.push([x + slot / 2, T_ + plotH - (plotH * d.cost) / maxCost, d]);
    }
  });
  if (points.length) {
    svg("polyline", { points: points.map((p) => `${p[0]},${p[1]}`).join(" "), class: "spend-line" }, root);
    for (const [x, y, d] of points) {
      const dot = svg("circle", { cx: x, cy: y, r: 3.5, class: "spend-dot", "data-day": d.day, "data-cost": d.cost }, root);
      svg("title", {}, dot).textContent = T.dotTitle(d.day, spend(d));
    }
  }
  $("chart").replaceChildren(root);
}

// A tile shows the known sum big; below it, how many answers it misses or still looks up,
// and the billed answers that brought no picture (their cost is part of the sum).
function spendTile(id, t) {
  const s = spendOf(t);
  $(id).textContent = s.allUnknown ? T.unknown : usd(t.cost);
  const notes = [];
  if (s.unreported) notes.push(T.unreported(s.unreported));
  if (s.pending) notes.push(T.pending(s.pending));
  if (t.without_picture) notes.push(T.billedBlank(t.without_picture, usd(t.without_picture_cost)));
  if (t.undelivered) notes.push(T.undelivered(t.undelivered));
  $(id + "-note").textContent = notes.join(T.join);
}

function capsText(caps) {
  const parts = [];
  for (const [key, word] of Object.entries(T.capsParts)) {
    if (!caps[key]) continue;
    parts.push(word(key.endsWith("_usd") ? usd(caps[key]) : caps[key]));
  }
  return parts.length ? parts.join(T.join) : T.capsNone;
}

function showOverview(data) {
  $("today-pictures").textContent = T.pictures(data.today_totals.pictures);
  spendTile("today-cost", data.today_totals);
  $("week-pictures").textContent = T.pictures(data.week_totals.pictures);
  spendTile("week-cost", data.week_totals);
  $("caps").textContent = capsText(data.caps);
  $("chart-title").textContent = T.chartTitle(data.days.length);
  drawChart(data.days);
  const rank = (id, rows, name) => {
    const body = fillTable(id, rows, 5, T.noneToday);
    rows.forEach((r, i) => {
      const tr = document.createElement("tr");
      cell(tr, String(i + 1));
      cell(tr, name(r));
      cell(tr, r.platform);
      cell(tr, T.pictures(r.pictures), "num");
      cell(tr, spend(r), "num");
      body.appendChild(tr);
    });
  };
  rank("top-users", data.top_users, (r) => r.user_id);
  rank("top-groups", data.top_groups, (r) => (r.group_id ? r.group_id : T.privateChat));
  $("updated").textContent = T.updated(data.today, clock(data.at, true));
}

function showKeys(data) {
  const body = fillTable("keys", data.keys, 7, T.noKeys);
  for (const k of data.keys) {
    const tr = document.createElement("tr");
    cell(tr, k.masked + (k.label ? T.label(k.label) : ""));
    const text = T.states[k.state] || k.state;
    cell(tr, text + (k.until ? T.back(clock(k.until)) : ""), STATE_CLASSES[k.state] || "");
    cell(tr, String(k.successes), "num");
    cell(tr, String(k.failures), "num");
    cell(tr, String(k.in_flight), "num");
    let remaining = T.unknown;
    if (k.known) remaining = k.limit === null ? T.noLimit : `${usd(k.limit_remaining)} / ${usd(k.limit)}`;
    cell(tr, remaining, "num");
    cell(tr, k.known ? usd(k.usage_daily) : T.unknown, "num");
    body.appendChild(tr);
  }
}

function showLatest(data) {
  const box = $("latest");
  box.replaceChildren();
  if (!data.pictures.length) {
    const p = document.createElement("div");
    p.className = "empty";
    p.textContent = T.noPictures;
    box.appendChild(p);
    return;
  }
  for (const pic of data.pictures) {
    const fig = document.createElement("figure");
    const img = document.createElement("img");
    img.src = pic.thumb;
    img.alt = T.pictureOf(pic.user_id);
    fig.appendChild(img);
    const cap = document.createElement("figcaption");
    const where = pic.group_id ? T.group(pic.group_id) : T.privateChat;
    cap.textContent = `${clock(pic.at, true)} · ${pic.user_id} · ${where} · ${usd(pic.cost)}`;
    fig.appendChild(cap);
    box.appendChild(fig);
  }
}

// What the plugin answers when an endpoint fails: an error code the page words, or a text.
function showError(error) {
  const box = $("error");
  if (error === null) {
    box.style.display = "none";
    return;
  }
  const message = error && error.message ? error.message : String(error);
  box.style.display = "block";
  box.textContent = T.failed(T.errors[message] || message);
}

// The fixed words of the page (index.html holds the Chinese ones for a page without script).
function showLabels() {
  document.documentElement.lang = T.lang;
  document.title = T.title;
  for (const el of document.querySelectorAll("[data-text]")) {
    el.textContent = T[el.dataset.text];
  }
  fillHead("keys", T.keysHead);
  fillHead("top-users", T.usersHead);
  fillHead("top-groups", T.groupsHead);
}

// Everything again in the current language, from the answers already received.
function render() {
  showLabels();
  if (shown.overview) showOverview(shown.overview);
  if (shown.keys) showKeys(shown.keys);
  if (shown.latest) showLatest(shown.latest);
  showError(shown.error);
}

async function load() {
  shown.error = null;
  showError(null);
  const keep = (name) => (data) => {
    shown[name] = data;
  };
  const jobs = [
    bridge.apiGet("spend/overview", { days: 14 }).then(keep("overview")),
    bridge.apiGet("spend/keys").then(keep("keys")),
    bridge.apiGet("spend/latest", { limit: 12 }).then(keep("latest")),
  ];
  const results = await Promise.allSettled(jobs);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) shown.error = failed.reason;
  render();
  document.body.dataset.loaded = "true";
  document.body.dataset.lang = T.lang;
}

function localeOf(context) {
  if (context && context.locale) return context.locale;
  return typeof bridge.getLocale === "function" ? bridge.getLocale() : "zh-CN";
}

$("refresh").addEventListener("click", load);
const context = await bridge.ready();
T = languageOf(localeOf(context));
showLabels();
if (typeof bridge.onContext === "function") {
  bridge.onContext((next) => {
    const language = languageOf(localeOf(next));
    if (language === T) return;
    T = language;
    render();
    document.body.dataset.lang = T.lang;
  });
}
await load();
