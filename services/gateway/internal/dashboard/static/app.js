// The xsw operations page: a login form, then a live view fed by the gateway's event
// stream (/xsw/admin/events) and the admin API. A book is its site and its id: rows are
// kept per (site, book) and admin calls name the site. The admin token lives in this
// tab's sessionStorage and travels as an Authorization header only; every value from the
// server is inserted as text, never as markup.
(() => {
  'use strict';

  const TOKEN_KEY = 'xsw-admin-token';
  const LANES = ['interactive', 'manual', 'prefetch', 'refresh'];
  // Where a book read was served from; memory and database are pre-cache hits.
  const SERVED_FROM = ['memory', 'database', 'waited', 'queued', 'failed'];
  const ENDED = new Set(['completed', 'failed', 'skipped']);
  const MAX_ROWS = 40;
  const MAX_FAILURES = 25;
  // The site states the page knows; another state is shown as the worst.
  const SITE_STATES = new Set(['ok', 'throttled', 'circuit_open', 'refused']);

  const $ = (id) => document.getElementById(id);
  let token = sessionStorage.getItem(TOKEN_KEY);
  let stream = null; // AbortController of the open stream
  const state = { books: new Map(), failures: [], snapshot: null, dead: [], deadTotal: -1, loadingDead: false };

  // el builds an element; strings and numbers among children become text nodes.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('data-')) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  // bookKey keys a book's row; siteQuery names its site in an admin call.
  const bookKey = (a) => (a.site || '') + '/' + a.book_id;
  const siteQuery = (site) => (site ? '?site=' + encodeURIComponent(site) : '');
  const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '');
  const secs = (s) => (!s ? '' : s < 0.01 ? '< 0.01 s' : (s < 10 ? s.toFixed(2) : s.toFixed(0)) + ' s');

  function setConn(live, text) {
    $('conn').className = 'dot ' + (live ? 'live' : token ? 'down' : '');
    $('conn-text').textContent = text;
  }

  function show(signedIn) {
    $('login-panel').hidden = signedIn;
    $('board').hidden = !signedIn;
    $('logout').hidden = !signedIn;
    if (!signedIn) setConn(false, 'signed out');
  }

  function signIn(t) {
    token = t;
    sessionStorage.setItem(TOKEN_KEY, t);
    $('login-error').textContent = '';
    show(true);
    connect();
    loadDead();
  }

  function signOut(message) {
    token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    if (stream) stream.abort();
    show(false);
    $('login-error').textContent = message || '';
    $('token').value = '';
  }

  // api calls the admin API with the token and returns the decoded answer.
  async function api(method, path) {
    const res = await fetch('/xsw/api/admin' + path, {
      method, cache: 'no-store', headers: { Authorization: 'Bearer ' + token },
    });
    if (res.status === 401) { signOut('The gateway refused that token.'); throw new Error('unauthorized'); }
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.detail || 'HTTP ' + res.status);
    return body;
  }

  // connect keeps an event stream open while signed in: the server ends each stream
  // after a while and the page reconnects, backing off while the gateway is away.
  async function connect() {
    let delay = 250;
    while (token) {
      const ctl = new AbortController();
      stream = ctl;
      try {
        const res = await fetch('/xsw/admin/events', {
          cache: 'no-store', signal: ctl.signal,
          headers: { Authorization: 'Bearer ' + token, Accept: 'text/event-stream' },
        });
        if (res.status === 401) { signOut('The gateway refused that token.'); return; }
        if (res.status === 403) { signOut('The dashboard is disabled: the gateway has no XSW_ADMIN_TOKEN.'); return; }
        if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
        setConn(true, 'live');
        delay = 250;
        await readEvents(res.body);
      } catch (err) {
        if (!token || ctl.signal.aborted) return;
        setConn(false, 'reconnecting…');
        delay = Math.min(delay * 2, 8000);
      }
      await sleep(delay);
    }
  }

  // readEvents parses a text/event-stream body and hands each event to handle.
  async function readEvents(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value.replace(/\r\n?/g, '\n');
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let event = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line === '' || line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          let v = colon < 0 ? '' : line.slice(colon + 1);
          if (v.startsWith(' ')) v = v.slice(1);
          if (field === 'event') event = v;
          else if (field === 'data') data.push(v);
        }
        if (data.length) handle(event, JSON.parse(data.join('\n')));
      }
    }
  }

  function handle(event, v) {
    switch (event) {
      case 'recent':
        state.books.clear();
        state.failures = [];
        for (const a of v || []) apply(a);
        break;
      case 'job':
        apply(v);
        if (v.kind === 'failed') loadDead();
        break;
      case 'stats':
        state.snapshot = v;
        if (v.dead_letters !== state.deadTotal) loadDead();
        break;
      default:
        return;
    }
    schedule();
  }

  // apply folds one activity into its book's row.
  function apply(a) {
    let b = state.books.get(bookKey(a));
    if (a.kind === 'queued' && b && !ENDED.has(b.state)) {
      // Already waiting or running: a repeated request changes nothing.
      b.seq = Math.max(b.seq, a.seq);
      return;
    }
    if (!b || a.kind === 'queued' || (ENDED.has(b.state) && a.kind === 'started')) {
      b = { site: a.site || '', book_id: a.book_id, steps: [] };
      state.books.set(bookKey(a), b);
    }
    if (b.steps[b.steps.length - 1] !== a.kind) b.steps.push(a.kind);
    Object.assign(b, {
      state: a.kind, seq: a.seq, lane: a.lane, at: a.at, attempt: a.attempt || b.attempt,
      fetcher: a.fetcher || b.fetcher, took: a.took_seconds || (a.kind === 'started' ? 0 : b.took),
      chapters: a.chapters || b.chapters, unchanged: a.unchanged,
      error: a.error || (a.kind === 'skipped' ? a.reason : ''),
    });
    if (a.kind === 'failed' || a.kind === 'retrying') {
      state.failures.unshift(a);
      state.failures.length = Math.min(state.failures.length, MAX_FAILURES);
    }
  }

  let pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; render(); });
  }

  function render() {
    renderSnapshot();
    renderJobs();
    renderFailures();
  }

  function renderSnapshot() {
    const s = state.snapshot;
    if (!s) return;
    $('error').textContent = s.error ? 'Partly unavailable: ' + s.error : '';
    $('queue-total').textContent = s.queue_size;
    $('lanes').tBodies[0].replaceChildren(...LANES.map((l) =>
      el('tr', { 'data-lane': l }, el('td', {}, l), el('td', {}, (s.queue_by_lane || {})[l] || 0))));
    $('inflight-count').textContent = s.in_flight.length;
    const now = Date.now();
    $('inflight').replaceChildren(...s.in_flight.map((j) => el('li', { 'data-site': j.site || '', 'data-book': j.book_id },
      `${j.site || ''}/${j.book_id} · ${j.lane} · attempt ${j.attempt} · ${Math.max(0, (now - Date.parse(j.started_at)) / 1000).toFixed(0)} s · ${j.fetcher_id}`)));
    $('fetchers-alive').textContent = s.fetchers.length;
    $('fetchers').replaceChildren(...s.fetchers.map((f) => el('li', {},
      `${f.fetcher_id}${(f.sites || []).length ? ' (' + f.sites.join(', ') + ')' : ''} · ${f.active}/${f.workers} busy · ${f.circuit}${f.draining ? ' · draining' : ''}`)));
    const iv = s.rate_interval_seconds;
    $('rate').textContent = iv === null || iv === undefined ? '–' : iv === 0 ? 'off' : iv.toFixed(iv < 1 ? 2 : 1) + ' s';
    $('rate-detail').textContent = iv ? `between source requests (≈ ${(60 / iv).toFixed(iv > 6 ? 1 : 0)} per minute, cluster-wide)` :
      iv === 0 ? 'politeness switched off' : 'no fetcher reports';
    const c = s.circuit || 'unknown';
    $('circuit').textContent = c;
    $('circuit').className = 'badge ' + c;
    $('dead-count').textContent = s.dead_letters;
    renderSites(s);
    renderReads(s.book_reads);
    renderChart(s.throughput);
  }

  // renderReads shows the share of the book reads this gateway answered (a book's page
  // or chapter list) that were served from memory or the database: pre-cached.
  function renderReads(r) {
    if (!r) return;
    const rate = r.hit_rate;
    const pct = rate === null || rate === undefined ? null : 100 * rate;
    $('hit-rate').textContent = pct === null ? '–' : (pct === 0 || pct === 100 ? pct.toFixed(0) : pct.toFixed(1)) + '%';
    $('reads-detail').textContent = `of ${r.total} book reads on this gateway in the last ${Math.round(r.window_seconds / 60)} min`;
    $('reads').tBodies[0].replaceChildren(...SERVED_FROM.map((f) =>
      el('tr', { 'data-from': f }, el('td', {}, f), el('td', {}, (r.by_served_from || {})[f] || 0))));
  }

  // renderSites shows one row per source site. The time to the next probe is counted
  // from the snapshot's own time, so that a skewed browser clock does not change it.
  function renderSites(s) {
    const sites = s.sites || [];
    if (!sites.length) {
      $('sites').tBodies[0].replaceChildren(el('tr', {}, el('td', { class: 'empty', colSpan: 7 }, 'no live fetcher reports a site')));
      return;
    }
    const now = Date.parse(s.at) || Date.now();
    const interval = (v) => (v === 0 ? 'off' : v ? v.toFixed(v < 1 ? 2 : 1) + ' s' : '–');
    $('sites').tBodies[0].replaceChildren(...sites.map((x) => {
      const st = SITE_STATES.has(x.state) ? x.state : 'unknown';
      const until = x.until ? Date.parse(x.until) : NaN;
      const probe = Number.isNaN(until) ? '' : until > now ? `next probe in ${Math.ceil((until - now) / 1000)} s` : 'next probe due';
      const iv = x.interval_seconds === x.rate_interval_seconds ? interval(x.interval_seconds) :
        `${interval(x.interval_seconds)} (configured ${interval(x.rate_interval_seconds)})`;
      return el('tr', { class: st === 'ok' || st === 'throttled' ? '' : 'down', 'data-site': x.id, 'data-state': x.state },
        el('td', { class: 'site' }, x.id),
        el('td', { class: 'name', title: x.base_url || '' }, x.name || ''),
        el('td', { class: 'state' }, el('span', { class: 'badge site-' + st }, x.state || 'unknown')),
        el('td', { class: 'detail' }, x.detail || ''),
        el('td', { class: 'probe' }, probe),
        el('td', { class: 'interval num' }, iv),
        el('td', { class: 'fetchers num' }, x.fetchers));
    }));
  }

  function renderChart(t) {
    if (!t || !t.completed) return;
    const n = t.completed.length;
    // Drawn at the box's own size in pixels, so that the labels are not stretched.
    const W = Math.max(300, $('chart').clientWidth || 600), H = 160, top = 14, bottom = 18, left = 28;
    const peak = Math.max(1, ...t.completed.map((c, i) => c + t.failed[i]));
    const bw = (W - left) / n;
    const y = (v) => (H - bottom) - (v / peak) * (H - top - bottom);
    const NS = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.setAttribute('width', W);
    svg.setAttribute('height', H);
    const add = (tag, attrs, text) => {
      const e = document.createElementNS(NS, tag);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
      if (text !== undefined) e.textContent = text;
      svg.append(e);
      return e;
    };
    add('line', { x1: left, y1: H - bottom, x2: W, y2: H - bottom, class: 'axis' });
    add('line', { x1: left, y1: top, x2: W, y2: top, class: 'axis' });
    add('text', { x: 2, y: top + 4 }, String(peak));
    add('text', { x: 2, y: H - bottom + 4 }, '0');
    let total = 0;
    for (let i = 0; i < n; i++) {
      const ok = t.completed[i], bad = t.failed[i];
      total += ok + bad;
      const x = left + i * bw + 0.5;
      if (ok) add('rect', { x, y: y(ok), width: Math.max(bw - 1, 1), height: (H - bottom) - y(ok), class: 'ok' });
      if (bad) add('rect', { x, y: y(ok + bad), width: Math.max(bw - 1, 1), height: y(ok) - y(ok + bad), class: 'bad' });
    }
    const minutes = Math.round((n * t.bucket_seconds) / 60);
    add('text', { x: left, y: H - 4 }, `${minutes} min ago`);
    add('text', { x: W - 24, y: H - 4 }, 'now');
    $('chart').replaceChildren(svg);
    $('bucket').textContent = t.bucket_seconds;
    $('window').textContent = minutes;
    $('chart-total').textContent = ` · ${total} in the window`;
  }

  function renderJobs() {
    const rows = [...state.books.values()].sort((a, b) => b.seq - a.seq).slice(0, MAX_ROWS);
    $('jobs').tBodies[0].replaceChildren(...rows.map((b) => el('tr', { 'data-site': b.site, 'data-book': b.book_id, 'data-state': b.state },
      el('td', {}, time(b.at)),
      el('td', {}, b.site),
      el('td', {}, b.book_id),
      el('td', {}, b.lane || ''),
      el('td', {}, el('span', { class: 'chip ' + b.state }, b.unchanged && b.state === 'completed' ? 'unchanged' : b.state)),
      el('td', { class: 'steps' }, b.steps.join(' → ')),
      el('td', { class: 'num' }, b.attempt || ''),
      el('td', { class: 'num' }, secs(b.took)),
      el('td', { class: 'num' }, b.chapters || ''),
      el('td', {}, b.fetcher || ''),
      el('td', { class: 'err' }, b.error || ''))));
  }

  function renderFailures() {
    $('failures').tBodies[0].replaceChildren(...state.failures.map((a) => el('tr', { 'data-site': a.site || '', 'data-book': a.book_id, 'data-kind': a.kind },
      el('td', {}, time(a.at)), el('td', {}, a.site || ''), el('td', {}, a.book_id), el('td', {}, a.lane),
      el('td', {}, el('span', { class: 'chip ' + a.kind }, a.kind + (a.permanent ? ' (permanent)' : ''))),
      el('td', { class: 'num' }, a.attempt || ''), el('td', { class: 'err' }, a.error || ''))));
  }

  async function loadDead() {
    if (state.loadingDead || !token) return;
    state.loadingDead = true;
    try {
      const body = await api('GET', '/jobs/dead?limit=50');
      state.dead = body.dead_letters || [];
      state.deadTotal = body.total;
      renderDead();
    } catch (err) {
      $('dead-result').textContent = 'Could not list the dead letters: ' + err.message;
    } finally {
      state.loadingDead = false;
    }
  }

  function renderDead() {
    $('replay-all').disabled = state.dead.length === 0;
    $('dead').tBodies[0].replaceChildren(...state.dead.map((d) => {
      const btn = el('button', { type: 'button', class: 'small replay', onclick: () => replay(d.site, d.book_id, btn) }, 'Replay');
      return el('tr', { 'data-site': d.site || '', 'data-dead': d.book_id },
        el('td', {}, d.site || ''), el('td', {}, d.book_id), el('td', {}, d.lane || ''), el('td', { class: 'num' }, d.attempts ?? ''),
        el('td', {}, time(d.died_at)), el('td', { class: 'err' }, d.error), el('td', {}, btn));
    }));
  }

  async function replay(site, id, btn) {
    btn.disabled = true;
    try {
      const r = await api('POST', `/jobs/dead/${encodeURIComponent(id)}/replay${siteQuery(site)}`);
      $('dead-result').textContent = `Book ${r.site}/${r.book_id}: ${r.status} in the ${r.lane} lane.`;
    } catch (err) {
      $('dead-result').textContent = `Replay of book ${site}/${id} failed: ${err.message}`;
    }
    state.loadingDead = false;
    loadDead();
  }

  async function replayAll() {
    $('replay-all').disabled = true;
    try {
      const r = await api('POST', '/jobs/dead/replay_all');
      $('dead-result').textContent = `Replayed ${r.replayed} dead letters` + (r.error ? ` (${r.error})` : '.');
    } catch (err) {
      $('dead-result').textContent = 'Replay failed: ' + err.message;
    }
    loadDead();
  }

  async function sync(ev) {
    ev.preventDefault();
    const site = $('sync-site').value.trim();
    const id = $('sync-book').value.trim();
    if (site && !/^[a-z][a-z0-9]{0,15}$/.test(site)) { $('sync-result').textContent = 'A site id is a lowercase letter, then letters and digits.'; return; }
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) { $('sync-result').textContent = 'A book id is 1 to 64 letters, digits, - or _.'; return; }
    const prio = parseInt($('sync-priority').value, 10);
    const path = $('sync-force').checked ? `/jobs/force-resync/${id}` : `/jobs/sync/${id}`;
    const query = new URLSearchParams();
    if (site) query.set('site', site);
    if (!Number.isNaN(prio)) query.set('priority', String(prio));
    try {
      const r = await api('POST', path + (query.toString() ? '?' + query : ''));
      $('sync-result').textContent = `Book ${r.site}/${r.book_id}: ${r.status} in the ${r.lane} lane (priority ${r.priority}).`;
    } catch (err) {
      $('sync-result').textContent = `Sync of book ${id} failed: ${err.message}`;
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('login').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = $('token').value.trim();
      if (t) signIn(t);
    });
    $('logout').addEventListener('click', () => signOut(''));
    $('replay-all').addEventListener('click', replayAll);
    $('sync').addEventListener('submit', sync);
    if (token) signIn(token); else show(false);
  });
})();
