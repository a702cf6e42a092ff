// The console's pages: one page, routed by its hash (#/ the fleet matrix, #/history/ENV,
// #/history/ENV/COMMIT with that commit's row marked and focused, #/service/ENV/SERVICE),
// reading the JSON API with the session cookie. Plain script, no build step: the server's
// Content-Security-Policy allows no inline script or style, so every element is made here with
// the DOM (names and log lines are set as text, never parsed as markup) and every look is a
// class of app.css.
'use strict';

(function () {
  // ---- Small helpers ------------------------------------------------------------------------

  const $ = (sel, root) => (root || document).querySelector(sel);

  // el('td', {class: 'x', data: {env: 'a'}, attrs}, child, 'text', …)
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === 'class') node.className = v;
        else if (k === 'text') node.textContent = v;
        else if (k === 'data') for (const [dk, dv] of Object.entries(v)) node.dataset[dk] = dv;
        else node.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      node.append(c instanceof Node ? c : String(c));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  const enc = encodeURIComponent;
  const short = (commit) => (commit && /^[0-9a-f]{13,}$/.test(commit) ? commit.slice(0, 12) : commit || '');

  function when(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (isNaN(d.getTime())) return iso;
    return d.toLocaleString();
  }

  function timeEl(iso) {
    return iso ? el('time', { datetime: iso, title: iso, text: when(iso) }) : '';
  }

  function ageText(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
    return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  }

  // The audit's status words, best to worst (the order of `Status` in the audit); a cell says
  // the worst of its hosts.
  const SEVERITY = ['ok', 'drift', 'missing', 'stopped', 'unhealthy', 'rolled-back', 'orphan', 'conflict', 'unreachable'];
  const SYMBOL = {
    ok: '✓', drift: '≠', missing: '∅', stopped: '■', unhealthy: '✚', 'rolled-back': '↶',
    orphan: '?', conflict: '!', unreachable: '✕', behind: '≠', stale: '⧗', locked: '⚿',
    refused: '⊘', failed: '✕', error: '✕', none: '∅', upgrade: '≠', downgrade: '≠', scale: '≠',
  };
  const rank = (s) => {
    const i = SEVERITY.indexOf(s);
    return i < 0 ? 1 : i; // a status word this page does not know counts as a drift
  };
  const stClass = (s) => 'st st-' + (/^[a-z-]+$/.test(s || '') ? s : 'unknown');
  function statusEl(status, extra) {
    const s = status || 'unknown';
    return el('span', { class: stClass(s) }, (SYMBOL[s] || '•') + ' ' + s + (extra ? ' (' + extra + ')' : ''));
  }

  // What kind of drift a row's detail describes.
  function driftKind(row) {
    if (row.status !== 'drift' || !row.detail) return '';
    if (row.detail.startsWith('runs digest')) return 'digest';
    if (row.detail.startsWith('runs ')) return 'version';
    return 'settings';
  }

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // ---- State ---------------------------------------------------------------------------------

  const state = {
    me: null,
    csrf: null,
    envs: [],
    envByName: new Map(),
    envsAt: 0,
    audit: null,
    auditAt: 0, // performance.now() when it arrived
    auditError: '',
    index: null,
    expanded: new Set(),
    filter: '',
    envFilter: '',
    route: null,
    pollTimer: 0,
    pollGen: 0,
    tick: null,
    onAudit: null,
    ageTimer: 0,
    polling: false,
    firstPaint: false,
    logs: null,
    rendered: '',
    releases: null, // {key, at, doc}: the service page's releases per host
  };

  // ---- The API -------------------------------------------------------------------------------

  async function api(path, opts) {
    opts = opts || {};
    const init = { credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (opts.method) init.method = opts.method;
    if (opts.body !== undefined) {
      init.method = 'POST';
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    }
    if (init.method === 'POST' && state.csrf) init.headers['X-CSRF-Token'] = state.csrf;
    const res = await fetch(path, init);
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      data = { error: text };
    }
    if (!res.ok) {
      if (res.status === 401 && !opts.quiet401) showSignin();
      throw new ApiError(res.status, (data && data.error) || res.status + ' ' + res.statusText);
    }
    return data;
  }

  const allowed = (env) => {
    const e = state.envByName.get(env);
    return !!e && !e.secrets_unchecked && Array.isArray(e.rights) && e.rights.includes('deploy');
  };

  async function loadEnvironments() {
    const envs = await api('/api/v1/environments');
    state.envs = Array.isArray(envs) ? envs : [];
    state.envByName = new Map(state.envs.map((e) => [e.name, e]));
    state.envsAt = performance.now();
    state.rendered = '';
  }

  // ---- Sign-in -------------------------------------------------------------------------------

  function here() {
    return location.pathname + location.search + location.hash;
  }

  function showSignin() {
    stopPolling();
    stopLogs();
    state.me = null;
    state.csrf = null;
    $('#loading').hidden = true;
    $('#session').hidden = true;
    $('#nav').hidden = true;
    $('#view').hidden = true;
    $('#op').hidden = true;
    const dlg = $('#confirm');
    if (dlg.open) dlg.close();
    clear($('#view'));
    $('#signin-oidc').setAttribute('href', '/auth/login?next=' + enc(here()));
    $('#signin-view').hidden = false;
    document.title = 'Sign in · fleetpin';
  }

  async function signedIn(me) {
    state.me = me;
    state.csrf = me.csrf || null;
    $('#who').textContent = me.id;
    $('#signin-view').hidden = true;
    $('#session').hidden = false;
    $('#nav').hidden = false;
    $('#view').hidden = false;
    try {
      await loadEnvironments();
    } catch (e) {
      if (e.status === 401) return;
      state.auditError = 'could not list the environments: ' + e.message;
    }
    $('#loading').hidden = true;
    route(false);
  }

  async function boot() {
    let res;
    try {
      res = await fetch('/api/v1/whoami', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    } catch (e) {
      $('#loading').textContent = 'The console cannot be reached: ' + e.message;
      return;
    }
    if (res.status === 401) return showSignin();
    if (!res.ok) {
      $('#loading').textContent = 'The console answered ' + res.status + '.';
      return;
    }
    await signedIn(await res.json());
  }

  // The skip link moves the focus without touching the hash (which is the route).
  $('a.skip').addEventListener('click', (ev) => {
    ev.preventDefault();
    $('#main').focus();
  });

  $('#break-glass').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const err = $('#break-glass-error');
    err.textContent = '';
    const token = $('#break-glass-token').value.trim();
    if (!token) return;
    const button = $('#break-glass button[type=submit]');
    button.disabled = true;
    try {
      await api('/auth/break-glass', { body: { token }, quiet401: true });
      $('#break-glass-token').value = '';
      location.reload();
    } catch (e) {
      err.textContent = 'Not signed in: ' + e.message;
      button.disabled = false;
    }
  });

  $('#signout').addEventListener('click', async () => {
    try {
      await api('/auth/logout', { body: {}, quiet401: true });
    } catch (_) {
      // Signed out either way: the session is gone or was already.
    }
    showSignin();
  });

  // ---- Routing -------------------------------------------------------------------------------

  function parseRoute() {
    const h = location.hash.replace(/^#/, '') || '/';
    const parts = h.split('/').slice(1).map((p) => {
      try {
        return decodeURIComponent(p);
      } catch (_) {
        return p;
      }
    });
    if (parts.length === 0 || (parts.length === 1 && parts[0] === '')) return { page: 'matrix' };
    if (parts[0] === 'history') return { page: 'history', env: parts[1] || '', commit: parts[2] || '' };
    if (parts[0] === 'service' && parts.length >= 3) return { page: 'service', env: parts[1], service: parts.slice(2).join('/') };
    return { page: 'missing' };
  }

  function route(moveFocus) {
    if (!state.me) return;
    stopLogs();
    stopPolling();
    state.route = parseRoute();
    state.rendered = '';
    const view = $('#view');
    clear(view);
    const r = state.route;
    $('#nav-history').setAttribute('href', '#/history/' + (r.env ? enc(r.env) : ''));
    if (r.page === 'matrix') matrixPage(view);
    else if (r.page === 'history') historyPage(view, r.env, r.commit);
    else if (r.page === 'service') servicePage(view, r.env, r.service);
    else {
      view.append(el('h1', { tabindex: '-1', text: 'Not found' }), el('p', {}, el('a', { href: '#/', text: 'Back to the fleet' })));
      document.title = 'Not found · fleetpin';
    }
    if (moveFocus) {
      const h1 = $('h1', view);
      if (h1) h1.focus();
    }
  }

  window.addEventListener('hashchange', () => route(true));

  // ---- Reading the fleet, every 5 s while it is shown ------------------------------------------

  function stopPolling() {
    state.pollGen++;
    state.onAudit = null;
    state.tick = null;
    clearTimeout(state.pollTimer);
    clearInterval(state.ageTimer);
    state.pollTimer = 0;
    state.ageTimer = 0;
  }

  // Reads the audit now and every 5 s after, skipping the turns while the tab is hidden;
  // `render` draws the page from it.
  function startPolling(render) {
    stopPolling();
    state.onAudit = render;
    const gen = state.pollGen;
    const tick = async () => {
      clearTimeout(state.pollTimer);
      state.pollTimer = 0;
      if (!document.hidden) await refresh();
      if (gen === state.pollGen && state.me) state.pollTimer = setTimeout(tick, 5000);
    };
    state.tick = tick;
    tick();
    state.ageTimer = setInterval(showAge, 1000);
  }

  document.addEventListener('visibilitychange', () => {
    // Back on the tab: read now rather than at the next turn.
    if (!document.hidden && state.tick && state.pollTimer) state.tick();
  });

  async function refresh() {
    if (state.polling) return;
    state.polling = true;
    try {
      if (performance.now() - state.envsAt > 30000) await loadEnvironments();
      const audit = await api('/api/v1/audit');
      state.audit = audit;
      state.auditAt = performance.now();
      state.auditError = '';
      state.index = null;
    } catch (e) {
      if (e.status === 401) return;
      state.auditError = 'The last reading of the fleet failed: ' + e.message;
    } finally {
      state.polling = false;
    }
    if (state.onAudit && state.me) state.onAudit();
    showAge();
  }

  function showAge() {
    const node = $('#data-age');
    if (!node) return;
    const a = state.audit;
    clear(node);
    if (!a) {
      node.append(state.auditError || 'Reading the fleet…');
      return;
    }
    const age = (a.age_seconds || 0) + (performance.now() - state.auditAt) / 1000;
    node.append('Fleet read ' + ageText(age) + ' ago, at ', timeEl(a.read_at));
    if (state.auditError) node.append(' — ', el('span', { class: 'error', text: state.auditError }));
  }

  // The audit, arranged once per reading: rows by (environment, service), agents by host.
  function indexAudit() {
    if (state.index) return state.index;
    const a = state.audit || {};
    const hosts = a.hosts || null;
    const rows = (hosts && hosts.rows) || [];
    const envs = [];
    const seenEnv = new Set();
    const addEnv = (e) => {
      if (!seenEnv.has(e)) {
        seenEnv.add(e);
        envs.push(e);
      }
    };
    state.envs.forEach((e) => addEnv(e.name));
    ((hosts && hosts.environments) || []).forEach(addEnv);
    (a.swarms || []).forEach((s) => addEnv(s.environment));
    const services = [];
    const seenSvc = new Set();
    const addSvc = (s) => {
      if (!seenSvc.has(s)) {
        seenSvc.add(s);
        services.push(s);
      }
    };
    ((hosts && hosts.services) || []).forEach(addSvc);
    const cells = new Map();
    for (const r of rows) {
      addSvc(r.service);
      const k = r.environment + '\u0000' + r.service;
      let list = cells.get(k);
      if (!list) cells.set(k, (list = []));
      list.push(r);
    }
    const swarm = new Map();
    const swarmError = new Map();
    for (const s of a.swarms || []) {
      if (s.error) swarmError.set(s.environment, s.error);
      for (const row of s.services || []) {
        addSvc(row.service);
        swarm.set(s.environment + '\u0000' + row.service, row);
      }
    }
    state.envs.forEach((e) => Object.keys(e.pins || {}).forEach(addSvc));
    const agents = new Map();
    const agentsByEnv = new Map();
    for (const g of (hosts && hosts.agents) || []) {
      agents.set(g.environment + '\u0000' + g.host, g);
      if (!agentsByEnv.has(g.environment)) agentsByEnv.set(g.environment, []);
      agentsByEnv.get(g.environment).push(g);
    }
    state.index = {
      envs, services, cells, swarm, swarmError, agents, agentsByEnv,
      pins: (hosts && hosts.pins) || {},
      held: (hosts && hosts.held) || {},
      commit: hosts && hosts.commit,
    };
    return state.index;
  }

  function pinOf(env, service) {
    const ix = indexAudit();
    const p = ix.pins[env] && ix.pins[env][service];
    if (p) return p;
    const e = state.envByName.get(env);
    return (e && e.pins && e.pins[service]) || '';
  }

  // The summary of a cell: worst status, versions running, counts.
  function summarise(rows) {
    let worst = null;
    const versions = [];
    const seen = new Set();
    let ok = 0;
    const kinds = new Set();
    for (const r of rows) {
      if (worst === null || rank(r.status) > rank(worst)) worst = r.status;
      if (r.status === 'ok') ok++;
      const k = driftKind(r);
      if (k) kinds.add(k);
      if (r.running && !seen.has(r.running)) {
        seen.add(r.running);
        versions.push(r.running);
      }
    }
    return { status: worst || '', versions, ok, total: rows.length, kinds: [...kinds] };
  }

  // ---- The fleet matrix ------------------------------------------------------------------------

  function matrixPage(view) {
    document.title = 'Fleet · fleetpin';
    const filter = el('input', { id: 'filter', type: 'search', placeholder: 'service or host', autocomplete: 'off', spellcheck: 'false' });
    filter.value = state.filter;
    const envSelect = el('select', { id: 'env-filter' }, el('option', { value: '', text: 'All environments' }));
    for (const e of state.envs) envSelect.append(el('option', { value: e.name, text: e.name }));
    envSelect.value = state.envFilter;
    if (envSelect.value !== state.envFilter) state.envFilter = '';
    view.append(
      el('h1', { tabindex: '-1', text: 'Fleet' }),
      el('div', { class: 'toolbar' },
        el('div', { class: 'field' }, el('label', { for: 'filter', text: 'Filter' }), filter),
        el('div', { class: 'field' }, el('label', { for: 'env-filter', text: 'Environment' }), envSelect),
        el('p', { id: 'data-age', class: 'age' })),
      el('p', { id: 'matrix-note', class: 'note', role: 'status' }),
      el('div', { class: 'scroller', id: 'matrix-box' }),
      el('p', { class: 'note' },
        'Each cell: the version running and the worst status over its hosts (',
        SEVERITY.map((s) => (SYMBOL[s] || '') + ' ' + s).join(', '),
        '). “Hosts” shows each host; the version opens the service and its logs.'));
    let pending = 0;
    filter.addEventListener('input', () => {
      clearTimeout(pending);
      pending = setTimeout(() => {
        state.filter = filter.value.trim().toLowerCase();
        renderMatrix(true);
      }, 150);
    });
    envSelect.addEventListener('change', () => {
      state.envFilter = envSelect.value;
      renderMatrix(true);
    });
    // One listener for the whole table: expanding a cell, the actions.
    $('#matrix-box').addEventListener('click', (ev) => {
      const t = ev.target instanceof Element ? ev.target : null;
      if (!t) return;
      const action = t.closest('button[data-action]');
      if (action) return startAction(action);
      const expand = t.closest('button[data-expand]');
      if (expand) {
        const [env, svc] = JSON.parse(expand.dataset.expand);
        const k = env + '\u0000' + svc;
        if (state.expanded.has(k)) state.expanded.delete(k);
        else state.expanded.add(k);
        renderMatrix(true);
      }
    });
    if (state.audit) renderMatrix(true);
    startPolling(() => renderMatrix(false));
  }

  function renderMatrix(force) {
    const box = $('#matrix-box');
    if (!box) return;
    const key = (state.audit && state.audit.read_at) + '|' + state.envsAt;
    if (!force && key === state.rendered && $('#matrix', box)) return;
    state.rendered = key;
    const started = performance.now();
    const note = $('#matrix-note');
    if (note) note.textContent = state.audit ? '' : state.auditError || 'Reading the fleet…';
    const ix = indexAudit();
    const t = state.filter;
    const envs = ix.envs.filter((e) => !state.envFilter || e === state.envFilter);
    // Which services and environments the filter keeps, and each cell's rows.
    const shown = new Map();
    const svcShown = new Set();
    const envShown = new Set();
    for (const env of envs) {
      for (const svc of ix.services) {
        const k = env + '\u0000' + svc;
        let rows = ix.cells.get(k);
        const sw = ix.swarm.get(k);
        if (!rows && !sw) continue;
        if (t && rows && !svc.toLowerCase().includes(t)) rows = rows.filter((r) => r.host.toLowerCase().includes(t));
        if (t && sw && !svc.toLowerCase().includes(t) && !rows) continue;
        if (rows && rows.length === 0) continue;
        shown.set(k, { rows: rows || [], swarm: sw });
        svcShown.add(svc);
        envShown.add(env);
      }
    }
    const services = t ? ix.services.filter((s) => svcShown.has(s)) : ix.services.filter((s) => svcShown.has(s) || !state.audit);
    const envRows = t ? envs.filter((e) => envShown.has(e)) : envs;

    const table = el('table', { id: 'matrix', class: 'grid' });
    table.append(el('caption', { class: 'note', text: 'Environments (rows) by services (columns)' }));
    const headRow = el('tr', {}, el('th', { scope: 'col', class: 'corner env', text: 'Environment' }));
    for (const s of services) headRow.append(el('th', { scope: 'col', text: s }));
    table.append(el('thead', {}, headRow));
    const body = document.createDocumentFragment();
    const order = state.envs.map((e) => e.name);
    for (const env of envRows) {
      const tr = el('tr', { data: { env } });
      tr.append(envHeader(env, order, ix));
      const details = [];
      const err = ix.swarmError.get(env);
      if (err && services.length) {
        tr.append(el('td', { colspan: String(services.length), class: 'empty' }, statusEl('unreachable'), ' ', err));
      } else {
        for (const svc of services) {
          const k = env + '\u0000' + svc;
          const c = shown.get(k);
          if (!c) {
            tr.append(el('td', { class: 'empty' }, el('span', { 'aria-label': 'not in ' + env, text: '—' })));
            continue;
          }
          tr.append(c.swarm ? swarmCell(env, svc, c.swarm) : cell(env, svc, c.rows));
          if (state.expanded.has(k)) details.push([svc, c]);
        }
      }
      body.append(tr);
      for (const [svc, c] of details) body.append(detailRow(env, svc, c, services.length + 1, ix));
    }
    const tbody = el('tbody');
    tbody.append(body);
    table.append(tbody);

    // Put it in place in one step, keeping the focus where it was.
    const active = document.activeElement;
    const fkey = active && box.contains(active) && active.dataset ? active.dataset.fkey : null;
    const old = $('#matrix', box);
    if (old) box.replaceChild(table, old);
    else box.append(table);
    if (fkey) {
      const again = box.querySelector('[data-fkey="' + CSS.escape(fkey) + '"]');
      if (again) again.focus({ preventScroll: true });
    }
    // For measurements: how long building the table took (performance.getEntriesByName).
    performance.measure('fleetpin:matrix', { start: started, end: performance.now() });
    if (!state.firstPaint) {
      state.firstPaint = true;
      requestAnimationFrame(() => requestAnimationFrame(() => {
        document.body.dataset.ready = 'true';
      }));
    }
  }

  function actionButton(label, data, title) {
    const fkey = Object.values(data).join('|');
    return el('button', { type: 'button', class: 'small', title, data: Object.assign({ fkey }, data) }, label);
  }

  function envHeader(env, order, ix) {
    const doc = state.envByName.get(env);
    const th = el('th', { scope: 'row', class: 'env' }, el('span', { class: 'env-name', text: env }));
    const meta = [];
    if (doc) meta.push(doc.kind === 'swarm' ? 'swarm' : doc.hosts.length + (doc.hosts.length === 1 ? ' host' : ' hosts'));
    const agents = ix.agentsByEnv.get(env);
    if (agents && agents.length) {
      const counts = {};
      agents.forEach((g) => (counts[g.state] = (counts[g.state] || 0) + 1));
      meta.push('agents: ' + Object.entries(counts).map(([s, n]) => n + ' ' + s).join(', '));
    }
    th.append(el('span', { class: 'env-meta', text: meta.join(' · ') }));
    th.append(el('a', { class: 'env-meta', href: '#/history/' + enc(env), text: 'history' }));
    if (ix.held[env]) th.append(el('span', { class: 'warning-note env-meta', text: '⏸ held: ' + ix.held[env] }));
    if (doc && doc.secrets_unchecked) {
      th.append(el('span', { class: 'warning-note env-meta', title: doc.secrets_unchecked, text: '⚠ secrets not checked here: no actions' }));
    }
    if (allowed(env)) {
      const actions = el('span', { class: 'env-actions' });
      actions.append(actionButton('Apply', { action: 'apply', env }, 'Plan and apply ' + env));
      const i = order.indexOf(env);
      if (i > 0) {
        const from = order[i - 1];
        actions.append(actionButton('Promote from ' + from, { action: 'promote', from, to: env }, 'Promote ' + from + ' → ' + env));
      }
      actions.append(actionButton('Unlock', { action: 'unlock', env }, 'Remove the deploy lock of ' + env));
      th.append(actions);
    }
    return th;
  }

  function cell(env, svc, rows) {
    const s = summarise(rows);
    const version = s.versions.join(',');
    const td = el('td', { class: 'cell', data: { env, service: svc, status: s.status, version } });
    td.append(el('a', { class: version ? 'ver' : 'ver none', href: '#/service/' + enc(env) + '/' + enc(svc), title: 'Open ' + svc + ' in ' + env, data: { fkey: 'open|' + env + '|' + svc } }, version || 'no version seen'));
    td.append(el('span', { class: 'line' }, statusEl(s.status, s.kinds.join(', '))));
    const pin = pinOf(env, svc);
    if (pin && version !== pin) td.append(el('span', { class: 'line note', text: 'pinned ' + pin }));
    if (s.total === 1) td.append(el('span', { class: 'line note', text: rows[0].host }));
    else td.append(el('span', { class: 'line note', text: s.ok + '/' + s.total + ' hosts ok' }));
    const k = env + '\u0000' + svc;
    const open = state.expanded.has(k);
    const tools = el('span', { class: 'tools' });
    tools.append(el('button', {
      type: 'button', class: 'small', 'aria-expanded': String(open),
      'aria-label': (open ? 'Hide' : 'Show') + ' the hosts of ' + svc + ' in ' + env,
      data: { expand: JSON.stringify([env, svc]), fkey: 'expand|' + env + '|' + svc },
    }, (open ? '▾' : '▸') + ' Hosts'));
    if (allowed(env)) tools.append(actionButton('Roll back', { action: 'rollback', env, service: svc }, 'Roll back ' + svc + ' in ' + env));
    td.append(tools);
    return td;
  }

  function swarmCell(env, svc, row) {
    const td = el('td', { class: 'cell', data: { env, service: svc, status: row.status || '', version: row.running || '' } });
    td.append(el('a', { class: row.running ? 'ver' : 'ver none', href: '#/service/' + enc(env) + '/' + enc(svc), title: 'Open ' + svc + ' in ' + env, data: { fkey: 'open|' + env + '|' + svc } }, row.running || 'no version seen'));
    td.append(el('span', { class: 'line' }, statusEl(row.status)));
    if (row.pinned && row.pinned !== row.running) td.append(el('span', { class: 'line note', text: 'pinned ' + row.pinned }));
    td.append(el('span', { class: 'line note', text: (row.replicas_running ?? '?') + '/' + row.replicas + ' replicas' }));
    const k = env + '\u0000' + svc;
    const open = state.expanded.has(k);
    const tools = el('span', { class: 'tools' });
    tools.append(el('button', {
      type: 'button', class: 'small', 'aria-expanded': String(open),
      'aria-label': (open ? 'Hide' : 'Show') + ' the nodes of ' + svc + ' in ' + env,
      data: { expand: JSON.stringify([env, svc]), fkey: 'expand|' + env + '|' + svc },
    }, (open ? '▾' : '▸') + ' Nodes'));
    if (allowed(env)) tools.append(actionButton('Roll back', { action: 'rollback', env, service: svc }, 'Roll back ' + svc + ' in ' + env));
    td.append(tools);
    return td;
  }

  function detailRow(env, svc, c, span, ix) {
    const box = el('div', {}, el('h2', { text: svc + ' in ' + env }));
    if (c.swarm) {
      const t = el('table', { class: 'grid hosts-of' },
        el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Node' }), el('th', { scope: 'col', text: 'Tasks running' }))));
      const tb = el('tbody');
      for (const [node, n] of Object.entries(c.swarm.tasks || {})) tb.append(el('tr', { data: { host: node } }, el('th', { scope: 'row', text: node }), el('td', { text: String(n) })));
      t.append(tb);
      box.append(t);
    } else {
      box.append(hostsTable(c.rows, ix, env, false));
    }
    box.className = 'detail-box';
    return el('tr', { class: 'detail' }, el('td', { colspan: String(span) }, box));
  }

  // A table of one service's rows, one per host.
  // `gates` (the service page): host -> its releases document, for the Gate column.
  function hostsTable(rows, ix, env, withId, gates) {
    const cols = ['Host', 'Status', 'Version', 'Pinned', 'Digest', 'Since', 'State', 'Health'];
    if (gates) cols.push('Gate');
    cols.push('Agent', 'Deployed by', 'Detail');
    const t = el('table', { class: 'grid hosts-of', id: withId ? 'containers' : null });
    const hr = el('tr');
    cols.forEach((c) => hr.append(el('th', { scope: 'col', text: c })));
    t.append(el('thead', {}, hr));
    const tb = el('tbody');
    const frag = document.createDocumentFragment();
    for (const r of rows) {
      const agent = ix.agents.get(env + '\u0000' + r.host);
      frag.append(el('tr', { data: { host: r.host, status: r.status } },
        el('th', { scope: 'row', text: r.host }),
        el('td', {}, statusEl(r.status, driftKind(r))),
        el('td', { class: 'mono', text: r.running || '—' }),
        el('td', { class: 'mono', text: r.pinned || '—' }),
        el('td', { class: 'mono digest', title: r.digest || '', text: r.digest ? r.digest.replace(/^sha256:/, '').slice(0, 12) : '—' }),
        el('td', {}, r.since ? timeEl(r.since) : '—'),
        el('td', { text: r.state || '—' }),
        el('td', { text: r.health || '—' }),
        gates ? gateCell(gates, r.host) : null,
        el('td', {}, agent ? statusEl(agent.state) : '—', agent && agent.reason ? ' ' + agent.reason : ''),
        el('td', { text: r.deployed_by || '—' }),
        el('td', { text: r.detail || '' })));
    }
    tb.append(frag);
    t.append(tb);
    return t;
  }

  // The last gate judged on a host: fleetpin makes a container current only once its gate passed;
  // a release refused since is kept as failed.
  function gateCell(gates, host) {
    if (!gates.doc) return el('td', { class: 'note', data: { gate: '' }, text: gates.error || '…' });
    const h = gates.doc.hosts.find((x) => x.host === host);
    if (!h) return el('td', { data: { gate: '' }, text: '—' });
    if (h.error) return el('td', { data: { gate: 'unreachable' } }, statusEl('unreachable'));
    if (!h.gate) return el('td', { data: { gate: '' }, text: '—' });
    const word = { passed: 'ok', failed: 'failed', pending: 'stale' }[h.gate] || 'unknown';
    const td = el('td', { data: { gate: h.gate } }, el('span', { class: stClass(word) }, (SYMBOL[word] || '•') + ' ' + h.gate));
    if (h.gate_version) td.append(' ', el('span', { class: 'mono', text: h.gate_version }));
    return td;
  }

  // The retained releases (rollback's targets) and those refused by their gate, per host.
  function releasesTable(doc) {
    const t = el('table', { id: 'retained', class: 'grid hosts-of' });
    const hr = el('tr');
    ['Host', 'Version', 'Kept as', 'Deployed', 'Deployed by', 'Commit', 'State'].forEach((h) => hr.append(el('th', { scope: 'col', text: h })));
    t.append(el('thead', {}, hr));
    const tb = el('tbody');
    let n = 0;
    for (const h of doc.hosts) {
      for (const r of h.retained.concat(h.failed)) {
        n++;
        const role = r.role === 'failed' ? 'failed its gate' : r.role === 'rolled-back' ? 'rolled back from' : 'retained';
        tb.append(el('tr', { data: { host: h.host, version: r.version || '', role: r.role } },
          el('th', { scope: 'row', text: h.host }),
          el('td', { class: 'mono', text: r.version || '—' }),
          el('td', {}, r.role === 'failed' ? statusEl('failed', 'gate') : role),
          el('td', {}, r.deployed_at ? timeEl(r.deployed_at) : timeEl(r.created)),
          el('td', { text: r.deployed_by || '—' }),
          el('td', { class: 'mono', title: r.commit || '', text: short(r.commit) || '—' }),
          el('td', { text: r.state })));
      }
    }
    t.append(tb);
    return { table: t, count: n };
  }

  // ---- History ---------------------------------------------------------------------------------

  function historyPage(view, env, focusCommit) {
    document.title = (env ? 'History of ' + env : 'History') + ' · fleetpin';
    const select = el('select', { id: 'history-env' }, el('option', { value: '', text: 'All environments' }));
    for (const e of state.envs) select.append(el('option', { value: e.name, text: e.name }));
    select.value = env;
    const svc = el('input', { id: 'history-service', type: 'search', placeholder: 'service', autocomplete: 'off' });
    const box = el('div', { class: 'scroller' });
    const status = el('p', { class: 'note', role: 'status', text: 'Reading the history…' });
    view.append(
      el('h1', { tabindex: '-1', text: env ? 'History of ' + env : 'History' }),
      el('p', {}, el('a', { href: '#/', text: '← Fleet' })),
      el('div', { class: 'toolbar' },
        el('div', { class: 'field' }, el('label', { for: 'history-env', text: 'Environment' }), select),
        el('div', { class: 'field' }, el('label', { for: 'history-service', text: 'Service' }), svc)),
      status, box);
    select.addEventListener('change', () => {
      location.hash = '#/history/' + enc(select.value);
    });
    // Expanding a commit's diff: one listener for the table.
    box.addEventListener('click', (ev) => {
      const b = ev.target instanceof Element && ev.target.closest('button[data-diff]');
      if (b) toggleDiff(b);
    });
    let rows = [];
    let focused = false;
    const draw = () => {
      const f = svc.value.trim().toLowerCase();
      const kept = f ? rows.filter((r) => r.service.toLowerCase().includes(f)) : rows;
      clear(box);
      box.append(historyTable(kept, !env, focusCommit));
      let text = kept.length ? kept.length + ' pin changes' : 'No pin change' + (f ? ' for this service' : '') + '.';
      // The commit the route names (an action's outcome links to it): marked, and focused once.
      if (focusCommit) {
        const row = box.querySelector('tr.selected');
        if (!row) text += ' Commit ' + short(focusCommit) + ' is not among them.';
        else if (!focused) {
          focused = true;
          row.focus();
          row.scrollIntoView({ block: 'center' });
        }
      }
      status.textContent = text;
    };
    let pending = 0;
    svc.addEventListener('input', () => {
      clearTimeout(pending);
      pending = setTimeout(draw, 150);
    });
    const q = '/api/v1/history?limit=500' + (env ? '&env=' + enc(env) : '');
    api(q).then((r) => {
      rows = Array.isArray(r) ? r : [];
      const now = state.route;
      if (now && now.page === 'history' && now.env === env && now.commit === focusCommit) draw();
    }, (e) => {
      status.textContent = 'The history could not be read: ' + e.message;
      status.className = 'error';
    });
  }

  // The same commit, whichever of a short or a full id each side holds.
  const sameCommit = (a, b) => !!a && !!b && (a.startsWith(b) || b.startsWith(a));

  function historyTable(rows, withEnv, focusCommit) {
    // One row per commit, with the pins it changed (from → to).
    const commits = [];
    const byCommit = new Map();
    for (const r of rows) {
      let c = byCommit.get(r.commit);
      if (!c) {
        c = { first: r, pins: [] };
        byCommit.set(r.commit, c);
        commits.push(c);
      }
      c.pins.push(r);
    }
    const cols = ['Date', 'Commit', 'Author', 'Signed by', 'Pins changed', 'Subject', 'Diff'];
    const t = el('table', { id: 'history', class: 'grid' });
    const hr = el('tr');
    cols.forEach((h) => hr.append(el('th', { scope: 'col', text: h })));
    t.append(el('thead', {}, hr));
    const tb = el('tbody');
    for (const c of commits) {
      const r = c.first;
      const pins = el('ul', { class: 'pins' });
      for (const p of c.pins) {
        pins.append(el('li', { data: { service: p.service, env: p.environment, from: p.from || '', to: p.to || '' } },
          (withEnv ? p.environment + ' / ' : '') + p.service + ': ',
          el('span', { class: 'mono', text: p.from || '(none)' }), ' → ',
          el('span', { class: 'mono', text: p.to || '(removed)' })));
      }
      const signed = r.signed_by
        ? el('span', { class: /bad|unverified/.test(r.signed_by) ? 'st st-drift' : 'st st-ok' }, (/bad|unverified/.test(r.signed_by) ? '! ' : '✓ ') + r.signed_by)
        : el('span', { class: 'note', text: '— unsigned' });
      const chosen = sameCommit(r.commit, focusCommit);
      const diffButton = el('button', {
        type: 'button', class: 'small', 'aria-expanded': 'false',
        'aria-label': 'Show the diff of commit ' + short(r.commit),
        data: { diff: r.commit, env: r.environment },
      }, '▸ Diff');
      tb.append(el('tr', { class: chosen ? 'selected' : null, tabindex: chosen ? '-1' : null, 'aria-current': chosen ? 'true' : null, data: { commit: r.commit } },
        el('td', {}, timeEl(r.date)),
        el('td', { class: 'mono', title: r.commit, text: short(r.commit) }),
        el('td', { text: r.author }),
        el('td', {}, signed),
        el('td', {}, pins),
        el('td', { text: r.subject }),
        el('td', {}, diffButton)));
    }
    t.append(tb);
    return t;
  }

  // Shows (or hides) the diff of a history row's commit in a row below it.
  async function toggleDiff(button) {
    const row = button.closest('tr');
    const next = row.nextElementSibling;
    const open = button.getAttribute('aria-expanded') === 'true';
    if (open) {
      if (next && next.classList.contains('diff-row')) next.remove();
      button.setAttribute('aria-expanded', 'false');
      button.textContent = '▸ Diff';
      button.setAttribute('aria-label', 'Show the diff of commit ' + short(button.dataset.diff));
      return;
    }
    button.setAttribute('aria-expanded', 'true');
    button.textContent = '▾ Diff';
    button.setAttribute('aria-label', 'Hide the diff of commit ' + short(button.dataset.diff));
    const pre = el('pre', { class: 'diff', tabindex: '0', 'aria-label': 'Diff of commit ' + short(button.dataset.diff), text: 'Reading the diff…' });
    const tr = el('tr', { class: 'diff-row', data: { commit: button.dataset.diff } }, el('td', { colspan: String(row.children.length) }, pre));
    row.after(tr);
    try {
      const d = await api('/api/v1/environments/' + enc(button.dataset.env) + '/commits/' + enc(button.dataset.diff) + '/diff');
      clear(pre);
      if (!d.diff) {
        pre.textContent = 'The manifest did not change in this commit.';
        return;
      }
      for (const line of d.diff.replace(/\n$/, '').split('\n')) {
        let cls = 'ctx';
        if (line.startsWith('+++') || line.startsWith('---') || line.startsWith('diff ')) cls = 'file';
        else if (line.startsWith('@@')) cls = 'hunk';
        else if (line.startsWith('+')) cls = 'add';
        else if (line.startsWith('-')) cls = 'del';
        pre.append(el('span', { class: 'd-' + cls, text: line || ' ' }));
      }
    } catch (e) {
      pre.textContent = 'The diff could not be read: ' + e.message;
    }
  }

  // ---- A service ----------------------------------------------------------------------------------

  function servicePage(view, env, svc) {
    document.title = svc + ' in ' + env + ' · fleetpin';
    const actions = el('div', { class: 'toolbar', id: 'service-actions' });
    if (allowed(env)) {
      const b = actionButton('Roll back ' + svc, { action: 'rollback', env, service: svc }, 'Roll back ' + svc + ' in ' + env);
      b.className = '';
      actions.append(b);
    }
    const doc = state.envByName.get(env);
    if (doc && doc.secrets_unchecked) actions.append(el('p', { class: 'warning-note', text: '⚠ ' + doc.secrets_unchecked }));
    const tail = el('input', { id: 'logs-tail', type: 'number', min: '0', max: '10000', value: '100', inputmode: 'numeric' });
    const start = el('button', { type: 'button', id: 'logs-start', text: 'Follow' });
    const stop = el('button', { type: 'button', id: 'logs-stop', text: 'Stop', disabled: true });
    view.append(
      el('h1', { tabindex: '-1', text: svc + ' in ' + env }),
      el('p', {}, el('a', { href: '#/', text: '← Fleet' }), ' · ', el('a', { href: '#/history/' + enc(env), text: 'History of ' + env })),
      el('p', { id: 'service-pin' }),
      el('p', { id: 'data-age', class: 'age note' }),
      actions,
      el('h2', { text: 'Containers' }),
      // Tables wider than a phone scroll in their box: reachable with the keyboard to scroll.
      el('div', { class: 'scroller', id: 'containers-box', tabindex: '0', role: 'region', 'aria-label': 'Containers of ' + svc + ' in ' + env }),
      el('h2', { text: 'Retained releases' }),
      el('div', { class: 'scroller', id: 'retained-box', tabindex: '0', role: 'region', 'aria-label': 'Retained releases of ' + svc + ' in ' + env }, el('p', { class: 'note', text: 'Reading the hosts…' })),
      el('h2', { text: 'Logs' }),
      el('div', { class: 'toolbar' },
        el('div', { class: 'field' }, el('label', { for: 'logs-tail', text: 'Last lines' }), tail),
        start, stop,
        el('span', { id: 'logs-status', class: 'note', role: 'status' })),
      el('pre', { id: 'logs', role: 'log', tabindex: '0', 'aria-label': 'Logs of ' + svc + ' in ' + env }));
    actions.addEventListener('click', (ev) => {
      const b = ev.target instanceof Element && ev.target.closest('button[data-action]');
      if (b) startAction(b);
    });
    start.addEventListener('click', () => followLogs(env, svc, tail.value));
    stop.addEventListener('click', () => stopLogs('Stopped.'));
    // The releases on each host are read from the hosts (not in the audit): once when the page
    // opens, then whenever the fleet's reading changes.
    const relKey = env + '\u0000' + svc;
    if (!state.releases || state.releases.key !== relKey) state.releases = { key: relKey, at: '', doc: null, error: '', reading: false };
    const gates = state.releases;
    const loadReleases = (readAt) => {
      if (gates.reading || gates.at === readAt) return;
      gates.reading = true;
      api('/api/v1/environments/' + enc(env) + '/services/' + enc(svc) + '/releases').then((d) => {
        gates.doc = d;
        gates.error = '';
      }, (e) => {
        gates.error = 'Not read: ' + e.message;
      }).finally(() => {
        gates.reading = false;
        gates.at = readAt;
        state.rendered = '';
        if (state.route && state.route.page === 'service' && state.releases === gates) draw();
      });
    };
    const draw = () => {
      const ix = indexAudit();
      const pin = pinOf(env, svc);
      const p = $('#service-pin');
      if (p) p.textContent = pin ? 'Pinned: ' + pin : 'Not pinned in ' + env + '.';
      const box = $('#containers-box');
      if (!box) return;
      const readAt = (state.audit && state.audit.read_at) || '';
      if (readAt) loadReleases(readAt);
      const key = readAt + '|' + state.envsAt + '|' + gates.at + '|' + gates.error;
      if (key === state.rendered && $('#containers', box)) return;
      state.rendered = key;
      clear(box);
      const rbox = $('#retained-box');
      if (rbox && (gates.doc || gates.error)) {
        clear(rbox);
        if (gates.error) rbox.append(el('p', { class: 'error', text: gates.error }));
        else if (gates.doc.swarm) rbox.append(el('p', { class: 'note', text: 'A swarm keeps no retained containers per host: rollback goes back to the service\'s previous spec.' }));
        else {
          const r = releasesTable(gates.doc);
          if (r.count) rbox.append(r.table);
          else rbox.append(el('p', { class: 'note', text: 'No retained release: nothing to roll back to on these hosts.' }));
          const down = gates.doc.hosts.filter((h) => h.error);
          for (const h of down) rbox.append(el('p', { class: 'error', text: h.host + ' could not be read: ' + h.error }));
        }
      }
      const sw = ix.swarm.get(env + '\u0000' + svc);
      if (sw) {
        const t = el('table', { id: 'containers', class: 'grid hosts-of' });
        const hr = el('tr');
        ['Node', 'Tasks running', 'Version', 'Pinned', 'Digest', 'Status'].forEach((h) => hr.append(el('th', { scope: 'col', text: h })));
        t.append(el('thead', {}, hr));
        const tb = el('tbody');
        for (const [node, n] of Object.entries(sw.tasks || {})) {
          tb.append(el('tr', { data: { host: node } }, el('th', { scope: 'row', text: node }), el('td', { text: String(n) }),
            el('td', { class: 'mono', text: sw.running || '—' }), el('td', { class: 'mono', text: sw.pinned || '—' }),
            el('td', { class: 'mono digest', title: sw.digest || '', text: sw.digest ? sw.digest.replace(/^sha256:/, '').slice(0, 12) : '—' }),
            el('td', {}, statusEl(sw.status))));
        }
        t.append(tb);
        box.append(t);
      } else {
        const rows = ix.cells.get(env + '\u0000' + svc) || [];
        box.append(hostsTable(rows, ix, env, true, gates));
        if (state.audit && !rows.length) box.append(el('p', { class: 'note', text: 'No container of ' + svc + ' in ' + env + '.' }));
      }
    };
    if (state.audit) draw();
    startPolling(draw);
    followLogs(env, svc, tail.value);
  }

  // ---- Live logs --------------------------------------------------------------------------------

  const MAX_LOG_LINES = 5000;

  function stopLogs(why) {
    const l = state.logs;
    if (!l) return;
    state.logs = null;
    l.es.close();
    cancelAnimationFrame(l.frame);
    flushLogs(l);
    const stop = $('#logs-stop');
    const start = $('#logs-start');
    if (stop) stop.disabled = true;
    if (start) start.disabled = false;
    const st = $('#logs-status');
    if (st && why) st.textContent = why;
  }

  function flushLogs(l) {
    l.frame = 0;
    if (!l.buffer.length) return;
    const pre = l.pre;
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    const text = document.createTextNode(l.buffer.join('\n') + '\n');
    l.chunks.push(l.buffer.length);
    l.lines += l.buffer.length;
    l.buffer = [];
    pre.append(text);
    // Keep the last lines only: whole chunks go from the top.
    while (l.lines > MAX_LOG_LINES && l.chunks.length > 1 && pre.firstChild) {
      l.lines -= l.chunks.shift();
      pre.removeChild(pre.firstChild);
    }
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }

  function followLogs(env, svc, tail) {
    stopLogs();
    const pre = $('#logs');
    if (!pre) return;
    clear(pre);
    const n = Math.max(0, Math.min(10000, parseInt(tail, 10) || 0));
    const url = '/api/v1/environments/' + enc(env) + '/logs/follow?service=' + enc(svc) + '&tail=' + n;
    const es = new EventSource(url, { withCredentials: true });
    const l = { es, pre, buffer: [], chunks: [], lines: 0, frame: 0, got: false, opened: false };
    state.logs = l;
    const push = (text) => {
      l.buffer.push(text);
      if (!l.frame) l.frame = requestAnimationFrame(() => flushLogs(l));
    };
    const status = $('#logs-status');
    status.textContent = 'Following…';
    $('#logs-stop').disabled = false;
    $('#logs-start').disabled = true;
    es.addEventListener('open', () => {
      l.opened = true;
    });
    es.addEventListener('line', (ev) => {
      l.got = true;
      try {
        const d = JSON.parse(ev.data);
        push(d.host + ' ' + d.service + ': ' + d.line);
      } catch (_) {
        push(ev.data);
      }
    });
    es.addEventListener('end', (ev) => {
      l.got = true;
      try {
        const d = JSON.parse(ev.data);
        push('— ' + d.host + ' ' + d.service + ': ' + d.why);
      } catch (_) {
        push('— ' + ev.data);
      }
    });
    es.addEventListener('error', async () => {
      if (state.logs !== l) return;
      // The stream closed (every source ended) or was refused: do not let the browser
      // reconnect and show the tail again; say why when the server says so.
      const got = l.got;
      const opened = l.opened;
      stopLogs(got ? 'The log stream ended.' : opened ? 'The log stream ended: no container of ' + svc + ' could be followed.' : 'The log stream could not be opened.');
      if (!opened) {
        try {
          const ctl = new AbortController();
          const res = await fetch(url, { credentials: 'same-origin', signal: ctl.signal });
          if (!res.ok) {
            const d = await res.json().catch(() => ({}));
            if (res.status === 401) return showSignin();
            if (status.isConnected) status.textContent = 'No logs: ' + (d.error || res.status);
          }
          ctl.abort();
        } catch (_) {
          // The probe only explains; nothing to do when it fails too.
        }
      }
    });
  }

  // ---- Actions --------------------------------------------------------------------------------

  const dialog = $('#confirm');
  const go = $('#confirm-go');
  let pendingAction = null;

  $('#confirm-cancel').addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => {
    if (pendingAction && pendingAction.opener && pendingAction.opener.isConnected) pendingAction.opener.focus();
    pendingAction = null;
  });
  go.addEventListener('click', () => {
    const a = pendingAction;
    if (!a || go.disabled) return;
    const body = a.body();
    pendingAction = null;
    dialog.close();
    runOperation(a, body);
  });

  function openConfirm(title) {
    if (pendingAction) pendingAction.title = title;
    $('#confirm-title').textContent = title;
    const plan = $('#confirm-plan');
    clear(plan);
    plan.append(el('p', { class: 'note', text: 'Reading what would happen…' }));
    clear($('#confirm-extra'));
    go.disabled = true;
    go.textContent = 'Go';
    if (!dialog.open) dialog.showModal();
    $('#confirm-cancel').focus();
    return plan;
  }

  function planTable(plan) {
    const box = document.createDocumentFragment();
    if (plan.secrets_unchecked) box.append(el('p', { class: 'warning-note', text: '⚠ ' + plan.secrets_unchecked }));
    if (plan.held) box.append(el('p', { class: 'warning-note', text: '⏸ A deploy window holds changes: ' + plan.held }));
    const rows = [];
    for (const h of plan.hosts || []) {
      if (h.error) rows.push([h.host, 'error', '', '', h.error]);
      if (h.repair) rows.push([h.host, 'repair', '', '', 'an interrupted run left work here; apply repairs it first']);
      for (const c of h.changes || []) if (c.kind !== 'unchanged') rows.push([h.host, c.kind, c.service, (c.from || '∅') + ' → ' + (c.to || '∅'), c.reason || '']);
    }
    for (const c of plan.changes || []) if (c.kind !== 'unchanged') rows.push(['(swarm)', c.kind, c.service, (c.from || '∅') + ' → ' + (c.to || '∅'), c.replicas_from != null ? c.replicas_from + ' → ' + c.replicas + ' replicas' : '']);
    if (!rows.length) {
      box.append(el('p', { text: 'Nothing to change: every host already runs what ' + plan.environment + ' pins.' }));
      return box;
    }
    const t = el('table', { class: 'grid' });
    const hr = el('tr');
    ['Host', 'Change', 'Service', 'Version', 'Why'].forEach((h) => hr.append(el('th', { scope: 'col', text: h })));
    t.append(el('thead', {}, hr));
    const tb = el('tbody');
    for (const r of rows) tb.append(el('tr', {}, el('th', { scope: 'row', text: r[0] }), el('td', {}, statusEl(r[1])), el('td', { text: r[2] }), el('td', { class: 'mono', text: r[3] }), el('td', { text: r[4] })));
    t.append(tb);
    box.append(t);
    return box;
  }

  function overrideField(env, held) {
    const e = state.envByName.get(env);
    if (!held || !e || !e.rights.includes('override-window')) return null;
    const input = el('input', { id: 'confirm-override', type: 'text', autocomplete: 'off' });
    $('#confirm-extra').append(el('label', { for: 'confirm-override', text: 'Override the window — why (leave empty to respect it)' }), input);
    return input;
  }

  async function startAction(button) {
    const d = button.dataset;
    const kind = d.action;
    const env = d.env;
    const ix = indexAudit();
    const auditCommit = ix.commit && ix.commit !== 'uncommitted' ? ix.commit : undefined;
    const a = { kind, env, opener: button, title: kind };
    pendingAction = a;
    if (kind === 'apply') {
      const plan = openConfirm('Apply ' + env);
      a.url = '/api/v1/environments/' + enc(env) + '/apply';
      a.historyEnv = env;
      try {
        const p = await api('/api/v1/environments/' + enc(env) + '/plan');
        if (pendingAction !== a) return;
        clear(plan);
        plan.append(el('p', {}, 'The plan of ' + env + ' at commit ', el('code', { title: p.commit, text: short(p.commit) }), ' (made ', timeEl(p.created_at), '):'));
        plan.append(planTable(p));
        const override = overrideField(env, p.held);
        a.planCommit = p.commit && p.commit !== 'uncommitted' ? p.commit : null;
        a.body = () => {
          const b = {};
          if (p.plan_id) b.plan_id = p.plan_id;
          if (p.commit && p.commit !== 'uncommitted') b.commit = p.commit;
          if (override && override.value.trim()) b.override_window = override.value.trim();
          return b;
        };
        go.textContent = 'Apply ' + env;
        go.disabled = !!p.secrets_unchecked;
      } catch (e) {
        if (pendingAction !== a) return;
        clear(plan);
        plan.append(el('p', { class: 'error', text: 'No plan: ' + e.message }));
      }
      return;
    }
    if (kind === 'rollback') {
      const svc = d.service;
      const plan = openConfirm('Roll back ' + svc + ' in ' + env);
      a.url = '/api/v1/environments/' + enc(env) + '/rollback';
      a.historyEnv = env;
      clear(plan);
      const rows = ix.cells.get(env + '\u0000' + svc) || [];
      const sw = ix.swarm.get(env + '\u0000' + svc);
      const s = summarise(rows);
      const running = sw ? sw.running : s.versions.join(', ');
      plan.append(
        el('p', {}, svc + ' in ' + env + ' runs ', el('code', { text: running || 'nothing' }), ' (pinned ', el('code', { text: pinOf(env, svc) || '—' }), ')' +
          (sw ? '.' : ' on ' + s.total + (s.total === 1 ? ' host.' : ' hosts.'))),
        el('p', { text: 'Rollback starts again the version kept before it on each host (or the version named below), then pins that version in ' + env + ' with a commit.' }));
      if (rows.length) {
        const list = el('ul');
        rows.slice(0, 50).forEach((r) => list.append(el('li', {}, r.host + ': ', el('code', { text: r.running || '—' }), ' ', statusEl(r.status))));
        if (rows.length > 50) list.append(el('li', { text: '… and ' + (rows.length - 50) + ' more hosts' }));
        plan.append(list);
      }
      // Where each host goes: the server's rollback plan (the same preparation the rollback
      // runs), asked again whenever the version named below changes.
      const where = el('div', { id: 'rollback-plan', 'aria-live': 'polite' });
      plan.append(where);
      const to = el('input', { id: 'confirm-to', type: 'text', autocomplete: 'off', placeholder: 'the previous version' });
      $('#confirm-extra').append(el('label', { for: 'confirm-to', text: 'Roll back to (optional)' }), to);
      const override = overrideField(env, ix.held[env]);
      let shown = null;
      let asked = 0;
      let timer = null;
      const ask = async () => {
        const n = ++asked;
        const want = to.value.trim();
        shown = null;
        go.disabled = true;
        clear(where);
        where.append(el('p', { class: 'note', text: 'Reading where each host goes back to…' }));
        let url = '/api/v1/environments/' + enc(env) + '/rollback?service=' + enc(svc);
        if (want) url += '&to=' + enc(want);
        try {
          const p = await api(url);
          if (pendingAction !== a || n !== asked) return;
          clear(where);
          where.append(el('p', {}, 'The rollback of ' + env + ' at commit ', el('code', { title: p.commit, text: short(p.commit) }), (p.commits ? ', then ' + env + ' pins what runs:' : ' (nothing is committed):')));
          const list = el('ul');
          for (const st of p.steps || []) {
            const how = st.how === 'relaunch' ? 'starts ' + st.container + (st.container_id ? ' (' + st.container_id + ')' : '') + ' again'
              : st.how === 'create' ? 'creates a container from the ' + st.to + ' image'
              : st.how === 'finish' ? 'finishes an interrupted rollback'
              : st.how === 'none' ? 'already runs it' : '';
            list.append(el('li', {}, (st.host || '(swarm)') + ': ', el('code', { text: (st.from || '∅') + ' → ' + st.to }), ' ', statusEl(st.change), how ? ' ' + how : ''));
          }
          where.append(list);
          for (const note of p.notes || []) where.append(el('p', { class: 'warning-note', text: '⚠ ' + note }));
          shown = { commit: p.commit, to: want };
          go.disabled = false;
        } catch (e) {
          if (pendingAction !== a || n !== asked) return;
          clear(where);
          where.append(el('p', { class: 'error', text: 'Nothing would be rolled back: ' + e.message }));
        }
      };
      to.addEventListener('input', () => {
        go.disabled = true;
        clearTimeout(timer);
        timer = setTimeout(ask, 400);
      });
      a.body = () => {
        const b = { services: [svc] };
        if (shown && shown.to) b.to = shown.to;
        // The commit the plan shown was made on: refused if the reference moved since.
        const commit = shown && shown.commit !== 'uncommitted' ? shown.commit : auditCommit;
        if (commit) b.commit = commit;
        if (override && override.value.trim()) b.override_window = override.value.trim();
        return b;
      };
      go.textContent = 'Roll back ' + svc;
      ask();
      return;
    }
    if (kind === 'promote') {
      const from = d.from;
      const to = d.to;
      const plan = openConfirm('Promote ' + from + ' → ' + to);
      a.url = '/api/v1/promote';
      a.env = to;
      a.historyEnv = to;
      clear(plan);
      const services = new Set([...Object.keys(ix.pins[from] || {}), ...Object.keys(ix.pins[to] || {})]);
      const t = el('table', { class: 'grid' });
      const hr = el('tr');
      ['Service', from + ' pins', to + ' pins now', 'Change'].forEach((h) => hr.append(el('th', { scope: 'col', text: h })));
      t.append(el('thead', {}, hr));
      const tb = el('tbody');
      let moves = 0;
      for (const svc of services) {
        const a1 = pinOf(from, svc);
        const b1 = pinOf(to, svc);
        const moving = a1 && a1 !== b1;
        if (moving) moves++;
        tb.append(el('tr', {}, el('th', { scope: 'row', text: svc }), el('td', { class: 'mono', text: a1 || '—' }), el('td', { class: 'mono', text: b1 || '—' }),
          el('td', {}, moving ? statusEl('upgrade', 'pin moves') : el('span', { class: 'note', text: a1 ? '= same' : 'not in ' + from }))));
      }
      t.append(tb);
      plan.append(el('p', { text: 'Promote writes ' + from + "'s pins into " + to + ' (after its gates pass) and commits them; ' + moves + ' pin' + (moves === 1 ? '' : 's') + ' would move.' }), t);
      const override = overrideField(to, ix.held[to]);
      a.body = () => {
        const b = { from, to, services: [] };
        if (auditCommit) b.commit = auditCommit;
        if (override && override.value.trim()) b.override_window = override.value.trim();
        return b;
      };
      go.textContent = 'Promote to ' + to;
      go.disabled = false;
      return;
    }
    if (kind === 'unlock') {
      const plan = openConfirm('Unlock ' + env);
      a.url = '/api/v1/environments/' + enc(env) + '/unlock';
      clear(plan);
      plan.append(el('p', { text: 'Removes the deploy lock of every host of ' + env + ', whoever holds it. Do it only when the run that took it is over (a console or CLI run that died).' }));
      a.body = () => ({});
      go.textContent = 'Unlock ' + env;
      go.disabled = false;
    }
  }

  // An operation: started, its events streamed into #op-events, ended by its outcome.
  function eventText(e) {
    switch (e.kind) {
      case 'step': return e.host + ': ' + e.step;
      case 'hosts_done': return 'every host has reported';
      case 'swarm': return e.line;
      case 'warning': return 'warning: ' + e.message;
      case 'hook': return 'hook ' + e.hook + ': ' + e.line;
      case 'notified': return 'notified ' + e.to + ' (' + e.status + ')';
      case 'notify_failed': return 'could not notify ' + e.to + ': ' + e.why;
      case 'event': return e.command + ' ' + e.environment + (e.result ? ': ' + e.result : ': starting');
      default: {
        const copy = Object.assign({}, e);
        delete copy.operation;
        return JSON.stringify(copy);
      }
    }
  }

  function judge(o) {
    if (!o || typeof o !== 'object') return { ok: false, text: 'No outcome.' };
    const lines = [];
    let ok;
    if ('ok' in o) ok = o.ok === true && !o.interrupted;
    else if ('refused' in o) ok = !o.refused && !o.error && !(o.push && o.push.ok === false);
    else if (typeof o.error === 'string') return { ok: false, text: o.error };
    else ok = true;
    if (typeof o.error === 'string' && o.error) lines.push(o.error);
    // Each host that did not converge is a progress line; the outcome counts them.
    const details = [];
    for (const h of o.hosts || []) {
      if (h.error) details.push(h.host + ': ' + (h.status && !h.error.startsWith(h.status) ? h.status + ', ' : '') + h.error);
      else if (h.status && !['converged', 'unchanged'].includes(h.status)) details.push(h.host + ': ' + h.status);
    }
    if (details.length) lines.push(details.length + ' of ' + o.hosts.length + (o.hosts.length === 1 ? ' host' : ' hosts') + ' did not converge');
    for (const g of o.gates || []) if (!g.passed && !g.overridden) lines.push('gate ' + g.name + ' refused: ' + (g.details || []).join('; '));
    // The pins written go to the progress lines; the outcome counts them.
    const pins = (o.pins || []).map((p) => 'pin ' + p.service + ': ' + (p.from || '∅') + ' → ' + p.to);
    if (pins.length) lines.push(pins.length + (pins.length === 1 ? ' pin' : ' pins') + ' written');
    if (o.push && !o.push.ok) lines.push('push failed: ' + (o.push.error || ''));
    if (o.interrupted) lines.push('interrupted');
    for (const n of o.notes || []) lines.push(n);
    return { ok, text: lines.join('; '), details: details.concat(pins) };
  }

  function runOperation(a, body) {
    const panel = $('#op');
    const events = $('#op-events');
    const outcome = $('#op-outcome');
    clear(events);
    clear(outcome);
    outcome.removeAttribute('data-ok');
    $('#op-title').textContent = a.title;
    panel.hidden = false;
    panel.scrollIntoView({ block: 'nearest' });
    panel.focus();
    const line = (text) => {
      events.append(el('li', { text }));
      events.scrollTop = events.scrollHeight;
    };
    const finish = (ok, text, commit) => {
      clear(outcome);
      outcome.append((ok ? '✓ Done' : '✕ Failed') + (text ? ': ' + text.replace(/\.?$/, '.') : '.'));
      if (commit) {
        outcome.append(' Commit ', el('a', { id: 'op-commit', href: '#/history/' + enc(a.historyEnv || a.env) + '/' + enc(commit), class: 'mono', text: commit }));
      } else if (a.planCommit) {
        outcome.append(' The plan was made at commit ', el('code', { title: a.planCommit, text: short(a.planCommit) }), '.');
      }
      outcome.dataset.ok = String(ok);
      state.index = null;
      state.envsAt = 0;
      if (state.onAudit) refresh();
    };
    line('starting ' + a.kind + '…');
    api(a.url, { body }).then((started) => {
      if (a.kind === 'unlock') {
        const hosts = (started && started.hosts) || [];
        for (const h of hosts) line(h.host + ': ' + (h.error ? 'failed: ' + h.error : h.removed ? 'lock removed' + (h.owner ? ' (held by ' + h.owner + ')' : '') : 'was not locked'));
        if (started && 'owner' in started) line(started.owner ? 'lock removed (held by ' + started.owner + ')' : 'was not locked');
        const failed = hosts.filter((h) => h.error).length;
        finish(!failed, failed ? failed + ' of ' + hosts.length + ' hosts could not be unlocked' : hosts.length ? hosts.length + ' hosts unlocked' : '');
        return;
      }
      line('started: operation ' + started.operation.slice(0, 24) + '…');
      let ended = false;
      const es = new EventSource(started.events, { withCredentials: true });
      es.addEventListener('event', (ev) => {
        try {
          line(eventText(JSON.parse(ev.data)));
        } catch (_) {
          line(ev.data);
        }
      });
      es.addEventListener('end', (ev) => {
        ended = true;
        es.close();
        let o = null;
        try {
          o = JSON.parse(ev.data);
        } catch (_) {
          o = { error: ev.data };
        }
        const j = judge(o);
        (j.details || []).forEach(line);
        finish(j.ok, j.text, o && typeof o.commit === 'string' ? o.commit : null);
      });
      es.addEventListener('error', () => {
        if (ended) return;
        es.close();
        // The stream broke before the end: ask the operation how it is, until it ends.
        const poll = () => api(started.status).then((s) => {
          if (s.running) return setTimeout(poll, 2000);
          const o = s.outcome || s.error;
          const j = judge(o);
          (j.details || []).forEach(line);
          finish(j.ok, j.text, o && typeof o.commit === 'string' ? o.commit : null);
        }, (e) => finish(false, 'lost the operation: ' + e.message));
        poll();
      });
    }, (e) => {
      line('refused (' + e.status + ')');
      finish(false, e.message);
    });
  }

  $('#op-close').addEventListener('click', () => {
    $('#op').hidden = true;
    $('#main').focus();
  });

  boot();
})();
