
/*
 * ngx_http_token_ratelimit_dashboard.c - token_ratelimit_api's live HTML
 * dashboard: {loc}/dashboard, {loc}/dashboard.js, {loc}/dashboard.css.
 *
 * The page is static; its script polls the API's JSON ({loc}/, found
 * relative to the script's own URL), keeps the last ten minutes of
 * per-zone rates in the browser and draws them as SVG. Self-contained: no
 * inline script or style and nothing fetched from elsewhere, so all three
 * are sent with a strict Content-Security-Policy. Every value from the API
 * reaches the page through textContent, never as markup (keys are chosen by
 * clients).
 *
 * The assets are kept here as C strings, one source line per line, so that
 * nginx's own ./configure --add-dynamic-module builds them in.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_api.h"


typedef struct {
    ngx_str_t                   name;
    ngx_str_t                   value;
} ngx_http_trl_dashboard_header_t;


static ngx_int_t ngx_http_trl_dashboard_headers(ngx_http_request_t *r);


/* the page; the two asset URLs go between the three parts */

static const char  ngx_http_trl_dashboard_html1[] =
    "<!doctype html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<meta name=\"referrer\" content=\"no-referrer\">\n"
    "<title>token_ratelimit</title>\n"
    "<link rel=\"stylesheet\" href=\"";

static const char  ngx_http_trl_dashboard_html2[] =
    "dashboard.css\">\n"
    "<script src=\"";

static const char  ngx_http_trl_dashboard_html3[] =
    "dashboard.js\" defer></script>\n"
    "</head>\n"
    "<body data-polls=\"0\" data-errors=\"0\" data-state=\"loading\">\n"
    "<header>\n"
    "<h1>token_ratelimit</h1>\n"
    "<span id=\"meta\" class=\"meta\"></span>\n"
    "<span id=\"status\" class=\"pill\">loading</span>\n"
    "</header>\n"
    "<div id=\"banner\" class=\"banner\" role=\"alert\" hidden></div>\n"
    "<main>\n"
    "<section>\n"
    "<h2>Requests per second</h2>\n"
    "<div id=\"charts\" class=\"charts\"></div>\n"
    "</section>\n"
    "<section>\n"
    "<h2>Zones</h2>\n"
    "<table id=\"zones\"></table>\n"
    "</section>\n"
    "<section class=\"half\">\n"
    "<h2>Top offenders</h2>\n"
    "<table id=\"offenders\"></table>\n"
    "</section>\n"
    "<section class=\"half\">\n"
    "<h2>Active penalties</h2>\n"
    "<table id=\"penalties\"></table>\n"
    "</section>\n"
    "<section class=\"half\">\n"
    "<h2>Redis</h2>\n"
    "<table id=\"redis\"></table>\n"
    "<table id=\"sync\"></table>\n"
    "</section>\n"
    "<section class=\"half\">\n"
    "<h2>Runtime lists</h2>\n"
    "<table id=\"lists\"></table>\n"
    "</section>\n"
    "</main>\n"
    "<template id=\"chart\"><svg class=\"chart\" viewBox=\"0 0 600 150\"\n"
    "preserveAspectRatio=\"none\" role=\"img\"></svg></template>\n"
    "<noscript><p class=\"banner\">This dashboard needs JavaScript.</p>\n"
    "</noscript>\n"
    "</body>\n"
    "</html>\n";


