/* token_ratelimit dashboard: polls the API's JSON, keeps the last ten
 * minutes of per-zone rates in memory, and draws them. Every value
 * from the API goes into the page as text (textContent), never as
 * markup: keys are chosen by clients. */
'use strict';
(function () {
  var doc = document, body = doc.body;
  var me = doc.currentScript;
  var api = new URL('./', me ? me.src : location.href).href;
  var every = parseFloat(new URLSearchParams(location.search)
    .get('interval'));
  if (!(every > 0)) {
    every = 2;
  }
  every = Math.min(Math.max(every, 1), 60) * 1000;
  var KEEP = 600000;
  var SERIES = [
    ['a', 'admitted', 1], ['r', 'rejected', 1], ['w', 'warned', 0],
    ['y', 'dry-run rejected', 0], ['d', 'denied', 0]
  ];
  var hist = Object.create(null);
  var polls = 0, errors = 0, recovered = 0, okAt = 0;
  var tpl = doc.getElementById('chart').content.firstElementChild;
  var NS = tpl.namespaceURI;

  function $(id) { return doc.getElementById(id); }

  function el(tag, cls, text) {
    var e = doc.createElement(tag);
    if (cls) {
      e.className = cls;
    }
    if (text !== undefined && text !== null) {
      e.textContent = String(text);
    }
    return e;
  }

  function svg(tag, attrs) {
    var e = doc.createElementNS(NS, tag);
    for (var k in attrs) {
      e.setAttribute(k, attrs[k]);
    }
    return e;
  }

  function n(v) { v = Number(v); return isFinite(v) ? v : 0; }

  function rate(v) {
    return v >= 100 ? String(Math.round(v))
                    : v.toFixed(v >= 10 ? 1 : 2);
  }

  function age(s) {
    s = Math.max(0, Math.round(s));
    if (s < 60) {
      return s + 's';
    }
    if (s < 3600) {
      return Math.floor(s / 60) + 'm' +
        (s % 60 ? ' ' + s % 60 + 's' : '');
    }
    if (s < 86400) {
      return Math.floor(s / 3600) + 'h ' +
        Math.floor(s % 3600 / 60) + 'm';
    }
    return Math.floor(s / 86400) + 'd ' +
      Math.floor(s % 86400 / 3600) + 'h';
  }

  function ago(t, now) {
    return t ? age(now - t) + ' ago' : 'never';
  }

  function clock(t) {
    var d = new Date(t * 1000);
    return !t ? '' : d.toDateString() === new Date().toDateString()
      ? d.toLocaleTimeString() : d.toLocaleString();
  }

  /* list IDs can exceed 2^53: keep their digits (where the browser
   * gives JSON.parse's reviver the source text) */
  function parse(text) {
    return JSON.parse(text, function (k, v, ctx) {
      return k === 'id' && ctx && ctx.source ? ctx.source : v;
    });
  }

  /* a table cell: text, a number (right aligned) or a node */
  function cell(v) {
    var td;
    if (v instanceof Node) {
      td = el('td');
      td.appendChild(v);
    } else if (typeof v === 'number') {
      td = el('td', 'num', v.toLocaleString('en'));
    } else {
      td = el('td', null, v);
    }
    return td;
  }

  function fill(id, heads, rows, none) {
    var head = el('thead'), tr = el('tr'), tb = el('tbody');
    heads.forEach(function (h) {
      var num = h.charAt(0) === '#';
      tr.appendChild(el('th', num ? 'num' : null,
                        num ? h.slice(1) : h));
    });
    head.appendChild(tr);
    rows.forEach(function (row) {
      var tr = el('tr');
      row.forEach(function (v) { tr.appendChild(cell(v)); });
      tb.appendChild(tr);
    });
    if (!rows.length) {
      var td = el('td', 'empty', none);
      td.colSpan = heads.length;
      tb.appendChild(el('tr')).appendChild(td);
    }
    $(id).replaceChildren(head, tb);
  }

  /* a key as the API gives it: key, key_hex (not printable), hash,
   * masked or hidden (the zone's log_key=) */
  function key(o) {
    var s = el('span', 'keytext');
    if (typeof o.key === 'string') {
      s.textContent = o.key;
      if (o.masked) {
        s.appendChild(el('span', 'tag', 'masked'));
        s.title = 'log_key=mask: the first bytes only';
      }
    } else if (o.hidden) {
      s.appendChild(el('span', 'tag', 'hidden'));
      s.title = 'log_key=off';
    } else if (o.key_hex) {
      s.appendChild(el('span', 'tag', 'hex'));
      s.appendChild(doc.createTextNode(String(o.key_hex)));
      s.title = 'not printable: the bytes in hex';
    } else {
      s.appendChild(el('span', 'tag', 'hash'));
      s.appendChild(doc.createTextNode(String(o.hash || '?')));
    }
    if (o.truncated) {
      s.appendChild(el('span', 'tag', 'truncated'));
    }
    return s;
  }

  function pill(text, cls) { return el('span', 'pill ' + cls, text); }

  function zoneCell(name, sub) {
    var s = el('span', null, name instanceof Node ? null : name);
    if (name instanceof Node) {
      s.appendChild(name);
    }
    if (sub) {
      s.appendChild(el('span', 'sub', sub));
    }
    return s;
  }

  function counters(z) {
    var q = z.requests || {};
    return {
      a: n(q.passed) + n(q.warned), w: n(q.warned), r: n(q.rejected),
      y: n(q.rejected_dry_run), d: n(q.denied)
    };
  }

  /* rates from counter deltas; a counter that went down (a new nginx,
   * a zone made anew) starts over instead of drawing a negative rate */
  function track(name, c, t) {
    var h = hist[name] ||
      (hist[name] = { prev: null, pts: [], resets: 0 });
    var p = h.prev, pt = { t: t }, reset = false;
    h.prev = { t: t, c: c };
    if (p) {
      var dt = (t - p.t) / 1000;
      SERIES.forEach(function (s) {
        var d = c[s[0]] - p.c[s[0]];
        reset = reset || d < 0;
        pt[s[0]] = dt > 0 ? d / dt : 0;
      });
      h.resets += reset ? 1 : 0;
      if (reset || dt <= 0 || t - p.t > 3 * every + 5000) {
        h.pts.push({ t: t, gap: 1 });
      }
      if (!reset && dt > 0) {
        h.pts.push(pt);
      }
    }
    while (h.pts.length && h.pts[0].t < t - KEEP) {
      h.pts.shift();
    }
    return h;
  }

  function nice(v) {
    var p = Math.pow(10, Math.floor(Math.log10(v))), m = v / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }

  function chart(name, h, now) {
    var pts = h.pts.filter(function (p) { return !p.gap; });
    var card = el('div', 'card'), legend = el('div', 'legend');
    var plot = el('div', 'plot'), g = tpl.cloneNode(true);
    var first = h.pts.length ? h.pts[0].t : now;
    var span = Math.min(KEEP, Math.max(60000, now - first));
    var shown = SERIES.filter(function (s) {
      return s[2] || pts.some(function (p) { return p[s[0]] > 0; });
    });
    var top = 0.1;
    pts.forEach(function (p) {
      shown.forEach(function (s) { top = Math.max(top, p[s[0]]); });
    });
    top = nice(top);
    card.appendChild(el('h3', null, name));
    g.setAttribute('data-zone', name);
    g.setAttribute('data-points', pts.length);
    g.setAttribute('data-resets', h.resets);
    g.setAttribute('aria-label', name + ': requests per second');
    [0.25, 0.5, 0.75].forEach(function (f) {
      g.appendChild(svg('line', { x1: 0, x2: 600, y1: 150 * f,
                                  y2: 150 * f }));
    });
    shown.forEach(function (s) {
      var seg = [], last = pts[pts.length - 1], i;
      var flush = function () {
        if (seg.length) {
          g.appendChild(svg('polyline', { 'class': 's-' + s[0],
            'data-series': s[1], points: seg.join(' ') }));
        }
        seg = [];
      };
      for (i = 0; i < h.pts.length; i++) {
        var p = h.pts[i];
        if (p.gap) {
          flush();
          continue;
        }
        var x = 600 - (now - p.t) / span * 600;
        var y = 150 - p[s[0]] / top * 146;
        seg.push(x.toFixed(1) + ',' + y.toFixed(1));
      }
      flush();
      var item = el('span', null, s[1] + ' ');
      item.insertBefore(el('i', 's-' + s[0]), item.firstChild);
      item.appendChild(el('b', null, last ? rate(last[s[0]]) + '/s'
                                          : '\u2013'));
      legend.appendChild(item);
    });
    plot.appendChild(g);
    plot.appendChild(el('span', 'ymax', rate(top) + '/s'));
    var axis = el('div', 'axis');
    axis.appendChild(el('span', null, '\u2212' + age(span / 1000)));
    axis.appendChild(el('span', null, 'now'));
    card.appendChild(legend);
    card.appendChild(plot);
    card.appendChild(axis);
    return card;
  }

  function render(data, t) {
    var zones = data.zones || {}, names = Object.keys(zones);
    var now = n(data.time) || Math.floor(t / 1000);
    var charts = [], zrows = [], orows = [], prows = [], srows = [];
    var lrows = [], attack = [];
    Object.keys(hist).forEach(function (k) {
      if (!(k in zones)) {
        delete hist[k];
      }
    });
    names.forEach(function (name) {
      var z = zones[name] || {}, q = z.requests || {};
      var m = z.memory || {};
      var h = track(name, counters(z), t), c = h.pts[h.pts.length - 1];
      var meter = el('meter');
      meter.max = Math.max(1, n(m.capacity));
      meter.value = n(m.keys);
      meter.high = meter.max * 0.8;
      meter.optimum = 0;
      var keys = el('span', null,
                    ' ' + n(m.keys) + ' / ' + n(m.capacity));
      keys.insertBefore(meter, keys.firstChild);
      charts.push(chart(name, h, t));
      zrows.push([zoneCell(name, z.key), String(z.rate || ''),
        String(z.sync || ''), keys,
        c && !c.gap ? rate(c.a) : '\u2013',
        c && !c.gap ? rate(c.r) : '\u2013',
        n(q.passed), n(q.warned), n(q.rejected), n(q.denied),
        n(q.bypassed), n(z.evictions), n(z.offenses),
        n(z.penalties_active)]);
      if (z.attack && z.attack.on === true) {
        attack.push(name + ' (' + String(z.attack.reason || '') +
          (z.attack.since ? ', since ' + clock(n(z.attack.since)) : '') +
          ')');
      }
      (z.top_offenders || []).forEach(function (o) {
        orows.push([name, key(o), n(o.recent), n(o.rejections),
          ago(n(o.first), now), ago(n(o.last), now)]);
      });
      (z.penalties || []).forEach(function (p) {
        prows.push([name, key(p), age(n(p.left)), clock(n(p.until)),
          n(p.violations)]);
      });
      if (z.cluster) {
        var k = z.cluster;
        srows.push([name, String(z.sync), ago(n(k.last_success), now),
          n(k.lag_ms) + ' ms', z.sync === 'strict'
            ? n(k.strict_calls) + ' calls, ' + n(k.strict_cached) +
              ' cached'
            : n(k.published) + ' published, ' + n(k.reads) + ' reads',
          n(k.errors), n(k.fallback)]);
      }
    });
    var ab = $('attack');
    ab.hidden = !attack.length;
    ab.textContent = attack.length
      ? 'Attack mode: ' + attack.join(', ') : '';
    $('charts').replaceChildren.apply($('charts'), charts);
    if (!names.length) {
      $('charts').appendChild(el('p', 'empty', 'No zones.'));
    }
    fill('zones', ['Zone', 'Rate', 'Sync', 'Keys', '#Admitted/s',
      '#Rejected/s', '#Passed', '#Warned', '#Rejected', '#Denied',
      '#Bypassed', '#Evictions', '#Offenses', '#Penalized keys'],
      zrows, 'No zones.');
    fill('offenders', ['Zone', 'Key', '#Recent', '#Rejections',
      'First seen', 'Last seen'], orows, 'No offenders.');
    fill('penalties', ['Zone', 'Key', 'Left', 'Until', '#Violations'],
      prows, 'No active penalties.');
    var r = data.redis;
    fill('redis', ['Redis', 'Status', 'Down since', '#Outages',
      '#Failures'], r ? [[r.mode === 'sentinel' ?
          zoneCell(String(r.master_name), 'sentinel: ' +
            (r.address ? String(r.address) : 'no master yet') +
            ', failovers ' + n(r.failovers)) :
          r.mode === 'cluster' ?
          zoneCell('cluster', (r.masters || []).map(function (m) {
              return String(m.address) + ' (' + n(m.slots) + ' slots, ' +
                (m.up ? 'up' : 'down') + ')';
            }).join(', ') + ', failovers ' + n(r.failovers) +
            (n(r.slots_unserved) ? ', unserved slots ' +
              n(r.slots_unserved) : '')) : String(r.address),
        r.up ? pill('up', 'ok') : zoneCell(pill('down', 'bad'),
          r.reason ? String(r.reason) : ''),
        r.down_since ? clock(n(r.down_since)) + ' (' +
          ago(n(r.down_since), now) + ')' : '',
        n(r.outages), n(r.failures)]] : [],
      'Not configured (no token_ratelimit_redis).');
    fill('sync', ['Sync zone', 'Mode', 'Last success', 'Lag',
      'Redis calls', '#Errors', '#Fallback'],
      srows, 'No zone is synced.');
    (data.lists || []).forEach(function (e) {
      var act = String(e.action);
      lrows.push([String(e.id), pill(act, act),
        e.cidr ? String(e.cidr) : key(e),
        e.cidr ? '' : e.zone ? String(e.zone) : 'all zones',
        clock(n(e.created)),
        e.expires ? 'in ' + age(n(e.expires) - now) : 'never',
        e.origin ? String(e.origin) : '\u2013']);
    });
    fill('lists', ['ID', 'Action', 'Address or key', 'Zone', 'Created',
      'Expires', 'Origin'], lrows,
      data.lists ? 'No entries.' : 'Not available.');
    $('meta').textContent = 'nginx ' + String(data.nginx || '?') +
      ' \u00b7 updated ' + new Date(t).toLocaleTimeString() +
      ' \u00b7 every ' + every / 1000 + 's';
  }

  function status(ok, text) {
    var s = $('status');
    if (ok && body.getAttribute('data-state') === 'error') {
      recovered++;
      body.setAttribute('data-recovered', recovered);
    }
    s.className = 'pill ' + (ok ? 'ok' : 'bad');
    s.textContent = ok ? 'live' : 'offline';
    body.setAttribute('data-state', ok ? 'ok' : 'error');
    var b = $('banner');
    b.hidden = ok;
    b.textContent = ok ? '' : text;
  }

  function failed(err) {
    errors++;
    body.setAttribute('data-errors', errors);
    var why = err && err.name === 'AbortError' ? 'no answer in time'
      : err && err.message || err;
    status(false, 'Cannot update from the API at ' + api + ': ' + why +
      '. Retrying every ' + every / 1000 + 's' +
      (okAt ? '; last update ' + new Date(okAt).toLocaleTimeString()
        : '') + '.');
  }

  function poll() {
    var ctl = new AbortController();
    var timer = setTimeout(function () { ctl.abort(); },
                           Math.max(every, 5000));
    fetch(api, { cache: 'no-store', credentials: 'same-origin',
                 headers: { Accept: 'application/json' },
                 signal: ctl.signal })
      .then(function (res) {
        if (!res.ok) {
          throw new Error('HTTP ' + res.status);
        }
        return res.text();
      })
      .then(function (text) {
        var data = parse(text);
        if (!data || typeof data.zones !== 'object') {
          throw new Error('not the token_ratelimit API');
        }
        okAt = Date.now();
        render(data, okAt);
        polls++;
        body.setAttribute('data-polls', polls);
        status(true);
      })
      .catch(failed)
      .then(function () {
        clearTimeout(timer);
        setTimeout(poll, every);
      });
  }

  doc.addEventListener('securitypolicyviolation', function (e) {
    var v = n(body.getAttribute('data-csp-violations')) + 1;
    body.setAttribute('data-csp-violations', v);
    body.setAttribute('data-csp-last', e.violatedDirective + ' ' +
      e.blockedURI);
  });
  poll();
})();
