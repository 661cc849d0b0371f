// Operator's status page. It reads /api/v1/status once, then follows
// /api/v1/events (server-sent events); while the stream is down it says so
// and polls /api/v1/updates from the same cursor. Every value from the bus
// reaches the page as text (textContent, attributes), never as markup.
'use strict';

(() => {
  const LETTERS = ['v', 'a', 'd', 'o', 's', 'c'];
  const POLL_MS = 2000;
  const SILENCE_MS = 15000; // no event nor heartbeat for this long: the stream is down

  const state = {
    pos: null, // stream letter → last sequence applied
    alerts: new Map(),
    control: { kill_switches: [], approvals: [], budgets: [] },
    instances: new Map(),
    episodes: new Map(),
    tokenRequired: false,
    maxEpisodes: 50,
    generatedAt: null,
  };
  const openEpisodes = new Set();
  const closedEpisodes = new Set();
  let es = null;
  let pollTimer = null;
  let lastHeard = 0;
  let renderQueued = false;
  let loading = false;
  // dirty holds the sections to render again; typed text survives it.
  const dirty = new Set();
  const typed = { killSwitch: '', reject: new Map() };

  // ---- DOM helpers: text only ----
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === 'class') e.className = v;
        else if (k === 'text') e.textContent = v;
        else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  const $ = (id) => document.getElementById(id);
  function replace(id, ...children) {
    const e = $(id);
    e.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined));
  }
  const badge = (text, cls) => el('span', { class: 'badge ' + (cls || text) }, text);

  // ---- time and numbers ----
  function clock(t) {
    if (!t) return '';
    const d = new Date(t);
    const p = (n, w) => String(n).padStart(w || 2, '0');
    return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  }
  function span(ms) {
    const neg = ms < 0;
    ms = Math.abs(ms);
    let s;
    if (ms < 10000) s = (ms / 1000).toFixed(1) + 's';
    else if (ms < 60000) s = Math.floor(ms / 1000) + 's';
    else if (ms < 3600000) s = Math.floor(ms / 60000) + 'm ' + Math.floor((ms % 60000) / 1000) + 's';
    else s = Math.floor(ms / 3600000) + 'h ' + Math.floor((ms % 3600000) / 60000) + 'm';
    return neg ? '-' + s : s;
  }
  // ago and until render now and again every second (see tick).
  const ago = (t) => el('span', { 'data-ago': t, title: t }, relAgo(t));
  const until = (t, prefix) => el('span', { 'data-until': t, 'data-prefix': prefix, title: t }, relUntil(t, prefix));
  function relAgo(t) { return span(Date.now() - Date.parse(t)) + ' ago'; }
  function relUntil(t, prefix) {
    const ms = Date.parse(t) - Date.now();
    return ms > 0 ? `${prefix} in ${span(ms)}` : `${prefix} now (due ${span(-ms)} ago)`;
  }
  function fmt(v, unit) {
    if (v === null || v === undefined) return '–';
    if (typeof v === 'number') {
      let s = Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
      return unit ? s + (unit.startsWith('/') ? '' : ' ') + unit : s;
    }
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }
  function params(p) {
    if (!p) return '';
    const keys = Object.keys(p).sort();
    if (!keys.length) return '';
    return '{' + keys.map((k) => k + '=' + (typeof p[k] === 'string' ? p[k] : JSON.stringify(p[k]))).join(' ') + '}';
  }

  // ---- cursor ----
  function parseCursor(s) {
    const pos = {};
    for (const part of s.split('.')) pos[part[0]] = Number(part.slice(1));
    return pos;
  }
  const cursor = () => LETTERS.map((l) => l + state.pos[l]).join('.');

  // ---- state ----
  function load() {
    if (loading) return;
    loading = true;
    return fetch('/api/v1/status', { headers: { Accept: 'application/json' } })
      .then((r) => (r.ok ? r.json() : r.json().then((p) => Promise.reject(new Error(p.detail || r.statusText)))))
      .then((st) => {
        state.pos = parseCursor(st.cursor);
        state.alerts = new Map(st.alerts.map((a) => [a.fingerprint, a]));
        state.control = st.control;
        state.instances = new Map(st.instances.map((i) => [i.subject + '/' + i.instance, i]));
        state.episodes = new Map(st.episodes.map((e) => [e.id, e]));
        state.tokenRequired = st.token_required;
        state.maxEpisodes = st.max_episodes || state.maxEpisodes;
        state.generatedAt = st.generated_at;
        $('token-box').hidden = !st.token_required;
        render(true);
        connect();
      })
      .catch((err) => {
        setConn('reconnecting', 'cannot load the status: ' + err.message + '; retrying');
        setTimeout(load, POLL_MS);
      })
      .finally(() => { loading = false; });
  }

  // apply folds one update in, once: an update whose sequence the page
  // already has from its stream (the event stream and a poll may overlap)
  // is dropped.
  function apply(u) {
    if (!state.pos || u.sequence <= state.pos[u.stream]) return;
    state.pos[u.stream] = u.sequence;
    const d = u.data;
    dirty.add(u.event);
    switch (u.event) {
      case 'alert':
        if (d.state === 'pending' || d.state === 'firing') state.alerts.set(d.fingerprint, d);
        else state.alerts.delete(d.fingerprint);
        break;
      case 'episode':
        mergeEpisode(d);
        break;
      case 'control':
        state.control = d;
        break;
      case 'instance':
        state.instances.set(d.subject + '/' + d.instance, d);
        break;
    }
    queueRender();
  }

  function mergeEpisode(u) {
    let e = state.episodes.get(u.id);
    if (!e) {
      e = { id: u.id, steps: [], last_at: u.last_at };
      state.episodes.set(u.id, e);
      dirty.add('alert'); // its alert may now link to it
    }
    for (const k of ['subject', 'instance', 'rule', 'key', 'fingerprint', 'severity', 'summary', 'active_at', 'fired_at', 'resolved_at', 'diagnosis']) {
      if (u[k]) e[k] = u[k];
    }
    if (u.state && (u.state === 'resolved' || !e.state)) e.state = u.state;
    for (const s of u.steps) {
      if (!e.steps.some((x) => x.id === s.id)) e.steps.push(s);
      if (!e.last_at || Date.parse(s.at) > Date.parse(e.last_at)) e.last_at = s.at;
    }
    e.steps.sort((a, b) => Date.parse(a.at) - Date.parse(b.at) || a.rank - b.rank || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  // ---- live stream, and polling while it is down ----
  function setConn(cls, text) {
    const c = $('conn');
    c.className = 'conn ' + cls;
    c.textContent = text;
  }

  function connect() {
    if (es) es.close();
    es = new EventSource('/api/v1/events?cursor=' + encodeURIComponent(cursor()));
    lastHeard = Date.now();
    es.onopen = () => {
      lastHeard = Date.now();
      setConn('live', 'live');
      stopPolling();
    };
    for (const kind of ['alert', 'episode', 'control', 'instance']) {
      es.addEventListener(kind, (ev) => {
        lastHeard = Date.now();
        apply(JSON.parse(ev.data));
      });
    }
    es.addEventListener('heartbeat', () => { lastHeard = Date.now(); });
    es.addEventListener('reset', () => {
      es.close();
      es = null;
      load();
    });
    es.onerror = () => {
      setConn('reconnecting', 'reconnecting… (polling every ' + POLL_MS / 1000 + ' s)');
      startPolling();
      if (es && es.readyState === EventSource.CLOSED) {
        es = null;
        setTimeout(() => { if (!es) connect(); }, 3000);
      }
      // Otherwise the browser reconnects by itself, with Last-Event-ID.
    };
  }

  function startPolling() {
    if (pollTimer) return;
    pollTimer = setInterval(poll, POLL_MS);
    poll();
  }
  function stopPolling() {
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = null;
  }
  function poll() {
    if (!state.pos) return;
    fetch('/api/v1/updates?cursor=' + encodeURIComponent(cursor()))
      .then((r) => {
        if (r.status === 410) {
          stopPolling();
          load();
          return null;
        }
        return r.ok ? r.json() : null;
      })
      .then((res) => {
        if (!res) return;
        for (const u of res.updates) apply(u);
        // The poll read every stream through its cursor, including
        // messages that changed nothing here.
        const reached = parseCursor(res.cursor);
        for (const l of LETTERS) state.pos[l] = Math.max(state.pos[l], reached[l]);
        if (res.more) setTimeout(poll, 0);
      })
      .catch(() => {});
  }

  // ---- controls ----
  function token() { return sessionStorage.getItem('operator-token') || ''; }
  function control(path, body) {
    const headers = { 'Content-Type': 'application/json', 'X-Operator-Control': '1' };
    if (token()) headers.Authorization = 'Bearer ' + token();
    return fetch(path, { method: 'POST', headers, body: JSON.stringify(body || {}) }).then((r) =>
      r.json().then((b) => {
        if (r.status === 401) {
          $('token-box').hidden = false;
          $('token').focus();
        }
        if (!r.ok) throw new Error(b.detail || r.statusText);
        return b;
      }));
  }
  function toast(text, bad) {
    const t = $('toast');
    t.textContent = text;
    t.className = bad ? 'bad' : '';
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, 5000);
  }

  // ---- rendering ----
  function queueRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      render();
    });
  }

  function render(all) {
    if (all || dirty.has('control')) {
      renderControl();
      renderApprovals();
    }
    if (all || dirty.has('alert')) renderAlerts();
    if (all || dirty.has('instance')) renderInstances();
    if (all || dirty.has('episode')) renderEpisodes();
    dirty.clear();
    tick();
  }

  function renderControl() {
    const engaged = state.control.kill_switches.filter((k) => k.engaged);
    const reason = el('input', { type: 'text', id: 'ks-reason', placeholder: 'reason (optional)', size: 28, value: typed.killSwitch,
      oninput: (ev) => { typed.killSwitch = ev.target.value; } });
    let box;
    if (engaged.length) {
      box = el('div', { class: 'ks engaged', id: 'ks-state', 'data-engaged': 'true' },
        engaged.map((k) => el('div', null, 'KILL SWITCH ENGAGED for ', k.subject || 'all subjects', ' by ', k.by, ' ', ago(k.at),
          k.reason ? ': ' + k.reason : '')),
        el('button', { class: 'primary', id: 'ks-resume', onclick: () => setKillSwitch(false, engaged[0].subject) }, 'Resume actions'));
    } else {
      box = el('div', { class: 'ks released', id: 'ks-state', 'data-engaged': 'false' },
        el('span', null, 'Kill switch released: actuators act on requests that pass their gates.'),
        reason,
        el('button', { class: 'danger', id: 'ks-stop', onclick: () => setKillSwitch(true, '', reason.value) }, 'Stop all actions'));
    }
    replace('killswitch', box);
    replace('budgets', state.control.budgets.map((b) =>
      el('div', null, `${b.subject}: ${b.used} of ${b.max_actions} actions used in ${span(b.per_ms)}`,
        b.cooling && b.cooling.length ? '; cooling down: ' + b.cooling.map((c) => `${c.action} ${c.target} on ${c.instance}`).join(', ') : '')));
  }

  function setKillSwitch(engaged, subject, reason) {
    control('/api/v1/killswitch', { engaged, subject: subject || '', reason: reason || '' })
      .then(() => {
        typed.killSwitch = '';
        toast(engaged ? 'kill switch engaged: actions stop' : 'kill switch released');
      })
      .catch((err) => toast(err.message, true));
  }

  function renderAlerts() {
    const list = [...state.alerts.values()].sort((a, b) =>
      (a.state === 'firing' ? 0 : 1) - (b.state === 'firing' ? 0 : 1) || sev(a.severity) - sev(b.severity) || (a.fingerprint < b.fingerprint ? -1 : 1));
    $('alerts-count').textContent = list.length ? `(${list.filter((a) => a.state === 'firing').length} firing, ${list.filter((a) => a.state === 'pending').length} pending)` : '';
    if (!list.length) {
      replace('alerts', el('p', { class: 'empty' }, 'Nothing pending or firing.'));
      return;
    }
    const rows = list.map((a) => {
      let grace = '';
      if (a.state === 'pending' && a.fires_at) grace = until(a.fires_at, 'fires');
      else if (a.state === 'pending') grace = 'pending (grace unknown)';
      else if (a.resolves_at) grace = until(a.resolves_at, 'resolves');
      const since = a.state === 'firing' ? a.fired_at : a.active_at;
      return el('tr', { class: 'alert row-' + (a.state === 'firing' ? (a.severity === 'critical' ? 'bad' : 'warn') : 'warn'), 'data-fingerprint': a.fingerprint },
        el('td', null, badge(a.state)),
        el('td', null, a.severity ? badge(a.severity) : ''),
        el('td', null, a.subject + '/' + a.instance),
        el('td', { class: 'mono' }, a.rule),
        el('td', { class: 'mono' }, a.key),
        el('td', { class: 'summary' }, a.summary || (a.state === 'pending' ? 'condition true, within its grace period' : '')),
        el('td', null, since ? [clock(since), ' (', ago(since), ')'] : ''),
        el('td', null, grace),
        el('td', { class: 'mono' }, !a.episode ? '' : state.episodes.has(a.episode)
          ? el('a', { href: '#ep-' + a.episode, onclick: () => openEpisodes.add(a.episode) }, a.episode.slice(0, 12))
          : a.episode.slice(0, 12)));
    });
    replace('alerts', el('div', { class: 'table-wrap' }, el('table', null,
      el('thead', null, el('tr', null, ['state', 'severity', 'instance', 'rule', 'key', 'summary', 'since', 'grace', 'episode'].map((h) => el('th', null, h)))),
      el('tbody', null, rows))));
  }
  const sev = (s) => ({ critical: 0, warning: 1, info: 2 }[s] ?? 3);

  function renderApprovals() {
    const list = state.control.approvals;
    $('approvals-count').textContent = list.length ? `(${list.length})` : '';
    if (!list.length) {
      replace('approvals', el('p', { class: 'empty' }, 'No action awaits a decision.'));
      return;
    }
    replace('approvals', list.map((a) => {
      const reason = el('input', { type: 'text', placeholder: 'reason (required to reject)', size: 30, value: typed.reject.get(a.request_id) || '',
        oninput: (ev) => typed.reject.set(a.request_id, ev.target.value) });
      const decide = (approve) => {
        if (!approve && !reason.value.trim()) {
          toast('a rejection needs a reason', true);
          reason.focus();
          return;
        }
        control(`/api/v1/approvals/${encodeURIComponent(a.request_id)}/${approve ? 'approve' : 'reject'}`, { reason: reason.value })
          .then(() => toast(`${approve ? 'approved' : 'rejected'} ${a.action} (${a.request_id.slice(0, 12)})`))
          .catch((err) => toast(err.message, true));
      };
      return el('div', { class: 'approval', 'data-request': a.request_id },
        badge(a.risk + ' risk', a.risk === 'high' ? 'bad' : 'warn'),
        el('span', { class: 'mono' }, a.action + params(a.params)),
        el('span', null, 'on ', a.subject + '/' + a.instance),
        el('span', { class: 'muted' }, 'by ', a.requested_by, a.reason ? ': ' + a.reason : ''),
        el('span', { class: 'muted' }, until(a.expires_at, 'expires')),
        reason,
        el('button', { class: 'primary approve', onclick: () => decide(true) }, 'Approve'),
        el('button', { class: 'reject', onclick: () => decide(false) }, 'Reject'));
    }));
  }

  function renderInstances() {
    const list = [...state.instances.values()].sort((a, b) => (a.subject + a.instance < b.subject + b.instance ? -1 : 1));
    if (!list.length) {
      replace('instances', el('p', { class: 'empty' }, 'No observation yet.'));
      return;
    }
    replace('instances', list.map((i) => el('div', { class: 'instance', 'data-instance': i.subject + '/' + i.instance },
      el('div', { class: 'head' },
        el('span', { class: 'name' }, i.subject + '/' + i.instance),
        el('span', { class: 'health', 'data-observed': i.observed_at, 'data-stale-ms': i.stale_after_ms }, ''),
        el('span', { class: 'muted' }, 'observer: every ', i.interval_ms ? span(i.interval_ms) : '?', ', last poll took ', fmt(i.duration_ms, 'ms'),
          ', stale after ', span(i.stale_after_ms))),
      i.errors.length ? el('div', { class: 'warn' }, 'observer could not read: ', i.errors.map((e) => e.source + ' (' + e.message + ')').join('; ')) : null,
      i.tables.map(table))));
  }

  function table(t) {
    const head = el('h3', null, t.title || t.name, t.total > t.rows.length ? el('span', { class: 'muted' }, ` (top ${t.rows.length} of ${t.total})`) : '');
    if (t.error) return [head, el('p', { class: 'bad' }, 'cannot show this table: ', t.error)];
    if (!t.rows.length) return [head, el('p', { class: 'empty' }, 'no rows')];
    return [head, el('div', { class: 'table-wrap' }, el('table', { class: 'view', 'data-view': t.name },
      el('thead', null, el('tr', null, t.columns.map((c) => el('th', null, c.title)))),
      el('tbody', null, t.rows.map((r) => el('tr', { class: r.status ? 'row-' + r.status : null },
        r.cells.map((v, i) => el('td', { class: typeof v === 'number' ? 'num' : null }, fmt(v, t.columns[i] && t.columns[i].unit)))))))) ];
  }

  function renderEpisodes() {
    const list = [...state.episodes.values()].sort((a, b) => Date.parse(b.last_at) - Date.parse(a.last_at) || (a.id < b.id ? -1 : 1)).slice(0, state.maxEpisodes);
    $('episodes-count').textContent = list.length ? `(${list.length})` : '';
    if (!list.length) {
      replace('episodes', el('p', { class: 'empty' }, 'Nothing has fired in the history the page reads.'));
      return;
    }
    replace('episodes', list.map((e, idx) => {
      // The newest two are open until someone closes them; the rest
      // open on a click.
      const open = openEpisodes.has(e.id) || (!closedEpisodes.has(e.id) && idx < 2);
      const d = el('details', { class: 'episode', id: 'ep-' + e.id, 'data-episode': e.id, 'data-state': e.state || 'manual', open },
        el('summary', null,
          badge(e.state || 'action', e.state || 'info'),
          e.severity ? badge(e.severity) : null,
          el('span', { class: 'mono' }, e.rule ? e.rule + (e.key ? '[' + e.key + ']' : '') : 'action requested by hand'),
          el('span', null, (e.subject || '') + (e.instance ? '/' + e.instance : '')),
          el('span', { class: 'summary' }, e.summary || ''),
          el('span', { class: 'muted' }, e.fired_at ? ['fired ', clock(e.fired_at)] : '', e.resolved_at ? [', resolved ', clock(e.resolved_at),
            e.fired_at ? ' after ' + span(Date.parse(e.resolved_at) - Date.parse(e.fired_at)) : ''] : ''),
          el('a', { class: 'muted', href: '/api/v1/episodes/' + encodeURIComponent(e.id) }, e.id.slice(0, 12))),
        el('div', { class: 'body' },
          el('ol', { class: 'timeline' }, groupGates(e.steps).map(step)),
          e.diagnosis ? diagnosis(e.diagnosis) : null));
      d.addEventListener('toggle', () => {
        if (d.open) { openEpisodes.add(e.id); closedEpisodes.delete(e.id); } else { openEpisodes.delete(e.id); closedEpisodes.add(e.id); }
      });
      return d;
    }));
  }

  // groupGates folds the gate steps of one result into one step, so the
  // timeline shows every gate's decision on one line.
  function groupGates(steps) {
    const out = [];
    for (const s of steps) {
      const prev = out[out.length - 1];
      const event = (x) => x.stream + x.sequence;
      if (s.kind === 'gate' && prev && prev.kind === 'gates' && event(prev) === event(s)) {
        prev.gates.push(s);
        continue;
      }
      out.push(s.kind === 'gate' ? { kind: 'gates', id: s.id, at: s.at, stream: s.stream, sequence: s.sequence, gates: [s] } : s);
    }
    return out;
  }

  function step(s) {
    if (s.kind === 'gates') {
      const stop = s.gates.find((g) => g.decision !== 'passed');
      return el('li', { class: stop ? (stop.decision === 'held' ? 'warn' : 'bad') : 'ok', 'data-kind': 'gates', 'data-step': s.id },
        el('span', { class: 't' }, clock(s.at)),
        badge('gates', stop ? stop.decision : 'passed'), ' ',
        s.gates.map((g) => el('span', { class: 'gate ' + g.decision, 'data-gate': g.gate, title: g.detail || '' },
          g.gate, ' ', el('span', { class: 'badge ' + g.decision }, g.decision), ' ')),
        stop && stop.detail ? el('span', { class: 'detail' }, stop.detail) : null);
    }
    return el('li', { class: s.status, 'data-kind': s.kind, 'data-step': s.id },
      el('span', { class: 't' }, clock(s.at)),
      badge(s.kind === 'gate' ? s.decision : s.kind.replace('_', ' '), s.kind === 'gate' ? s.decision : s.status),
      ' ',
      el('span', { class: 'title' }, s.title),
      s.detail ? el('span', { class: 'detail' }, s.detail) : null);
  }

  function diagnosis(d) {
    return el('div', { class: 'diagnosis' },
      el('strong', null, 'Diagnosis'), ' ', el('span', { class: 'muted' }, d.mode, d.model ? ' (' + d.model + ')' : '', ' at ', clock(d.created_at)),
      d.error ? el('div', { class: 'warn' }, d.error) : null,
      el('ol', null, d.hypotheses.map((h) => el('li', { 'data-hypothesis': h.id },
        badge(h.certainty || 'unknown', h.certainty === 'certain' ? 'bad' : h.certainty === 'likely' ? 'warn' : 'info'), ' ',
        el('span', null, h.cause || h.id),
        h.suggested_action ? el('span', { class: 'muted' }, ' → suggests ', el('code', null, h.suggested_action.action + params(h.suggested_action.params))) : null,
        el('div', { class: 'muted evidence' }, 'supported by ', h.supports.length ? h.supports.join(', ') : 'none',
          h.contradicts.length ? '; contradicted by ' + h.contradicts.join(', ') : '')))),
      el('div', { class: 'evidence muted' }, 'evidence: ', d.evidence.map((x, i) => [i ? '; ' : '', el('code', null, x.id), ' ', x.source, x.error ? ' (failed: ' + x.error + ')' : ''])));
  }

  // tick refreshes what depends on the clock: relative times, countdowns,
  // staleness.
  function tick() {
    for (const e of document.querySelectorAll('[data-ago]')) e.textContent = relAgo(e.dataset.ago);
    for (const e of document.querySelectorAll('[data-until]')) e.textContent = relUntil(e.dataset.until, e.dataset.prefix);
    for (const e of document.querySelectorAll('[data-observed]')) {
      const age = Date.now() - Date.parse(e.dataset.observed);
      const stale = age > Number(e.dataset.staleMs);
      e.replaceChildren(badge(stale ? 'stale' : 'fresh', stale ? 'bad' : 'ok'), ' last seen ' + span(age) + ' ago');
    }
    if (state.generatedAt) $('generated').textContent = 'since ' + clock(state.generatedAt);
  }

  function watchdog() {
    if (es && Date.now() - lastHeard > SILENCE_MS) {
      es.close();
      es = null;
      setConn('reconnecting', 'reconnecting… (polling every ' + POLL_MS / 1000 + ' s)');
      startPolling();
      setTimeout(() => { if (!es) connect(); }, 1000);
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('token').value = token();
    $('token').addEventListener('change', (ev) => sessionStorage.setItem('operator-token', ev.target.value));
    setInterval(tick, 1000);
    setInterval(watchdog, 2000);
    load();
  });
})();