static const char  ngx_http_trl_dashboard_css[] =
    ":root {\n"
    "  --bg: #f4f6f8; --card: #fff; --fg: #1d2630; --mute: #66727f;\n"
    "  --line: #dde2e7; --ok: #1f9d55; --warn: #d98b00; --bad: #d64545;\n"
    "  --deny: #7b4fc9; --dry: #3b82c4;\n"
    "}\n"
    "* { box-sizing: border-box; }\n"
    "html { background: var(--bg); color: var(--fg); }\n"
    "body {\n"
    "  margin: 0; font: 14px/1.4 system-ui, -apple-system, \"Segoe UI\",\n"
    "  Roboto, \"Helvetica Neue\", Arial, sans-serif;\n"
    "}\n"
    "header {\n"
    "  display: flex; align-items: center; gap: 16px; padding: 10px 20px;\n"
    "  background: #1d2630; color: #fff;\n"
    "}\n"
    "h1 { font-size: 17px; margin: 0; font-weight: 600; }\n"
    "h2 {\n"
    "  font-size: 13px; margin: 0 0 8px; color: var(--mute);\n"
    "  text-transform: uppercase; letter-spacing: .04em;\n"
    "}\n"
    ".meta { flex: 1; color: #b8c2cc; font-size: 12px; }\n"
    ".pill {\n"
    "  display: inline-block; padding: 1px 8px; border-radius: 9px;\n"
    "  font-size: 12px; font-weight: 600; background: #8894a0; color: #fff;\n"
    "}\n"
    ".pill.ok, .pill.allow { background: var(--ok); }\n"
    ".pill.bad, .pill.deny { background: var(--bad); }\n"
    ".banner {\n"
    "  margin: 12px 20px 0; padding: 10px 14px; border-radius: 6px;\n"
    "  background: #fdecec; color: #8a1c1c; border: 1px solid #f3b9b9;\n"
    "}\n"
    ".banner[hidden] { display: none; }\n"
    "main {\n"
    "  display: flex; flex-wrap: wrap; gap: 16px; padding: 16px 20px;\n"
    "}\n"
    "section {\n"
    "  flex: 1 1 100%; background: var(--card); min-width: 0;\n"
    "  border: 1px solid var(--line); border-radius: 8px;\n"
    "  padding: 12px 14px; overflow-x: auto;\n"
    "}\n"
    "section.half { flex: 1 1 560px; }\n"
    "table { border-collapse: collapse; width: 100%; font-size: 13px; }\n"
    "table + table { margin-top: 12px; }\n"
    "th, td {\n"
    "  text-align: left; padding: 4px 6px;\n"
    "  border-bottom: 1px solid var(--line);\n"
    "  vertical-align: top; white-space: nowrap;\n"
    "}\n"
    "th { color: var(--mute); font-weight: 600; font-size: 12px; }\n"
    "td.num, th.num {\n"
    "  text-align: right; font-variant-numeric: tabular-nums;\n"
    "}\n"
    ".keytext {\n"
    "  font-family: ui-monospace, Menlo, Consolas, monospace;\n"
    "  white-space: normal;\n"
    "  word-break: break-all;\n"
    "}\n"
    "td.empty { color: var(--mute); font-style: italic; }\n"
    ".sub { display: block; color: var(--mute); font-size: 11px; }\n"
    ".tag {\n"
    "  font: 600 10px system-ui, sans-serif; color: var(--mute);\n"
    "  border: 1px solid var(--line); border-radius: 3px; padding: 0 3px;\n"
    "  margin-right: 4px;\n"
    "}\n"
    ".bad { color: var(--bad); }\n"
    "meter { width: 90px; height: 10px; vertical-align: middle; }\n"
    ".charts {\n"
    "  display: grid; gap: 14px;\n"
    "  grid-template-columns: repeat(auto-fill, minmax(360px, 1fr));\n"
    "}\n"
    ".card {\n"
    "  border: 1px solid var(--line); border-radius: 6px; padding: 8px;\n"
    "}\n"
    ".card h3 { margin: 0 0 4px; font-size: 14px; }\n"
    ".legend {\n"
    "  display: flex; flex-wrap: wrap; gap: 4px 12px; font-size: 12px;\n"
    "}\n"
    ".legend i {\n"
    "  display: inline-block; width: 10px; height: 3px; margin-right: 4px;\n"
    "  vertical-align: middle;\n"
    "}\n"
    ".plot { position: relative; margin-top: 4px; }\n"
    ".chart {\n"
    "  display: block; width: 100%; height: 140px;\n"
    "  border-left: 1px solid var(--line);\n"
    "  border-bottom: 1px solid var(--line);\n"
    "}\n"
    ".chart line {\n"
    "  stroke: var(--line); vector-effect: non-scaling-stroke;\n"
    "}\n"
    ".chart polyline {\n"
    "  fill: none; stroke-width: 2; stroke-linejoin: round;\n"
    "  vector-effect: non-scaling-stroke;\n"
    "}\n"
    ".ymax { position: absolute; top: 0; left: 4px; font-size: 11px;\n"
    "  color: var(--mute); }\n"
    ".axis {\n"
    "  display: flex; justify-content: space-between; font-size: 11px;\n"
    "  color: var(--mute);\n"
    "}\n"
    ".s-a { stroke: var(--ok); background: var(--ok); }\n"
    ".s-r { stroke: var(--bad); background: var(--bad); }\n"
    ".s-w { stroke: var(--warn); background: var(--warn); }\n"
    ".s-d { stroke: var(--deny); background: var(--deny); }\n"
    ".s-y { stroke: var(--dry); background: var(--dry); }\n";


