// coalmine dashboard. Hand-written, no dependencies, no build step.
//
// Security notes (see internal/web/web.go): the page is built with DOM calls
// and textContent only, never innerHTML, so nothing from the API is parsed
// as HTML; the token lives in sessionStorage and travels only in the
// Authorization header of same-origin fetches.
'use strict';

(() => {
  const TOKEN_KEY = 'coalmine.token';
  const SERIES_POLL_MS = 2000;
  const LIST_POLL_MS = 3000;
  const REPLICAS_POLL_MS = 2000;
  const MAX_EVENTS_SHOWN = 500;
  const MAX_POINTS = 1800; // per version, client side (30 min at 1 s)

  // ---------------------------------------------------------------- DOM

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  const SVGNS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, ...children) {
    const el = document.createElementNS(SVGNS, tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function setAttrs(el, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.setAttribute('class', v);
      else if (k === 'text') el.textContent = v;
      else if (k === 'data') Object.assign(el.dataset, v);
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
  }

  const $ = (sel, root = document) => root.querySelector(sel);

  // fill replaces el's children, skipping null and false (replaceChildren
  // itself would print them).
  function fill(el, ...children) {
    el.replaceChildren();
    append(el, children);
    return el;
  }

  // ------------------------------------------------------------- format

  function pct(x, digits = 2) {
    if (x === null || x === undefined || Number.isNaN(x)) return '–';
    return `${+Number(x).toFixed(digits)}%`;
  }

  function num(x, digits = 2) {
    if (x === null || x === undefined || Number.isNaN(x)) return '–';
    const a = Math.abs(x);
    // JSON has no infinity: the server sends the largest float for an
    // unbounded end (a confidence interval not bounded yet).
    if (a >= 1e300) return x > 0 ? '∞' : '−∞';
    if (a !== 0 && (a < 0.001 || a >= 1e6)) return Number(x).toExponential(2);
    return String(+Number(x).toFixed(digits));
  }

  function ms(x) {
    if (x === null || x === undefined) return '–';
    if (x >= 1000) return `${+(x / 1000).toFixed(2)} s`;
    return `${+Number(x).toFixed(x < 10 ? 2 : 1)} ms`;
  }

  function duration(secs) {
    secs = Math.max(0, Math.round(secs));
    const hrs = Math.floor(secs / 3600), m = Math.floor((secs % 3600) / 60), s = secs % 60;
    if (hrs) return `${hrs}h${String(m).padStart(2, '0')}m`;
    if (m) return `${m}m${String(s).padStart(2, '0')}s`;
    return `${s}s`;
  }

  function ago(t) {
    if (!t) return '–';
    const d = (Date.now() - Date.parse(t)) / 1000;
    if (d < 0) return `in ${duration(-d)}`;
    if (d < 5) return 'just now';
    return `${duration(d)} ago`;
  }

  // beatAgo is ago in tenths of a second while they matter: a replica is
  // gone 3 s after its last heartbeat, so "just now" would hide how close.
  function beatAgo(t) {
    const d = (Date.now() - Date.parse(t)) / 1000;
    if (!t || Number.isNaN(d)) return '–';
    if (d < 10) return `${Math.max(0, d).toFixed(1)} s ago`;
    return `${duration(d)} ago`;
  }

  function clock(t) {
    const d = new Date(t);
    return d.toLocaleTimeString(undefined, { hour12: false });
  }

  function stamp(t) {
    if (!t) return '–';
    const d = new Date(t);
    return `${d.toLocaleDateString()} ${clock(d)}`;
  }

  // A relative time that the page ticker keeps fresh.
  function relTime(t) {
    return h('time', { datetime: t || '', title: t ? stamp(t) : '', data: { rel: t || '' }, text: ago(t) });
  }

  // detailsView shows an object's scalar fields inline (long ones cut, in
  // full on hover) and each nested object folded as pretty JSON.
  function detailsView(obj) {
    const inline = [], nested = [];
    for (const [k, v] of Object.entries(obj || {})) {
      if (v !== null && typeof v === 'object') {
        nested.push(h('details', { class: 'json' }, h('summary', { text: k }), h('pre', { text: JSON.stringify(v, null, 2) })));
      } else {
        const text = String(v);
        inline.push(h('span', { title: text.length > 80 ? text : null, text: `${k}=${text.length > 80 ? `${text.slice(0, 77)}…` : text} ` }));
      }
    }
    return [inline, nested];
  }

  function stepText(st) {
    if (st.setWeight !== undefined) return `Set weight ${pct(st.setWeight)}`;
    if (st.pause) return st.pause.duration ? `Pause ${st.pause.duration}` : 'Pause until promoted';
    if (st.analysis) return `Analysis: ${(st.analysis.templates || []).map((t) => t.templateName).join(', ')}`;
    if (st.setHeaderRoute) return `Header route “${st.setHeaderRoute.name}”${(st.setHeaderRoute.match || []).length ? '' : ' (removed)'}`;
    if (st.setMirrorRoute) return `Mirror route “${st.setMirrorRoute.name}”`;
    return 'Unknown step';
  }

  function stepLabel(status) {
    if (!status.stepCount) return '–';
    if (status.stepIndex >= status.stepCount) return `done (${status.stepCount}/${status.stepCount})`;
    return `${status.stepIndex + 1}/${status.stepCount}`;
  }

  function phaseBadge(status, big) {
    return h('span', {
      class: `badge ${status.phase}${big ? ' big' : ''}`, id: big ? 'ro-phase' : null,
      data: { phase: status.phase }, text: status.phase,
    });
  }

  function severity(type) {
    if (/aborted|failed|error|unhealthy/.test(type)) return 'bad';
    if (/paused|inconclusive|nodata/.test(type)) return 'warn';
    if (/completed|successful|promoted|endpoint-healthy/.test(type)) return 'good';
    if (/started|resumed|weight/.test(type)) return 'info';
    return '';
  }

  // ---------------------------------------------------------- token/API

  const token = {
    get() { try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; } },
    set(v) { try { if (v) sessionStorage.setItem(TOKEN_KEY, v); else sessionStorage.removeItem(TOKEN_KEY); } catch { /* storage off */ } },
  };

  function authHeaders(extra) {
    const hdrs = Object.assign({ Accept: 'application/json' }, extra);
    const t = token.get();
    if (t) hdrs.Authorization = `Bearer ${t}`;
    return hdrs;
  }

  class APIError extends Error {
    constructor(status, message, field) {
      super(message);
      this.status = status;
      this.field = field;
    }
  }

  async function api(method, path, body, signal) {
    const init = { method, headers: authHeaders(), signal, cache: 'no-store', credentials: 'same-origin' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new APIError(0, `cannot reach coalmine at ${location.host}: ${e.message}`);
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (!res.ok) {
      const msg = (data && data.error) || text.trim() || res.statusText;
      const err = new APIError(res.status, msg, data && data.field);
      if (res.status === 401) needToken(err);
      throw err;
    }
    hideBanner('auth');
    return data;
  }

  function errorText(e) {
    if (!(e instanceof APIError)) return String(e && e.message ? e.message : e);
    const label = { 0: 'network', 400: '400 Bad Request', 401: '401 Unauthorized', 403: '403 Forbidden', 404: '404 Not Found', 409: '409 Conflict', 413: '413 Too Large', 500: '500 Server Error', 503: '503 Unavailable' }[e.status] || String(e.status);
    return `${label}: ${e.message}${e.field ? ` (field ${e.field})` : ''}`;
  }

  // ------------------------------------------------------------- banner

  let bannerKind = '';
  function showBanner(kind, text, isError) {
    const b = $('#banner');
    bannerKind = kind;
    b.textContent = text;
    b.className = `banner${isError ? ' error' : ''}`;
  }
  function hideBanner(kind) {
    if (kind && bannerKind !== kind) return;
    bannerKind = '';
    $('#banner').className = 'banner hidden';
  }
  function needToken(err) {
    // The token field is shown only to a server that asks for one.
    $('#token-form').classList.remove('hidden');
    const t = token.get();
    showBanner('auth', t
      ? `The API rejected the token (${err.message}). Enter the right token above.`
      : 'This coalmine needs an API token: enter it in the field above (it is kept in this tab only).', true);
    const input = $('#token');
    if (input && document.activeElement !== input) input.focus();
  }

  function setConn(state, text) {
    const c = $('#conn');
    c.className = `conn ${state}`;
    c.textContent = text;
  }

  // ------------------------------------------------------------- charts

  // niceTicks returns about n round tick values covering [0, max].
  function niceTicks(max, n) {
    if (!(max > 0)) return [0];
    const raw = max / n;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
    const ticks = [];
    for (let v = 0; v <= max * 1.0001 + step; v += step) {
      ticks.push(+v.toPrecision(12));
      if (v >= max) break;
    }
    return ticks;
  }

  // A line chart in SVG. lines: [{label, cls, dash, step, pts: [[ms, value|null]]}].
  class Chart {
    constructor(title, unitFmt, opts = {}) {
      this.title = title;
      this.fmt = unitFmt;
      this.opts = opts;
      this.W = 560; this.H = 190;
      this.m = { l: 52, r: 12, t: 10, b: 24 };
      this.legend = h('div', { class: 'legend' });
      this.svg = svg('svg', { viewBox: `0 0 ${this.W} ${this.H}`, role: 'img', 'aria-label': title });
      this.el = h('div', { class: 'panel chart', data: { chart: opts.id || title } },
        h('div', { class: 'chart-head' }, h('h3', { text: title }), opts.note ? h('span', { class: 'small muted', text: opts.note }) : null),
        this.svg, this.legend);
      this.svg.addEventListener('mousemove', (ev) => this.hover(ev));
      this.svg.addEventListener('mouseleave', () => this.hover(null));
      this.lines = [];
    }

    draw(lines, x0, x1) {
      this.lines = lines; this.x0 = x0; this.x1 = x1;
      const { W, H, m } = this;
      const iw = W - m.l - m.r, ih = H - m.t - m.b;
      let ymax = this.opts.yMax || 0;
      if (!this.opts.fixedMax) {
        for (const l of lines) for (const [t, v] of l.pts) if (v !== null && t >= x0 && v > ymax) ymax = v;
        ymax = Math.max(ymax, this.opts.yMin || 0);
      }
      const ticks = niceTicks(ymax || 1, 4);
      const ytop = ticks[ticks.length - 1] || 1;
      this.sx = (t) => m.l + ((t - x0) / Math.max(1, x1 - x0)) * iw;
      this.sy = (v) => m.t + ih - (v / ytop) * ih;
      const { sx, sy } = this;

      const kids = [];
      const axis = svg('g', { class: 'axis' });
      for (const v of ticks) {
        const y = sy(v);
        axis.append(svg('line', { class: 'grid-line', x1: m.l, x2: W - m.r, y1: y, y2: y }));
        axis.append(svg('text', { x: m.l - 6, y: y + 3, 'text-anchor': 'end', text: this.fmt(v, true) }));
      }
      const span = x1 - x0;
      const stepChoices = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600].map((s) => s * 1000);
      const xstep = stepChoices.find((s) => span / s <= 6) || 3600 * 1000;
      for (let t = Math.ceil(x0 / xstep) * xstep; t <= x1; t += xstep) {
        const x = sx(t);
        axis.append(svg('line', { class: 'grid-line', x1: x, x2: x, y1: m.t, y2: m.t + ih }));
        axis.append(svg('text', { x, y: H - 6, 'text-anchor': 'middle', text: clock(t) }));
      }
      kids.push(axis);

      let any = false;
      for (const l of lines) {
        // Gaps (null: no data) break a line; a step line holds its value
        // until the next point and then to the right edge.
        let d = '';
        let pen = false;
        let firstX = null;
        for (const [t, v] of l.pts) {
          if (t < x0 || v === null) { if (!l.step) pen = false; continue; }
          const x = sx(Math.min(t, x1)).toFixed(1), y = sy(v).toFixed(1);
          if (firstX === null) firstX = x;
          if (!pen) { d += `M${x},${y}`; pen = true; } else if (l.step) d += `H${x}V${y}`; else d += `L${x},${y}`;
          any = true;
        }
        if (l.step && pen) d += `H${sx(x1).toFixed(1)}`;
        if (d && l.area) kids.push(svg('path', { class: `area ${l.cls}`, d: `${d}V${sy(0).toFixed(1)}H${firstX}Z` }));
        if (d) kids.push(svg('path', { class: `line ${l.cls}${l.dash ? ' dash' : ''}`, d }));
      }
      if (!any) {
        kids.push(svg('text', { class: 'empty', x: m.l + iw / 2, y: m.t + ih / 2, 'text-anchor': 'middle', text: this.opts.emptyText || 'no traffic yet' }));
      }
      this.cursor = svg('line', { class: 'cursor hidden', x1: 0, x2: 0, y1: m.t, y2: m.t + ih });
      kids.push(this.cursor);
      fill(this.svg, ...kids);
      this.renderLegend(null);
    }

    // valueAt is a step line's value at t, or a line's nearest point's.
    valueAt(l, t) {
      let best = null;
      if (l.step) {
        for (const [pt, v] of l.pts) { if (pt > t) break; best = v; }
        return best;
      }
      let bestD = Infinity;
      for (const [pt, v] of l.pts) {
        const d = Math.abs(pt - t);
        if (d < bestD) { bestD = d; best = v; }
      }
      return best;
    }

    renderLegend(t) {
      fill(this.legend, ...this.lines.map((l) => {
        let v;
        if (t === null) {
          for (let i = l.pts.length - 1; i >= 0; i--) if (l.pts[i][1] !== null) { v = l.pts[i][1]; break; }
        } else {
          v = this.valueAt(l, t);
        }
        return h('span', { class: 'key' }, h('span', { class: `sw ${l.cls}${l.dash ? ' dash' : ''}` }), l.label,
          h('span', { class: 'val', text: v === undefined || v === null ? '–' : this.fmt(v) }));
      }));
      if (t !== null) this.legend.prepend(h('span', { class: 'muted', text: clock(t) }));
    }

    hover(ev) {
      if (!ev || !this.sx) {
        if (this.cursor) this.cursor.classList.add('hidden');
        this.renderLegend(null);
        return;
      }
      const r = this.svg.getBoundingClientRect();
      const x = ((ev.clientX - r.left) / r.width) * this.W;
      if (x < this.m.l || x > this.W - this.m.r) { this.hover(null); return; }
      const t = this.x0 + ((x - this.m.l) / (this.W - this.m.l - this.m.r)) * (this.x1 - this.x0);
      this.cursor.setAttribute('x1', x); this.cursor.setAttribute('x2', x);
      this.cursor.classList.remove('hidden');
      this.renderLegend(t);
    }
  }

  // --------------------------------------------------------------- pages

  let page = null;

  function route() {
    if (page) page.destroy();
    hideBanner('page');
    const m = location.hash.match(/^#\/rollouts\/([^/?]+)$/);
    page = m ? new RolloutPage(decodeURIComponent(m[1])) : new ListPage();
  }

  function crumbs(...parts) {
    fill($('#crumbs'), ...parts.flatMap((p, i) => (i ? [' / ', p] : [p])));
  }

  // The list of rollouts, polled.
  class ListPage {
    constructor() {
      this.ctl = new AbortController();
      this.timer = null;
      crumbs(h('a', { href: '#/', text: 'Rollouts' }));
      setConn('', '');
      document.title = 'Rollouts · coalmine';
      this.body = h('tbody');
      this.table = h('table', { class: 'rollouts', id: 'rollouts' },
        h('thead', {}, h('tr', {},
          h('th', { text: 'Rollout' }), h('th', { text: 'Phase' }), h('th', { text: 'Step' }),
          h('th', { text: 'Weight applied / observed' }), h('th', { text: 'Stable' }), h('th', { text: 'Canary' }),
          h('th', { text: 'Updated' }))),
        this.body);
      this.err = h('p', { class: 'error-text hidden' });
      this.replicas = new ReplicasPanel();
      fill($('#main'), h('section', { class: 'panel' }, h('h2', { text: 'Rollouts' }), this.err, this.table), this.replicas.el);
      this.load();
    }

    async load() {
      try {
        const list = await api('GET', '/api/v1/rollouts', undefined, this.ctl.signal);
        this.err.classList.add('hidden');
        this.render(list.items || []);
      } catch (e) {
        if (e.name === 'AbortError') return;
        this.err.textContent = `Cannot list rollouts: ${errorText(e)}`;
        this.err.classList.remove('hidden');
      }
      if (!this.ctl.signal.aborted) this.timer = setTimeout(() => this.load(), LIST_POLL_MS);
    }

    render(items) {
      if (!items.length) {
        fill(this.body, h('tr', {}, h('td', { colspan: 7, class: 'empty-state', text: 'No rollouts yet. Apply one with `coalmine apply -f rollout.yaml`.' })));
        return;
      }
      fill(this.body, ...items.map((v) => {
        const st = v.status;
        const name = v.metadata.name;
        return h('tr', { data: { rollout: name } },
          h('td', { class: 'name' },
            h('a', { href: `#/rollouts/${encodeURIComponent(name)}`, data: { rollout: name }, text: name }),
            st.message ? h('div', { class: 'small muted message', text: st.message }) : null),
          h('td', {}, phaseBadge(st), st.pauseReason ? h('div', { class: 'small muted', text: st.pauseReason }) : null),
          h('td', { class: 'num', text: stepLabel(st) }),
          h('td', {}, h('div', { class: 'row' },
            h('progress', { class: 'mini', max: 100, value: st.weight }),
            h('span', { text: `${pct(st.weight)} / ${pct(st.observedWeight)}` }))),
          h('td', {}, h('span', { class: 'version stable', text: st.stableVersion || '–' })),
          h('td', {}, st.canaryVersion ? h('span', { class: 'version canary', text: st.canaryVersion }) : h('span', { class: 'muted', text: '–' })),
          h('td', {}, relTime(st.updatedAt)));
      }));
    }

    destroy() {
      this.ctl.abort();
      clearTimeout(this.timer);
      this.replicas.destroy();
    }
  }

  // The coalmine processes sharing the store (GET /api/v1/replicas),
  // polled. The panel stays hidden until the first answer and for good
  // when the server has no such endpoint (404: an older server), and
  // nothing it receives can throw out of it: it must never break the list
  // of rollouts it sits under.
  class ReplicasPanel {
    constructor() {
      this.ctl = new AbortController();
      this.timer = null;
      this.body = h('tbody');
      this.summary = h('p', { class: 'small muted', id: 'replicas-summary' });
      this.err = h('p', { class: 'error-text hidden' });
      this.el = h('section', { class: 'panel hidden', id: 'replicas-panel' },
        h('h2', { text: 'Replicas' }), this.summary, this.err,
        h('table', { class: 'replicas', id: 'replicas' },
          h('thead', {}, h('tr', {},
            h('th', { text: 'Replica' }), h('th', { text: 'Role' }), h('th', { text: 'State' }), h('th', { text: 'Admin' }),
            h('th', { text: 'Version' }), h('th', { class: 'num', text: 'Route revision' }), h('th', { text: 'Heartbeat' }))),
          this.body));
      this.load();
    }

    async load() {
      try {
        const list = await api('GET', '/api/v1/replicas', undefined, this.ctl.signal);
        if (!Array.isArray(list)) throw new Error('the answer is not a list of replicas');
        this.err.classList.add('hidden');
        this.render(list);
        this.el.classList.remove('hidden');
      } catch (e) {
        if (e && e.name === 'AbortError') return;
        if (e instanceof APIError && e.status === 404) { this.el.classList.add('hidden'); return; }
        this.err.textContent = `Cannot list replicas: ${errorText(e)}`;
        this.err.classList.remove('hidden');
        // The server has the endpoint and says why it failed (503: the
        // store): show it. A network error is the list's to report.
        if (e instanceof APIError && e.status !== 0) this.el.classList.remove('hidden');
      }
      if (!this.ctl.signal.aborted) this.timer = setTimeout(() => this.load(), REPLICAS_POLL_MS);
    }

    render(list) {
      const rows = list.filter((r) => r && typeof r === 'object' && typeof r.id === 'string')
        .sort((a, b) => (b.leader === true) - (a.leader === true) || a.id.localeCompare(b.id));
      const live = rows.filter((r) => !r.gone).length;
      const leader = rows.find((r) => r.leader);
      this.summary.textContent = `${rows.length} registered · ${live} live · ${leader ? `leader ${leader.id}` : 'no leader right now'}` +
        ' · gone after 3 s without a heartbeat';
      if (!rows.length) {
        fill(this.body, h('tr', {}, h('td', { colspan: 7, class: 'empty-state', text: 'No replica registered yet.' })));
        return;
      }
      fill(this.body, ...rows.map((r) => h('tr', { class: r.gone ? 'gone' : null, data: { replica: r.id } },
        h('td', { class: 'name', text: r.id }),
        h('td', {}, r.leader ? h('span', { class: 'badge info', text: 'leader' }) : h('span', { class: 'muted', text: 'follower' })),
        h('td', {}, h('span', { class: `badge ${r.gone ? 'bad' : 'good'}`, text: r.gone ? 'gone' : 'live' })),
        h('td', {}, h('code', { text: r.admin || '–' })),
        h('td', { text: r.version || '–' }),
        h('td', { class: 'num', text: String(r.routeRevision ?? '–') }),
        h('td', {}, h('time', { datetime: r.lastHeartbeat || '', title: r.lastHeartbeat ? stamp(r.lastHeartbeat) : '',
          data: { beat: r.lastHeartbeat || '' }, text: beatAgo(r.lastHeartbeat) })))));
    }

    destroy() {
      this.ctl.abort();
      clearTimeout(this.timer);
    }
  }

  // One rollout, live.
  class RolloutPage {
    constructor(name) {
      this.name = name;
      this.path = `/api/v1/rollouts/${encodeURIComponent(name)}`;
      this.ctl = new AbortController();
      this.view = null;
      this.events = [];
      this.lastSeq = 0;
      this.pastRuns = [];
      this.runsKey = '';
      this.series = null;
      this.step = '1s';
      this.timers = new Set();
      crumbs(h('a', { href: '#/', text: 'Rollouts' }), h('span', { text: name }));
      document.title = `${name} · coalmine`;
      this.build();
      this.start();
    }

    build() {
      this.el = {
        name: h('h1', { id: 'ro-name', text: this.name }),
        phase: h('span'),
        reason: h('span', { class: 'muted', id: 'ro-reason' }),
        message: h('div', { class: 'message-text', id: 'ro-message' }),
        facts: h('dl', { class: 'facts' }),
        weight: h('div'),
        versions: h('div'),
        steps: h('ol', { class: 'steps', id: 'steps' }),
        stepsNote: h('p', { class: 'small muted' }),
        runs: h('div', { id: 'runs' }),
        events: h('tbody'),
        result: h('div', { class: 'result hidden', id: 'action-result', role: 'status' }),
        loadErr: h('p', { class: 'error-text hidden' }),
      };
      this.actions = this.buildActions();
      const charts = {
        rps: new Chart('Requests per second', (v) => num(v, v < 10 ? 2 : 0), { id: 'rps' }),
        errors: new Chart('Error rate (5xx)', (v, axis) => pct(v * 100, axis ? 2 : 3), { id: 'errors', yMin: 0.01 }),
        latency: new Chart('Latency p50 / p99', (v) => ms(v), { id: 'latency', note: 'solid p50 · dashed p99' }),
        weight: new Chart('Canary weight', (v) => pct(v), { id: 'weight', yMax: 100, fixedMax: true, emptyText: 'no weight yet' }),
      };
      this.charts = charts;
      this.seriesNote = h('p', { class: 'small muted', id: 'series-note' });
      this.stepSelect = h('select', { id: 'series-step', 'aria-label': 'chart step' },
        ['1s', '5s', '15s', '1m'].map((v) => h('option', { value: v, text: `${v} steps` })));
      this.stepSelect.addEventListener('change', () => {
        this.step = this.stepSelect.value;
        this.series = null; // the next poll starts over with the new step
      });
      const e = this.el;
      fill($('#main'),
        e.loadErr,
        h('section', { class: 'panel rollout-head' },
          h('div', { class: 'title' },
            h('div', { class: 'row' }, e.name, e.phase, e.reason),
            e.message),
          e.facts),
        h('section', { class: 'panel' }, h('h2', { text: 'Actions' }), this.actions, e.result),
        h('div', { class: 'grid three section' },
          h('section', { class: 'panel' }, h('h2', { text: 'Weight' }), e.weight),
          h('section', { class: 'panel' }, h('h2', { text: 'Versions' }), e.versions),
          h('section', { class: 'panel' }, h('h2', { text: 'Steps' }), e.steps, e.stepsNote)),
        h('section', { class: 'section' },
          h('div', { class: 'row' }, h('h2', { text: 'Traffic over the revision' }), h('span', { class: 'spacer' }), this.seriesNote, this.stepSelect),
          h('div', { class: 'grid two' }, charts.rps.el, charts.errors.el, charts.latency.el, charts.weight.el)),
        h('section', { class: 'panel' }, h('h2', { text: 'Analysis runs' }), e.runs),
        h('section', { class: 'panel' }, h('h2', { text: 'Events' }),
          h('div', { class: 'scroll' }, h('table', { class: 'events', id: 'events' },
            h('thead', {}, h('tr', {}, h('th', { class: 'num', text: 'Seq' }), h('th', { text: 'Time' }), h('th', { text: 'Type' }),
              h('th', { class: 'num', text: 'Rev' }), h('th', { text: 'Message' }), h('th', { text: 'Details' }))),
            e.events))));
    }

    buildActions() {
      const btn = (id, label, cls, fn, confirmText) => {
        const b = h('button', { id, type: 'button', class: cls || null, text: label });
        b.dataset.label = label;
        b.addEventListener('click', () => {
          if (confirmText && !b.classList.contains('armed')) {
            b.classList.add('armed');
            b.textContent = confirmText;
            clearTimeout(b._disarm);
            b._disarm = setTimeout(() => { b.classList.remove('armed'); b.textContent = b.dataset.label; }, 4000);
            return;
          }
          clearTimeout(b._disarm);
          b.classList.remove('armed');
          b.textContent = b.dataset.label;
          fn();
        });
        return b;
      };
      this.btn = {
        promote: btn('btn-promote', 'Promote', 'primary', () => this.command('promote', 'POST', '/promote', {})),
        full: btn('btn-promote-full', 'Promote full', null, () => this.command('promote in full', 'POST', '/promote', { full: true }), 'Confirm: skip every step?'),
        pause: btn('btn-pause', 'Pause', null, () => {
          const paused = this.view && this.view.status.pauseReason === 'Manual';
          this.command(paused ? 'resume' : 'pause', 'POST', paused ? '/resume' : '/pause', {});
        }),
        abort: btn('btn-abort', 'Abort', 'danger', () => this.command('abort', 'POST', '/abort', {}), 'Confirm abort: all traffic to stable?'),
        retry: btn('btn-retry', 'Retry', null, () => this.command('retry', 'POST', '/retry', {})),
      };
      this.weightInput = h('input', { id: 'weight-input', type: 'number', min: 0, max: 100, step: 0.01, placeholder: '%', 'aria-label': 'canary weight in percent' });
      this.btn.weight = h('button', { id: 'btn-weight', type: 'submit', text: 'Set weight' });
      const form = h('form', { class: 'weight-set', id: 'weight-form' }, this.weightInput, this.btn.weight);
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        const raw = this.weightInput.value.trim();
        const v = Number(raw);
        if (raw === '' || !Number.isFinite(v)) {
          this.showResult(false, 'Enter the canary weight in percent, 0 to 100.');
          return;
        }
        this.command(`set weight ${pct(v)}`, 'PUT', '/weight', { percent: v });
      });
      return h('div', { class: 'actions' }, this.btn.promote, this.btn.full, this.btn.pause, this.btn.abort, this.btn.retry, form);
    }

    async command(what, method, suffix, body) {
      const buttons = Object.values(this.btn);
      buttons.forEach((b) => { b.disabled = true; });
      try {
        const v = await api(method, this.path + suffix, body, this.ctl.signal);
        this.showResult(true, `${what}: done. ${v.status.message || ''}`.trim());
        this.setView(v);
      } catch (e) {
        if (e.name === 'AbortError') return;
        this.showResult(false, `${what} failed: ${errorText(e)}`);
      } finally {
        this.updateButtons();
      }
    }

    showResult(ok, text) {
      const r = this.el.result;
      r.className = `result ${ok ? 'ok' : 'err'}`;
      r.setAttribute('role', ok ? 'status' : 'alert');
      r.textContent = text;
    }

    async start() {
      try {
        const v = await api('GET', this.path, undefined, this.ctl.signal);
        this.setView(v);
        // The newest events first, then everything after them live.
        const after = Math.max(0, (v.status.lastEventSeq || 0) - MAX_EVENTS_SHOWN);
        const evs = await api('GET', `${this.path}/events?after=${after}&limit=${MAX_EVENTS_SHOWN}`, undefined, this.ctl.signal);
        for (const ev of evs.items || []) this.addEvent(ev, false);
        this.renderEvents();
      } catch (e) {
        if (e.name === 'AbortError') return;
        this.el.loadErr.textContent = `Cannot load rollout “${this.name}”: ${errorText(e)}`;
        this.el.loadErr.classList.remove('hidden');
        if (!(e instanceof APIError) || e.status !== 401) return;
      }
      this.watch();
      this.pollSeries();
      this.ticker = setInterval(() => this.tick(), 1000);
    }

    // later runs fn after ms unless the page is left first.
    later(fn, ms) {
      const id = setTimeout(() => { this.timers.delete(id); fn(); }, ms);
      this.timers.add(id);
    }

    destroy() {
      this.ctl.abort();
      clearInterval(this.ticker);
      this.timers.forEach((id) => clearTimeout(id));
      setConn('', '');
    }

    // ---- live stream: fetch + ReadableStream, since EventSource cannot
    // send the Authorization header.
    async watch() {
      let backoff = 1000;
      const signal = this.ctl.signal;
      while (!signal.aborted) {
        try {
          const res = await fetch(`${this.path}/watch?after=${this.lastSeq}`, {
            headers: authHeaders({ Accept: 'text/event-stream' }), signal, cache: 'no-store', credentials: 'same-origin',
          });
          if (!res.ok) {
            let msg = res.statusText;
            try { msg = (await res.json()).error || msg; } catch { /* not JSON */ }
            const err = new APIError(res.status, msg);
            if (res.status === 401) needToken(err);
            throw err;
          }
          setConn('live', 'live');
          hideBanner('stream');
          backoff = 1000;
          await this.readStream(res.body);
        } catch (e) {
          if (signal.aborted) return;
          if (e instanceof APIError && e.status !== 401) showBanner('stream', `Live updates stopped: ${errorText(e)}; retrying.`, true);
        }
        if (signal.aborted) return;
        setConn('down', `reconnecting in ${Math.round(backoff / 1000)}s`);
        await new Promise((resolve) => this.later(resolve, backoff));
        backoff = Math.min(backoff * 2, 15000);
      }
    }

    async readStream(body) {
      const reader = body.getReader();
      const decoder = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          this.onMessage(block);
        }
      }
    }

    onMessage(block) {
      let event = 'message', data = '', id = null;
      for (const line of block.split('\n')) {
        if (!line || line.startsWith(':')) continue;
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        const value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data += (data ? '\n' : '') + value;
        else if (field === 'id') id = value;
      }
      if (!data) return;
      let obj;
      try { obj = JSON.parse(data); } catch { return; }
      if (event === 'status') this.setView(obj);
      else if (event === 'event') {
        if (id !== null && Number(id) > 0) obj.seq = Number(id);
        this.addEvent(obj, true);
        this.renderEvents();
      }
    }

    // ---- series: poll; each answer brings the points after the last one.
    async pollSeries() {
      const signal = this.ctl.signal;
      if (signal.aborted) return;
      try {
        const step = this.step;
        const since = this.series && this.series.to ? `&since=${encodeURIComponent(this.series.to)}` : '';
        const s = await api('GET', `${this.path}/series?step=${step}${since}`, undefined, signal);
        if (step === this.step) { // else the step changed meanwhile: drop it
          this.mergeSeries(s);
          this.renderCharts();
        }
      } catch (e) {
        if (e.name === 'AbortError') return;
        this.seriesNote.textContent = `Charts not updated: ${errorText(e)}`;
      }
      this.later(() => this.pollSeries(), SERIES_POLL_MS);
    }

    mergeSeries(s) {
      // A new revision starts the charts afresh. Within a revision the
      // proxy's counters restart when the routed versions change (at the
      // completion): the lines of the versions no longer answered stay.
      const cur = this.series;
      if (!cur || cur.revision !== s.revision) {
        this.series = s;
        return;
      }
      for (const vs of s.versions) {
        const mine = cur.versions.find((x) => x.role === vs.role && x.version === vs.version);
        if (!mine) { cur.versions.push(vs); continue; }
        const last = mine.points.length ? Date.parse(mine.points[mine.points.length - 1].t) : 0;
        for (const p of vs.points) if (Date.parse(p.t) > last) mine.points.push(p);
        if (mine.points.length > MAX_POINTS) mine.points.splice(0, mine.points.length - MAX_POINTS);
      }
      for (const w of s.weight) {
        const last = cur.weight[cur.weight.length - 1];
        if (!last || (Date.parse(w.t) > Date.parse(last.t) && w.weight !== last.weight)) cur.weight.push(w);
      }
      cur.to = s.to;
      cur.telemetryStart = s.telemetryStart;
      cur.truncated = cur.truncated || s.truncated;
    }

    renderCharts() {
      const s = this.series;
      if (!s) return;
      // From the first point (or the series start) to now; at least a
      // minute, so that a young revision's lines grow from the left.
      let x0 = Date.parse(s.from);
      for (const vs of s.versions) if (vs.points.length) x0 = Math.min(x0, Date.parse(vs.points[0].t) - 1000);
      const x1 = Math.max(Date.parse(s.to), x0 + 60000);
      const lines = (f, extra) => s.versions.map((vs) => Object.assign({
        label: `${vs.role} ${vs.version}`, cls: vs.role,
        pts: vs.points.map((p) => [Date.parse(p.t), f(p)]),
      }, extra));
      this.charts.rps.draw(lines((p) => p.rps), x0, x1);
      this.charts.errors.draw(lines((p) => p.errorRate), x0, x1);
      const lat = [];
      for (const vs of s.versions) {
        const pts = (key) => vs.points.map((p) => [Date.parse(p.t), p[key]]);
        lat.push({ label: `${vs.role} ${vs.version} p50`, cls: vs.role, pts: pts('p50') });
        lat.push({ label: `p99`, cls: vs.role, dash: true, pts: pts('p99') });
      }
      this.charts.latency.draw(lat, x0, x1);
      const wpts = s.weight.map((w) => [Math.max(Date.parse(w.t), x0), w.weight]);
      this.charts.weight.draw([{ label: 'canary weight', cls: 'canary', step: true, area: true, pts: wpts }], x0, x1);
      const started = s.telemetryStart ? `since ${clock(s.telemetryStart)}` : '';
      this.seriesNote.textContent = `${started}; the proxy keeps ${s.retention} of history${s.truncated ? ' (older points are gone)' : ''}.`;
    }

    // ---- status
    setView(v) {
      // A command's answer can arrive after the watch stream has shown a
      // later state: never go back.
      const cur = this.view && this.view.status;
      if (cur && (v.status.lastEventSeq < cur.lastEventSeq ||
          (v.status.lastEventSeq === cur.lastEventSeq && Date.parse(v.status.updatedAt) < Date.parse(cur.updatedAt)))) return;
      this.view = v;
      const st = v.status;
      const e = this.el;
      e.loadErr.classList.add('hidden');
      const badge = phaseBadge(st, true);
      e.phase.replaceWith(badge);
      e.phase = badge;
      e.reason.textContent = st.pauseReason ? `· ${st.pauseReason}` : (st.aborted ? '· aborted' : '');
      e.message.textContent = st.message || '';
      fill(e.facts,
        h('dt', { text: 'Revision' }), h('dd', { id: 'ro-revision', text: String(st.revision) }),
        h('dt', { text: 'Step' }), h('dd', { id: 'ro-step', text: stepLabel(st) }),
        h('dt', { text: 'Listen' }), h('dd', { class: 'mono', text: v.spec.listen || '–' }),
        h('dt', { text: 'Updated' }), h('dd', {}, relTime(st.updatedAt)));

      fill(e.weight,
        h('div', { class: 'bigweight', id: 'ro-weight', data: { weight: String(st.weight) } }, pct(st.weight),
          h('span', { class: 'sub', text: ' applied' })),
        h('progress', { class: 'wide', max: 100, value: st.weight }),
        st.canaryVersion
          ? h('p', { class: 'small' }, 'Observed by the data plane: ',
            h('b', { id: 'ro-observed', text: pct(st.observedWeight) }),
            st.observedWeight !== st.weight ? h('span', { class: 'muted', text: ' (catching up)' }) : null)
          : h('p', { class: 'small muted', text: `No canary: stable ${st.stableVersion} serves every request.` }));

      const eps = st.endpoints || [];
      const versionLine = (role, version) => h('div', { class: 'row' },
        h('span', { class: 'muted', text: role }), h('span', { class: `version ${role}`, text: version || '–' }));
      fill(e.versions,
        versionLine('stable', st.stableVersion),
        versionLine('canary', st.canaryVersion),
        eps.length ? h('table', { class: 'small' },
          h('thead', {}, h('tr', {}, h('th', { text: 'Endpoint' }), h('th', { text: 'Health' }), h('th', { class: 'num', text: 'In flight' }))),
          h('tbody', {}, eps.map((ep) => h('tr', {},
            h('td', {}, h('span', { class: `version ${ep.role}`, text: ep.version }), ' ', h('span', { class: 'mono', text: ep.url })),
            h('td', {}, h('span', { class: `badge ${ep.healthy ? 'good' : 'bad'}`, text: ep.ejected ? 'ejected' : (ep.healthy ? 'healthy' : 'unhealthy') })),
            h('td', { class: 'num', text: String(ep.inFlight) }))))) : null,
        (st.notifications || []).length ? h('div', { class: 'small' }, h('h3', { text: 'Notifications' }),
          st.notifications.map((n) => h('div', {},
            `${n.kind} #${n.index}: `, n.pending ? `${n.pending} pending` : 'up to date',
            n.lastError ? h('span', { class: 'error-text', text: ` · ${n.lastError}` }) : null))) : null);

      this.renderSteps();
      this.updateButtons();
      this.renderRuns();
      this.refreshPastRuns();
    }

    renderSteps() {
      const v = this.view;
      const st = v.status;
      const steps = (v.spec.strategy && v.spec.strategy.canary && v.spec.strategy.canary.steps) || [];
      const active = !!st.canaryVersion;
      fill(this.el.steps, ...steps.map((step, i) => {
        let state = 'pending';
        if (i < st.stepIndex) state = 'done';
        else if (active && i === st.stepIndex) state = 'current';
        const cls = [state];
        if (state === 'current' && (st.phase === 'Paused')) cls.push('held');
        if (state === 'current' && st.phase === 'Degraded') cls.push('failed');
        const note = [];
        let bar = null;
        if (state === 'current') {
          if (st.phase === 'Degraded') note.push('aborted here');
          else if (step.pause && !step.pause.duration && st.pauseReason === 'PauseStep') note.push('waiting for promote');
          else if (step.pause && st.pauseUntil) {
            bar = h('progress', { class: 'wide pause', max: 1000, value: 0, data: { from: st.stepStartedAt || '', until: st.pauseUntil } });
            note.push(h('span', { data: { until: st.pauseUntil }, text: '' }));
          } else if (st.pauseReason) note.push(`held: ${st.pauseReason}`);
          else if (step.analysis) note.push('analysis running');
          else if (step.setWeight !== undefined) note.push(st.observedWeight === st.weight ? 'applied' : 'waiting for the data plane');
        } else if (state === 'pending' && !active && st.phase === 'Healthy' && st.stepIndex > 0) {
          note.push('skipped');
        }
        return h('li', { class: cls.join(' '), 'aria-current': state === 'current' ? 'step' : null, data: { step: String(i) } },
          h('span', { class: 'mark', text: state === 'done' ? '✓' : String(i + 1) }),
          h('div', { class: 'body' }, h('div', { class: 'what', text: stepText(step) }), bar,
            note.length ? h('div', { class: 'note' }, note) : null));
      }));
      const bg = v.spec.strategy && v.spec.strategy.canary && v.spec.strategy.canary.analysis;
      this.el.stepsNote.textContent = !steps.length ? 'No steps: the canary goes to 100% at once.'
        : bg ? `Background analysis: ${(bg.templates || []).map((t) => t.templateName).join(', ')} from step ${(bg.startingStep || 0) + 1}.` : '';
      this.tick();
    }

    updateButtons() {
      if (!this.view) return;
      // Only what cannot apply is disabled; anything else the API decides,
      // and its 409 reason is shown.
      const st = this.view.status;
      const canary = !!st.canaryVersion;
      // Promote refuses an aborted revision (retry, or promote in full).
      this.btn.promote.disabled = !canary || st.aborted;
      this.btn.full.disabled = !canary; // also makes an aborted canary stable
      this.btn.abort.disabled = !canary || st.aborted;
      this.btn.pause.disabled = !canary || st.aborted;
      this.btn.weight.disabled = !canary;
      this.btn.retry.disabled = !st.aborted;
      const manual = st.pauseReason === 'Manual';
      this.btn.pause.dataset.label = manual ? 'Resume' : 'Pause';
      if (!this.btn.pause.classList.contains('armed')) this.btn.pause.textContent = this.btn.pause.dataset.label;
    }

    // ---- analysis: the live runs of the status over the full list.
    async refreshPastRuns() {
      const key = (this.view.status.analysisRuns || []).map((r) => `${r.id}:${r.phase}`).join(',') + `|${this.view.status.revision}`;
      if (key === this.runsKey) return;
      this.runsKey = key;
      try {
        const list = await api('GET', `${this.path}/analysisruns`, undefined, this.ctl.signal);
        this.pastRuns = list.items || [];
        this.renderRuns();
      } catch (e) {
        if (e.name === 'AbortError') return;
        this.runsKey = '';
      }
    }

    renderRuns() {
      const live = this.view ? this.view.status.analysisRuns || [] : [];
      const byId = new Map(live.map((r) => [r.id, r]));
      const all = this.pastRuns.map((r) => byId.get(r.id) || r);
      for (const r of live) if (!this.pastRuns.some((p) => p.id === r.id)) all.unshift(r);
      if (!all.length) {
        fill(this.el.runs, h('p', { class: 'muted', text: 'No analysis has run in this rollout yet.' }));
        return;
      }
      const open = new Set([...this.el.runs.querySelectorAll('details[open]')].map((d) => d.dataset.run));
      fill(this.el.runs, ...all.map((r, i) => this.renderRun(r, byId.has(r.id) || open.has(r.id) || (i === 0 && open.size === 0))));
    }

    renderRun(r, open) {
      const kind = r.kind === 'step' ? `step ${r.step + 1}` : (r.kind || '');
      return h('details', { class: 'run', open: open || null, data: { run: r.id } },
        h('summary', {},
          h('span', { class: `badge ${r.phase}`, text: r.phase }),
          h('b', { class: 'mono', text: r.id }),
          h('span', { text: r.template }),
          kind ? h('span', { class: 'muted', text: kind }) : null,
          r.revision ? h('span', { class: 'muted', text: `rev ${r.revision}` }) : null,
          h('span', { class: 'spacer' }),
          h('span', { class: 'small muted' }, r.startedAt ? `started ${stamp(r.startedAt)}` : '', r.finishedAt ? ` · finished ${clock(r.finishedAt)}` : '')),
        h('div', { class: 'content' },
          r.message ? h('p', { text: r.message }) : null,
          h('table', { class: 'small' },
            h('thead', {}, h('tr', {}, ['Metric', 'Verdict', 'Count', 'Successful', 'Failed', 'Inconclusive', 'Error', 'No data', 'Consecutive errors']
              .map((t, i) => h('th', { class: i >= 2 ? 'num' : null, text: t })))),
            h('tbody', {}, (r.metrics || []).map((m) => h('tr', {},
              h('td', {}, h('b', { text: m.name }), m.dryRun ? h('span', { class: 'muted', text: ' (dry run)' }) : null),
              h('td', {}, h('span', { class: `badge ${m.phase}`, text: m.phase })),
              [m.count, m.successful, m.failed, m.inconclusive, m.error, m.noData, m.consecutiveErrors]
                .map((n) => h('td', { class: 'num', text: String(n || 0) })))))),
          (r.metrics || []).map((m) => this.renderMetric(m))));
    }

    renderMetric(m) {
      const ms_ = (m.measurements || []).slice(-3).reverse();
      return h('div', { class: 'metric' },
        h('h3', {}, m.name, ' ', h('span', { class: 'muted small', text: m.message || '' })),
        ms_.length ? h('ul', { class: 'measurements' }, ms_.map((x) => h('li', { class: x.phase },
          h('div', { class: 'row' },
            h('span', { class: `badge ${x.phase}`, text: x.phase }),
            h('span', { class: 'small muted', text: x.finishedAt && !x.finishedAt.startsWith('0001') ? clock(x.finishedAt) : clock(x.startedAt) }),
            x.value !== undefined && x.value !== null && typeof x.value !== 'object'
              ? h('span', { class: 'mono small', text: `value ${typeof x.value === 'number' ? num(x.value, 4) : String(x.value)}` }) : null),
          x.value !== null && typeof x.value === 'object' ? h('div', { class: 'small' }, detailsView({ value: x.value })) : null,
          x.message ? h('div', { text: x.message }) : null,
          x.evidence ? this.renderEvidence(x.evidence) : null))) : h('p', { class: 'small muted', text: 'No measurement yet.' }));
    }

    renderEvidence(ev) {
      const qs = new Set([...Object.keys(ev.canary.quantilesMs || {}), ...Object.keys(ev.stable.quantilesMs || {})]);
      const row = (label, f) => h('tr', {}, h('th', { text: label }), h('td', { class: 'num', text: f(ev.canary) }), h('td', { class: 'num', text: f(ev.stable) }));
      const stats = [];
      const stat = (k, v) => stats.push(h('span', {}, `${k} `, h('b', { text: v }), '  '));
      if (ev.statistic !== undefined && ev.statistic !== null) stat(ev.statisticName || 'statistic', num(ev.statistic, 4));
      if (ev.pValue !== undefined && ev.pValue !== null) stat('p', num(ev.pValue, 4));
      if (ev.eValue !== undefined && ev.eValue !== null) stat('e-value', num(ev.eValue, 3));
      if (ev.interval && ev.interval.length === 2) stat(ev.intervalOf || 'interval', `[${num(ev.interval[0], 4)}, ${num(ev.interval[1], 4)}]`);
      if (ev.threshold) stat(ev.thresholdOf || 'threshold', num(ev.threshold, 4));
      if (ev.alpha) stat('α', num(ev.alpha, 4));
      return h('div', { class: 'evidence' },
        h('div', { class: 'small muted', text: ev.method }),
        h('table', {},
          h('thead', {}, h('tr', {}, h('th'), h('th', { class: 'num', text: 'canary' }), h('th', { class: 'num', text: 'stable' }))),
          h('tbody', {},
            row('requests', (s) => String(s.requests)),
            row('errors', (s) => String(s.errors)),
            row('error rate', (s) => pct(s.errorRate * 100, 3)),
            [...qs].sort().map((q) => row(`${q} latency`, (s) => ms((s.quantilesMs || {})[q] ?? null))))),
        stats.length ? h('div', { class: 'stats' }, stats) : null);
    }

    // ---- events
    addEvent(ev, fresh) {
      if (ev.seq && ev.seq <= this.lastSeq) return;
      if (ev.seq) this.lastSeq = ev.seq;
      ev._fresh = fresh;
      this.events.push(ev);
      if (this.events.length > MAX_EVENTS_SHOWN) this.events.splice(0, this.events.length - MAX_EVENTS_SHOWN);
    }

    renderEvents() {
      if (!this.events.length) {
        fill(this.el.events, h('tr', {}, h('td', { colspan: 6, class: 'muted', text: 'No events yet.' })));
        return;
      }
      fill(this.el.events, ...this.events.slice().reverse().map((ev) => {
        const tr = h('tr', { class: ev._fresh ? 'new' : null, data: { seq: String(ev.seq), type: ev.type } },
          h('td', { class: 'num', text: String(ev.seq) }),
          h('td', { class: 'time', title: ev.time, text: stamp(ev.time) }),
          h('td', {}, h('span', { class: `badge ${severity(ev.type)}`, text: ev.type })),
          h('td', { class: 'num', text: String(ev.revision) }),
          h('td', { text: ev.message }),
          h('td', { class: 'details' }, detailsView(ev.details)));
        ev._fresh = false;
        return tr;
      }));
    }

    // ---- every second: pause progress and relative times.
    tick() {
      for (const bar of this.el.steps.querySelectorAll('progress[data-until]')) {
        const from = Date.parse(bar.dataset.from), until = Date.parse(bar.dataset.until);
        const frac = until > from ? (Date.now() - from) / (until - from) : 1;
        bar.value = Math.round(Math.min(1, Math.max(0, frac)) * 1000);
      }
      for (const el of this.el.steps.querySelectorAll('span[data-until]')) {
        const left = (Date.parse(el.dataset.until) - Date.now()) / 1000;
        el.textContent = left > 0 ? `paused, ${duration(left)} left (until ${clock(el.dataset.until)})` : 'pause over, continuing';
      }
    }
  }

  // ----------------------------------------------------------- bootstrap

  function refreshRelTimes() {
    for (const el of document.querySelectorAll('time[data-rel]')) {
      if (el.dataset.rel) el.textContent = ago(el.dataset.rel);
    }
    for (const el of document.querySelectorAll('time[data-beat]')) {
      if (el.dataset.beat) el.textContent = beatAgo(el.dataset.beat);
    }
  }

  function initToken() {
    const form = $('#token-form');
    const input = $('#token');
    // A server without a token never answers 401, so the field stays
    // hidden there; it shows when a token is kept or one is asked for.
    if (token.get()) form.classList.remove('hidden');
    const mark = () => {
      form.classList.toggle('set', !!token.get());
      input.placeholder = token.get() ? 'token set (hidden)' : 'not set';
    };
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!input.value.trim()) { input.focus(); return; }
      token.set(input.value.trim());
      input.value = '';
      mark();
      hideBanner('auth');
      route();
    });
    $('#token-clear').addEventListener('click', () => {
      token.set('');
      input.value = '';
      mark();
      route();
    });
    mark();
  }

  document.addEventListener('DOMContentLoaded', () => {
    initToken();
    window.addEventListener('hashchange', route);
    setInterval(refreshRelTimes, 1000);
    route();
  });
})();