static const char  ngx_http_trl_dashboard_js[] =
    "/* token_ratelimit dashboard: polls the API's JSON, keeps the last ten\n"
    " * minutes of per-zone rates in memory, and draws them. Every value\n"
    " * from the API goes into the page as text (textContent), never as\n"
    " * markup: keys are chosen by clients. */\n"
    "'use strict';\n"
    "(function () {\n"
    "  var doc = document, body = doc.body;\n"
    "  var me = doc.currentScript;\n"
    "  var api = new URL('./', me ? me.src : location.href).href;\n"
    "  var every = parseFloat(new URLSearchParams(location.search)\n"
    "    .get('interval'));\n"
    "  if (!(every > 0)) {\n"
    "    every = 2;\n"
    "  }\n"
    "  every = Math.min(Math.max(every, 1), 60) * 1000;\n"
    "  var KEEP = 600000;\n"
    "  var SERIES = [\n"
    "    ['a', 'admitted', 1], ['r', 'rejected', 1], ['w', 'warned', 0],\n"
    "    ['y', 'dry-run rejected', 0], ['d', 'denied', 0]\n"
    "  ];\n"
    "  var hist = Object.create(null);\n"
    "  var polls = 0, errors = 0, recovered = 0, okAt = 0;\n"
    "  var tpl = doc.getElementById('chart').content.firstElementChild;\n"
    "  var NS = tpl.namespaceURI;\n"
    "\n"
    "  function $(id) { return doc.getElementById(id); }\n"
    "\n"
    "  function el(tag, cls, text) {\n"
    "    var e = doc.createElement(tag);\n"
    "    if (cls) {\n"
    "      e.className = cls;\n"
    "    }\n"
    "    if (text !== undefined && text !== null) {\n"
    "      e.textContent = String(text);\n"
    "    }\n"
    "    return e;\n"
    "  }\n"
    "\n"
    "  function svg(tag, attrs) {\n"
    "    var e = doc.createElementNS(NS, tag);\n"
    "    for (var k in attrs) {\n"
    "      e.setAttribute(k, attrs[k]);\n"
    "    }\n"
    "    return e;\n"
    "  }\n"
    "\n"
    "  function n(v) { v = Number(v); return isFinite(v) ? v : 0; }\n"
    "\n"
    "  function rate(v) {\n"
    "    return v >= 100 ? String(Math.round(v))\n"
    "                    : v.toFixed(v >= 10 ? 1 : 2);\n"
    "  }\n"
    "\n"
    "  function age(s) {\n"
    "    s = Math.max(0, Math.round(s));\n"
    "    if (s < 60) {\n"
    "      return s + 's';\n"
    "    }\n"
    "    if (s < 3600) {\n"
    "      return Math.floor(s / 60) + 'm' +\n"
    "        (s % 60 ? ' ' + s % 60 + 's' : '');\n"
    "    }\n"
    "    if (s < 86400) {\n"
    "      return Math.floor(s / 3600) + 'h ' +\n"
    "        Math.floor(s % 3600 / 60) + 'm';\n"
    "    }\n"
    "    return Math.floor(s / 86400) + 'd ' +\n"
    "      Math.floor(s % 86400 / 3600) + 'h';\n"
    "  }\n"
    "\n"
    "  function ago(t, now) {\n"
    "    return t ? age(now - t) + ' ago' : 'never';\n"
    "  }\n"
    "\n"
    "  function clock(t) {\n"
    "    var d = new Date(t * 1000);\n"
    "    return !t ? '' : d.toDateString() === new Date().toDateString()\n"
    "      ? d.toLocaleTimeString() : d.toLocaleString();\n"
    "  }\n"
    "\n"
    "  /* list IDs can exceed 2^53: keep their digits (where the browser\n"
    "   * gives JSON.parse's reviver the source text) */\n"
    "  function parse(text) {\n"
    "    return JSON.parse(text, function (k, v, ctx) {\n"
    "      return k === 'id' && ctx && ctx.source ? ctx.source : v;\n"
    "    });\n"
    "  }\n"
    "\n"
    "  /* a table cell: text, a number (right aligned) or a node */\n"
    "  function cell(v) {\n"
    "    var td;\n"
    "    if (v instanceof Node) {\n"
    "      td = el('td');\n"
    "      td.appendChild(v);\n"
    "    } else if (typeof v === 'number') {\n"
    "      td = el('td', 'num', v.toLocaleString('en'));\n"
    "    } else {\n"
    "      td = el('td', null, v);\n"
    "    }\n"
    "    return td;\n"
    "  }\n"
    "\n"
    "  function fill(id, heads, rows, none) {\n"
    "    var head = el('thead'), tr = el('tr'), tb = el('tbody');\n"
    "    heads.forEach(function (h) {\n"
    "      var num = h.charAt(0) === '#';\n"
    "      tr.appendChild(el('th', num ? 'num' : null,\n"
    "                        num ? h.slice(1) : h));\n"
    "    });\n"
    "    head.appendChild(tr);\n"
    "    rows.forEach(function (row) {\n"
    "      var tr = el('tr');\n"
    "      row.forEach(function (v) { tr.appendChild(cell(v)); });\n"
    "      tb.appendChild(tr);\n"
    "    });\n"
    "    if (!rows.length) {\n"
    "      var td = el('td', 'empty', none);\n"
    "      td.colSpan = heads.length;\n"
    "      tb.appendChild(el('tr')).appendChild(td);\n"
    "    }\n"
    "    $(id).replaceChildren(head, tb);\n"
    "  }\n"
    "\n"
    "  /* a key as the API gives it: key, key_hex (not printable), hash,\n"
    "   * masked or hidden (the zone's log_key=) */\n"
    "  function key(o) {\n"
    "    var s = el('span', 'keytext');\n"
    "    if (typeof o.key === 'string') {\n"
    "      s.textContent = o.key;\n"
    "      if (o.masked) {\n"
    "        s.appendChild(el('span', 'tag', 'masked'));\n"
    "        s.title = 'log_key=mask: the first bytes only';\n"
    "      }\n"
    "    } else if (o.hidden) {\n"
    "      s.appendChild(el('span', 'tag', 'hidden'));\n"
    "      s.title = 'log_key=off';\n"
    "    } else if (o.key_hex) {\n"
    "      s.appendChild(el('span', 'tag', 'hex'));\n"
    "      s.appendChild(doc.createTextNode(String(o.key_hex)));\n"
    "      s.title = 'not printable: the bytes in hex';\n"
    "    } else {\n"
    "      s.appendChild(el('span', 'tag', 'hash'));\n"
    "      s.appendChild(doc.createTextNode(String(o.hash || '?')));\n"
    "    }\n"
    "    if (o.truncated) {\n"
    "      s.appendChild(el('span', 'tag', 'truncated'));\n"
    "    }\n"
    "    return s;\n"
    "  }\n"
    "\n"
    "  function pill(text, cls) { return el('span', 'pill ' + cls, text); }\n"
    "\n"
    "  function zoneCell(name, sub) {\n"
    "    var s = el('span', null, name instanceof Node ? null : name);\n"
    "    if (name instanceof Node) {\n"
    "      s.appendChild(name);\n"
    "    }\n"
    "    if (sub) {\n"
    "      s.appendChild(el('span', 'sub', sub));\n"
    "    }\n"
    "    return s;\n"
    "  }\n"
    "\n"
    "  function counters(z) {\n"
    "    var q = z.requests || {};\n"
    "    return {\n"
    "      a: n(q.passed) + n(q.warned), w: n(q.warned), r: n(q.rejected),\n"
    "      y: n(q.rejected_dry_run), d: n(q.denied)\n"
    "    };\n"
    "  }\n"
    "\n"
    "  /* rates from counter deltas; a counter that went down (a new nginx,\n"
    "   * a zone made anew) starts over instead of drawing a negative rate */\n"
    "  function track(name, c, t) {\n"
    "    var h = hist[name] ||\n"
    "      (hist[name] = { prev: null, pts: [], resets: 0 });\n"
    "    var p = h.prev, pt = { t: t }, reset = false;\n"
    "    h.prev = { t: t, c: c };\n"
    "    if (p) {\n"
    "      var dt = (t - p.t) / 1000;\n"
    "      SERIES.forEach(function (s) {\n"
    "        var d = c[s[0]] - p.c[s[0]];\n"
    "        reset = reset || d < 0;\n"
    "        pt[s[0]] = dt > 0 ? d / dt : 0;\n"
    "      });\n"
    "      h.resets += reset ? 1 : 0;\n"
    "      if (reset || dt <= 0 || t - p.t > 3 * every + 5000) {\n"
    "        h.pts.push({ t: t, gap: 1 });\n"
    "      }\n"
    "      if (!reset && dt > 0) {\n"
    "        h.pts.push(pt);\n"
    "      }\n"
    "    }\n"
    "    while (h.pts.length && h.pts[0].t < t - KEEP) {\n"
    "      h.pts.shift();\n"
    "    }\n"
    "    return h;\n"
    "  }\n"
    "\n"
    "  function nice(v) {\n"
    "    var p = Math.pow(10, Math.floor(Math.log10(v))), m = v / p;\n"
    "    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;\n"
    "  }\n"
    "\n"
    "  function chart(name, h, now) {\n"
    "    var pts = h.pts.filter(function (p) { return !p.gap; });\n"
    "    var card = el('div', 'card'), legend = el('div', 'legend');\n"
    "    var plot = el('div', 'plot'), g = tpl.cloneNode(true);\n"
    "    var first = h.pts.length ? h.pts[0].t : now;\n"
    "    var span = Math.min(KEEP, Math.max(60000, now - first));\n"
    "    var shown = SERIES.filter(function (s) {\n"
    "      return s[2] || pts.some(function (p) { return p[s[0]] > 0; });\n"
    "    });\n"
    "    var top = 0.1;\n"
    "    pts.forEach(function (p) {\n"
    "      shown.forEach(function (s) { top = Math.max(top, p[s[0]]); });\n"
    "    });\n"
    "    top = nice(top);\n"
    "    card.appendChild(el('h3', null, name));\n"
    "    g.setAttribute('data-zone', name);\n"
    "    g.setAttribute('data-points', pts.length);\n"
    "    g.setAttribute('data-resets', h.resets);\n"
    "    g.setAttribute('aria-label', name + ': requests per second');\n"
    "    [0.25, 0.5, 0.75].forEach(function (f) {\n"
    "      g.appendChild(svg('line', { x1: 0, x2: 600, y1: 150 * f,\n"
    "                                  y2: 150 * f }));\n"
    "    });\n"
    "    shown.forEach(function (s) {\n"
    "      var seg = [], last = pts[pts.length - 1], i;\n"
    "      var flush = function () {\n"
    "        if (seg.length) {\n"
    "          g.appendChild(svg('polyline', { 'class': 's-' + s[0],\n"
    "            'data-series': s[1], points: seg.join(' ') }));\n"
    "        }\n"
    "        seg = [];\n"
    "      };\n"
    "      for (i = 0; i < h.pts.length; i++) {\n"
    "        var p = h.pts[i];\n"
    "        if (p.gap) {\n"
    "          flush();\n"
    "          continue;\n"
    "        }\n"
    "        var x = 600 - (now - p.t) / span * 600;\n"
    "        var y = 150 - p[s[0]] / top * 146;\n"
    "        seg.push(x.toFixed(1) + ',' + y.toFixed(1));\n"
    "      }\n"
    "      flush();\n"
    "      var item = el('span', null, s[1] + ' ');\n"
    "      item.insertBefore(el('i', 's-' + s[0]), item.firstChild);\n"
    "      item.appendChild(el('b', null, last ? rate(last[s[0]]) + '/s'\n"
    "                                          : '\\u2013'));\n"
    "      legend.appendChild(item);\n"
    "    });\n"
    "    plot.appendChild(g);\n"
    "    plot.appendChild(el('span', 'ymax', rate(top) + '/s'));\n"
    "    var axis = el('div', 'axis');\n"
    "    axis.appendChild(el('span', null, '\\u2212' + age(span / 1000)));\n"
    "    axis.appendChild(el('span', null, 'now'));\n"
    "    card.appendChild(legend);\n"
    "    card.appendChild(plot);\n"
    "    card.appendChild(axis);\n"
    "    return card;\n"
    "  }\n"
    "\n"
    "  function render(data, t) {\n"
    "    var zones = data.zones || {}, names = Object.keys(zones);\n"
    "    var now = n(data.time) || Math.floor(t / 1000);\n"
    "    var charts = [], zrows = [], orows = [], prows = [], srows = [];\n"
    "    var lrows = [];\n"
    "    Object.keys(hist).forEach(function (k) {\n"
    "      if (!(k in zones)) {\n"
    "        delete hist[k];\n"
    "      }\n"
    "    });\n"
    "    names.forEach(function (name) {\n"
    "      var z = zones[name] || {}, q = z.requests || {};\n"
    "      var m = z.memory || {};\n"
    "      var h = track(name, counters(z), t), c = h.pts[h.pts.length - 1];\n"
    "      var meter = el('meter');\n"
    "      meter.max = Math.max(1, n(m.capacity));\n"
    "      meter.value = n(m.keys);\n"
    "      meter.high = meter.max * 0.8;\n"
    "      meter.optimum = 0;\n"
    "      var keys = el('span', null,\n"
    "                    ' ' + n(m.keys) + ' / ' + n(m.capacity));\n"
    "      keys.insertBefore(meter, keys.firstChild);\n"
    "      charts.push(chart(name, h, t));\n"
    "      zrows.push([zoneCell(name, z.key), String(z.rate || ''),\n"
    "        String(z.sync || ''), keys,\n"
    "        c && !c.gap ? rate(c.a) : '\\u2013',\n"
    "        c && !c.gap ? rate(c.r) : '\\u2013',\n"
    "        n(q.passed), n(q.warned), n(q.rejected), n(q.denied),\n"
    "        n(q.bypassed), n(z.evictions), n(z.offenses),\n"
    "        n(z.penalties_active)]);\n"
    "      (z.top_offenders || []).forEach(function (o) {\n"
    "        orows.push([name, key(o), n(o.recent), n(o.rejections),\n"
    "          ago(n(o.first), now), ago(n(o.last), now)]);\n"
    "      });\n"
    "      (z.penalties || []).forEach(function (p) {\n"
    "        prows.push([name, key(p), age(n(p.left)), clock(n(p.until)),\n"
    "          n(p.violations)]);\n"
    "      });\n"
    "      if (z.cluster) {\n"
    "        var k = z.cluster;\n"
    "        srows.push([name, String(z.sync), ago(n(k.last_success), now),\n"
    "          n(k.lag_ms) + ' ms', z.sync === 'strict'\n"
    "            ? n(k.strict_calls) + ' calls, ' + n(k.strict_cached) +\n"
    "              ' cached'\n"
    "            : n(k.published) + ' published, ' + n(k.reads) + ' reads',\n"
    "          n(k.errors), n(k.fallback)]);\n"
    "      }\n"
    "    });\n"
    "    $('charts').replaceChildren.apply($('charts'), charts);\n"
    "    if (!names.length) {\n"
    "      $('charts').appendChild(el('p', 'empty', 'No zones.'));\n"
    "    }\n"
    "    fill('zones', ['Zone', 'Rate', 'Sync', 'Keys', '#Admitted/s',\n"
    "      '#Rejected/s', '#Passed', '#Warned', '#Rejected', '#Denied',\n"
    "      '#Bypassed', '#Evictions', '#Offenses', '#Penalized keys'],\n"
    "      zrows, 'No zones.');\n"
    "    fill('offenders', ['Zone', 'Key', '#Recent', '#Rejections',\n"
    "      'First seen', 'Last seen'], orows, 'No offenders.');\n"
    "    fill('penalties', ['Zone', 'Key', 'Left', 'Until', '#Violations'],\n"
    "      prows, 'No active penalties.');\n"
    "    var r = data.redis;\n"
    "    fill('redis', ['Redis', 'Status', 'Down since', '#Outages',\n"
    "      '#Failures'], r ? [[r.mode === 'sentinel' ?\n"
    "          zoneCell(String(r.master_name), 'sentinel: ' +\n"
    "            (r.address ? String(r.address) : 'no master yet') +\n"
    "            ', failovers ' + n(r.failovers)) : String(r.address),\n"
    "        r.up ? pill('up', 'ok') : zoneCell(pill('down', 'bad'),\n"
    "          r.reason ? String(r.reason) : ''),\n"
    "        r.down_since ? clock(n(r.down_since)) + ' (' +\n"
    "          ago(n(r.down_since), now) + ')' : '',\n"
    "        n(r.outages), n(r.failures)]] : [],\n"
    "      'Not configured (no token_ratelimit_redis).');\n"
    "    fill('sync', ['Sync zone', 'Mode', 'Last success', 'Lag',\n"
    "      'Redis calls', '#Errors', '#Fallback'],\n"
    "      srows, 'No zone is synced.');\n"
    "    (data.lists || []).forEach(function (e) {\n"
    "      var act = String(e.action);\n"
    "      lrows.push([String(e.id), pill(act, act),\n"
    "        e.cidr ? String(e.cidr) : key(e),\n"
    "        e.cidr ? '' : e.zone ? String(e.zone) : 'all zones',\n"
    "        clock(n(e.created)),\n"
    "        e.expires ? 'in ' + age(n(e.expires) - now) : 'never']);\n"
    "    });\n"
    "    fill('lists', ['ID', 'Action', 'Address or key', 'Zone', 'Created',\n"
    "      'Expires'], lrows, data.lists ? 'No entries.' : 'Not available.');\n"
    "    $('meta').textContent = 'nginx ' + String(data.nginx || '?') +\n"
    "      ' \\u00b7 updated ' + new Date(t).toLocaleTimeString() +\n"
    "      ' \\u00b7 every ' + every / 1000 + 's';\n"
    "  }\n"
    "\n"
    "  function status(ok, text) {\n"
    "    var s = $('status');\n"
    "    if (ok && body.getAttribute('data-state') === 'error') {\n"
    "      recovered++;\n"
    "      body.setAttribute('data-recovered', recovered);\n"
    "    }\n"
    "    s.className = 'pill ' + (ok ? 'ok' : 'bad');\n"
    "    s.textContent = ok ? 'live' : 'offline';\n"
    "    body.setAttribute('data-state', ok ? 'ok' : 'error');\n"
    "    var b = $('banner');\n"
    "    b.hidden = ok;\n"
    "    b.textContent = ok ? '' : text;\n"
    "  }\n"
    "\n"
    "  function failed(err) {\n"
    "    errors++;\n"
    "    body.setAttribute('data-errors', errors);\n"
    "    var why = err && err.name === 'AbortError' ? 'no answer in time'\n"
    "      : err && err.message || err;\n"
    "    status(false, 'Cannot update from the API at ' + api + ': ' + why +\n"
    "      '. Retrying every ' + every / 1000 + 's' +\n"
    "      (okAt ? '; last update ' + new Date(okAt).toLocaleTimeString()\n"
    "        : '') + '.');\n"
    "  }\n"
    "\n"
    "  function poll() {\n"
    "    var ctl = new AbortController();\n"
    "    var timer = setTimeout(function () { ctl.abort(); },\n"
    "                           Math.max(every, 5000));\n"
    "    fetch(api, { cache: 'no-store', credentials: 'same-origin',\n"
    "                 headers: { Accept: 'application/json' },\n"
    "                 signal: ctl.signal })\n"
    "      .then(function (res) {\n"
    "        if (!res.ok) {\n"
    "          throw new Error('HTTP ' + res.status);\n"
    "        }\n"
    "        return res.text();\n"
    "      })\n"
    "      .then(function (text) {\n"
    "        var data = parse(text);\n"
    "        if (!data || typeof data.zones !== 'object') {\n"
    "          throw new Error('not the token_ratelimit API');\n"
    "        }\n"
    "        okAt = Date.now();\n"
    "        render(data, okAt);\n"
    "        polls++;\n"
    "        body.setAttribute('data-polls', polls);\n"
    "        status(true);\n"
    "      })\n"
    "      .catch(failed)\n"
    "      .then(function () {\n"
    "        clearTimeout(timer);\n"
    "        setTimeout(poll, every);\n"
    "      });\n"
    "  }\n"
    "\n"
    "  doc.addEventListener('securitypolicyviolation', function (e) {\n"
    "    var v = n(body.getAttribute('data-csp-violations')) + 1;\n"
    "    body.setAttribute('data-csp-violations', v);\n"
    "    body.setAttribute('data-csp-last', e.violatedDirective + ' ' +\n"
    "      e.blockedURI);\n"
    "  });\n"
    "  poll();\n"
    "})();\n";


static ngx_http_trl_dashboard_header_t  ngx_http_trl_dashboard_hdrs[] = {

    { ngx_string("Content-Security-Policy"),
      ngx_string("default-src 'none'; script-src 'self'; style-src 'self'; "
                 "img-src 'self' data:; connect-src 'self'; "
                 "base-uri 'none'; form-action 'none'; "
                 "frame-ancestors 'none'") },

    { ngx_string("X-Content-Type-Options"), ngx_string("nosniff") },
    { ngx_string("Cache-Control"), ngx_string("no-cache") },
    { ngx_string("Referrer-Policy"), ngx_string("no-referrer") },

    { ngx_null_string, ngx_null_string }
};


/* asset: "" (the page), ".js", ".css"; anything else is not found */

ngx_int_t
ngx_http_trl_api_dashboard(ngx_http_request_t *r, ngx_str_t *asset)
{
    size_t               i, up;
    const char          *type;
    ngx_http_trl_out_t   out;

    ngx_http_trl_out_init(&out, r);

    if (asset->len == 0) {

        /*
         * {loc}/dashboard/ works too: the page's relative URLs climb one
         * level for each slash the URI ends with
         */

        for (up = 0; up < r->uri.len && up < 16; up++) {
            if (r->uri.data[r->uri.len - 1 - up] != '/') {
                break;
            }
        }

        ngx_http_trl_out_cat(&out, (u_char *) ngx_http_trl_dashboard_html1,
                             sizeof(ngx_http_trl_dashboard_html1) - 1);

        for (i = 0; i < up; i++) {
            ngx_http_trl_out_cat(&out, (u_char *) "../", 3);
        }

        ngx_http_trl_out_cat(&out, (u_char *) ngx_http_trl_dashboard_html2,
                             sizeof(ngx_http_trl_dashboard_html2) - 1);

        for (i = 0; i < up; i++) {
            ngx_http_trl_out_cat(&out, (u_char *) "../", 3);
        }

        ngx_http_trl_out_cat(&out, (u_char *) ngx_http_trl_dashboard_html3,
                             sizeof(ngx_http_trl_dashboard_html3) - 1);

        type = "text/html; charset=utf-8";

    } else if (asset->len == 3 && ngx_strncmp(asset->data, ".js", 3) == 0) {
        ngx_http_trl_out_cat(&out, (u_char *) ngx_http_trl_dashboard_js,
                             sizeof(ngx_http_trl_dashboard_js) - 1);
        type = "application/javascript; charset=utf-8";

    } else if (asset->len == 4 && ngx_strncmp(asset->data, ".css", 4) == 0)
    {
        ngx_http_trl_out_cat(&out, (u_char *) ngx_http_trl_dashboard_css,
                             sizeof(ngx_http_trl_dashboard_css) - 1);
        type = "text/css; charset=utf-8";

    } else {
        return ngx_http_trl_api_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                      "no such API path");
    }

    if (ngx_http_trl_dashboard_headers(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_trl_out_send(&out, NGX_HTTP_OK, type);
}


static ngx_int_t
ngx_http_trl_dashboard_headers(ngx_http_request_t *r)
{
    ngx_table_elt_t                  *h;
    ngx_http_trl_dashboard_header_t  *hd;

    for (hd = ngx_http_trl_dashboard_hdrs; hd->name.len; hd++) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        h->key = hd->name;
        h->value = hd->value;
        h->lowcase_key = NULL;
#if (nginx_version >= 1023000)
        h->next = NULL;
#endif
    }

    return NGX_OK;
}
