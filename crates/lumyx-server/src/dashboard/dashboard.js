// Lumyx developer dashboard: a plain page over the /v1/keys admin API.
//
// Rules this file keeps (the page is served with a strict CSP):
// - no inline style or script: looks come from classes in dashboard.css, the
//   chart from SVG attributes (x, y, width, height, fill="url(#…)");
// - every value from the API reaches the page as text (textContent or text
//   nodes), never as HTML;
// - the admin token lives in sessionStorage only, never in a URL or cookie.
'use strict';

(() => {
  /* ------------------------------------------------------------------ */
  /* Constants                                                           */
  /* ------------------------------------------------------------------ */

  const TOKEN_KEY = 'lumyx.adminToken';
  const SCOPES = ['models', 'chat', 'agents', 'personas', 'conversations'];
  const REASONS = [
    'rate_limit_exceeded',
    'daily_limit_exceeded',
    'api_key_expired',
    'api_key_revoked',
    'insufficient_scope',
  ];
  const LIMITS = {
    rate_limit_per_minute: [1, 1000],
    daily_limit: [1, 10000],
  };
  const MAX_LABEL_CHARS = 256;
  const MAX_GRACE_MINUTES = 30 * 24 * 60; // the server allows 30 days
  const USAGE_CONCURRENCY = 6;
  const SVG_NS = 'http://www.w3.org/2000/svg';

  /** Everything the page knows; rendering reads from here. */
  const state = {
    keys: [],                 // KeyRecord[]
    usage: new Map(),         // id -> usage answer (or {error})
    sort: { column: 'created_at', dir: 'desc' },
    usageKeyId: null,         // key shown in #usage
    loadSeq: 0,               // drops answers of superseded loads
  };

  const $ = (id) => document.getElementById(id);

  /* ------------------------------------------------------------------ */
  /* DOM helpers (text only, never HTML)                                 */
  /* ------------------------------------------------------------------ */

  /** Sets attributes, refusing inline styles and event handlers. */
  function setAttrs(node, attrs) {
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === 'style' || name.startsWith('on')) throw new Error('refused attribute ' + name);
      node.setAttribute(name, value === true ? '' : String(value));
    }
    return node;
  }

  /** An HTML element; string children become text nodes. */
  function el(tag, attrs, ...children) {
    const node = setAttrs(document.createElement(tag), attrs);
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === 'string' || typeof child === 'number'
        ? document.createTextNode(String(child)) : child);
    }
    return node;
  }

  /** An SVG element; string children become text nodes. */
  function svgEl(tag, attrs, ...children) {
    const node = setAttrs(document.createElementNS(SVG_NS, tag), attrs);
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === 'string' || typeof child === 'number'
        ? document.createTextNode(String(child)) : child);
    }
    return node;
  }

  /* ------------------------------------------------------------------ */
  /* Formatting                                                          */
  /* ------------------------------------------------------------------ */

  const nowSeconds = () => Math.floor(Date.now() / 1000);

  /** Unix seconds as "YYYY-MM-DD HH:MM" (UTC). */
  function fmtTime(seconds) {
    if (seconds === null || seconds === undefined) return '';
    const d = new Date(seconds * 1000);
    if (Number.isNaN(d.getTime())) return String(seconds);
    return d.toISOString().slice(0, 16).replace('T', ' ');
  }

  /** A <time> element for Unix seconds, or a dash. */
  function timeNode(seconds, empty) {
    if (seconds === null || seconds === undefined) return el('span', { class: 'muted' }, empty || '–');
    const date = new Date(Number(seconds) * 1000);
    // A time the page cannot read is shown as the API gave it.
    if (Number.isNaN(date.getTime())) return el('span', { class: 'muted' }, String(seconds));
    const iso = date.toISOString();
    return el('time', { datetime: iso, title: iso }, fmtTime(seconds));
  }

  /** Seconds as a short duration: "45 s", "12 min", "3 h 5 min". */
  function fmtDuration(seconds) {
    const s = Math.max(0, Math.round(Number(seconds) || 0));
    if (s < 90) return s + ' s';
    const m = Math.round(s / 60);
    if (m < 90) return m + ' min';
    return Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
  }

  /** A count as plain digits (no separators, so "1000" reads as the API's number). */
  const fmtNum = (n) => String(Number(n || 0));

  /* ------------------------------------------------------------------ */
  /* Messages                                                            */
  /* ------------------------------------------------------------------ */

  /** Shows an error in the #message alert area. */
  function showError(text) {
    const box = $('message');
    box.textContent = text;
    box.hidden = false;
  }

  function clearError() {
    const box = $('message');
    box.textContent = '';
    box.hidden = true;
  }

  /** A short confirmation in the polite #status line. */
  function showStatus(text) {
    $('status').textContent = text;
  }

  /** An error of a call as one readable sentence. */
  function describeError(err, what) {
    if (err instanceof ApiError) {
      const code = err.code || err.type;
      return what + ' failed: ' + err.message + (code ? ' (' + code + ')' : '');
    }
    return what + ' failed: could not reach the server (' + (err && err.message || err) + ').';
  }

  /* ------------------------------------------------------------------ */
  /* API                                                                 */
  /* ------------------------------------------------------------------ */

  /** An error answer of the API: {error:{message,type,param,code}}. */
  class ApiError extends Error {
    constructor(status, body) {
      const e = (body && body.error) || {};
      super(e.message || 'the server answered ' + status);
      this.status = status;
      this.type = e.type || null;
      this.param = e.param || null;
      this.code = e.code || null;
    }
  }

  const getToken = () => {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch (_) {
      return null;
    }
  };

  /** Calls the API; answers the parsed JSON or throws ApiError. */
  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    const token = getToken();
    if (token) headers.Authorization = 'Bearer ' + token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (!response.ok) {
      const err = new ApiError(response.status, data);
      if (response.status === 401) handleUnauthorized(err);
      throw err;
    }
    return data;
  }

  /** Every key, following has_more page by page. */
  async function fetchAllKeys() {
    const all = [];
    let after = null;
    for (let page = 0; page < 1000; page++) {
      const query = new URLSearchParams({ limit: '100', order: 'desc' });
      if (after) query.set('after', after);
      const list = await api('GET', '/v1/keys?' + query);
      const data = Array.isArray(list && list.data) ? list.data : [];
      all.push(...data);
      if (!list.has_more || !list.last_id || data.length === 0) break;
      after = list.last_id;
    }
    return all;
  }

  const keyPath = (id) => '/v1/keys/' + encodeURIComponent(id);

  /* ------------------------------------------------------------------ */
  /* Sign-in / sign-out                                                  */
  /* ------------------------------------------------------------------ */

  /** Shows the sign-in form or the dashboard. */
  function showSignedIn(signedIn) {
    $('signin-section').hidden = signedIn;
    $('dashboard').hidden = !signedIn;
    $('signout').hidden = !signedIn;
  }

  /** A 401 anywhere: forget the token and ask again, with a reason. */
  function handleUnauthorized(err) {
    // Loads still running for the old session stop where they are.
    state.loadSeq++;
    state.usageKeyId = null;
    $('usage').hidden = true;
    sessionStorage.removeItem(TOKEN_KEY);
    state.keys = [];
    state.usage.clear();
    eraseNewKey();
    showSignedIn(false);
    const code = err && err.code ? ' (' + err.code + ')' : '';
    const box = $('signin-error');
    box.textContent = 'That admin token was refused' + code +
      '. Check the token the server was started with and sign in again.';
    box.hidden = false;
    $('admin-token').setAttribute('aria-invalid', 'true');
    $('admin-token').focus();
  }

  async function onSignIn(event) {
    event.preventDefault();
    const input = $('admin-token');
    const token = input.value.trim();
    const box = $('signin-error');
    if (!token) {
      box.textContent = 'Enter the admin token.';
      box.hidden = false;
      input.focus();
      return;
    }
    if (!/^[\x21-\x7E]{16,}$/.test(token)) {
      box.textContent = 'An admin token is at least 16 visible ASCII characters, without spaces.';
      box.hidden = false;
      input.focus();
      return;
    }
    box.hidden = true;
    input.removeAttribute('aria-invalid');
    try {
      sessionStorage.setItem(TOKEN_KEY, token);
    } catch (_) {
      box.textContent = 'This browser blocks session storage for this page; allow site data to sign in.';
      box.hidden = false;
      return;
    }
    input.value = '';
    $('signin-submit').disabled = true;
    try {
      const ok = await loadKeys();
      if (ok) {
        showSignedIn(true);
        $('create-name').focus();
      }
    } finally {
      $('signin-submit').disabled = false;
    }
  }

  function onSignOut() {
    state.loadSeq++;
    sessionStorage.removeItem(TOKEN_KEY);
    state.keys = [];
    state.usage.clear();
    state.usageKeyId = null;
    eraseNewKey();
    $('keys-body').replaceChildren();
    $('usage').hidden = true;
    clearError();
    $('signin-error').hidden = true;
    showSignedIn(false);
    showStatus('Signed out.');
    $('admin-token').focus();
  }

  /* ------------------------------------------------------------------ */
  /* Keys: status, loading, sorting, filtering, rendering                */
  /* ------------------------------------------------------------------ */

  /** {kind, label} of a key now: active, expired, revoked or rotating. */
  function keyStatus(key, now = nowSeconds()) {
    // Expiry first, as the server checks it: a key both expired and
    // revoked is refused as expired.
    const has = (t) => t !== null && t !== undefined;
    if (has(key.expires_at) && key.expires_at <= now) return { kind: 'expired', label: 'expired' };
    if (has(key.revoked_at) && key.revoked_at <= now) return { kind: 'revoked', label: 'revoked' };
    if (has(key.revoked_at)) {
      const end = has(key.expires_at) ? Math.min(key.revoked_at, key.expires_at) : key.revoked_at;
      return { kind: 'rotating', label: 'rotating until ' + fmtTime(end) + ' UTC' };
    }
    return { kind: 'active', label: 'active' };
  }

  /** Loads every key, renders the table, then fetches usage. */
  async function loadKeys() {
    const seq = ++state.loadSeq;
    try {
      const keys = await fetchAllKeys();
      if (seq !== state.loadSeq) return true;
      state.keys = keys;
      clearError();
      renderKeys();
      loadAllUsage(seq);
      return true;
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) {
        showError(describeError(err, 'Loading the keys'));
        // Not a refused token: the dashboard can still be shown.
        if (getToken()) showSignedIn(true);
      }
      return false;
    }
  }

  /** Fetches usage of every key, a few at a time, updating rows as answers come. */
  async function loadAllUsage(seq) {
    const queue = state.keys.map((k) => k.id);
    let failed = 0;
    const worker = async () => {
      while (queue.length && seq === state.loadSeq) {
        const id = queue.shift();
        try {
          const usage = await api('GET', keyPath(id) + '/usage');
          // A sign-out meanwhile ends this load: its answers are dropped.
          if (seq !== state.loadSeq) return;
          state.usage.set(id, usage);
        } catch (err) {
          if (seq !== state.loadSeq || (err instanceof ApiError && err.status === 401)) return;
          state.usage.set(id, { error: err.message });
          failed++;
        }
        if (seq === state.loadSeq) updateUsageCells(id);
      }
    };
    await Promise.all(Array.from({ length: USAGE_CONCURRENCY }, worker));
    if (seq !== state.loadSeq) return;
    if (failed) showError('The usage of ' + failed + ' key(s) could not be read; their last-used time and spike flag are missing.');
    // Sorting by a usage column needs every answer: sort again now.
    if (['last_used_at', 'spike'].includes(state.sort.column)) renderKeys();
  }

  /** last_used_at from the key's usage, or null. */
  function lastUsed(id) {
    const u = state.usage.get(id);
    return u && !u.error ? (u.last_used_at ?? null) : null;
  }

  /** Whether the key's last 30 days hold a spike (null while unknown). */
  function hasSpike(id) {
    const u = state.usage.get(id);
    if (!u || u.error || !Array.isArray(u.days)) return null;
    return spikeDays(u.days).some((d) => d.spike);
  }

  /** The value a column sorts by. */
  function sortValue(key, column) {
    switch (column) {
      case 'status': return keyStatus(key).kind;
      case 'scopes': return (key.scopes || []).join(',');
      case 'expires_at': return key.expires_at ?? Number.POSITIVE_INFINITY; // never = latest
      case 'last_used_at': return lastUsed(key.id) ?? Number.NEGATIVE_INFINITY;
      case 'spike': return hasSpike(key.id) ? 1 : 0;
      default: return key[column];
    }
  }

  function compareValues(a, b) {
    if (typeof a === 'number' && typeof b === 'number') return a - b;
    return String(a ?? '').localeCompare(String(b ?? ''), undefined, { sensitivity: 'base', numeric: true });
  }

  /** The keys that pass the filters, in the chosen order. */
  function visibleKeys() {
    const owner = $('filter-owner').value.trim().toLowerCase();
    const status = $('filter-status').value;
    const { column, dir } = state.sort;
    const sign = dir === 'asc' ? 1 : -1;
    return state.keys
      .filter((k) => !owner || String(k.owner).toLowerCase().includes(owner))
      .filter((k) => status === 'all' || keyStatus(k).kind === status)
      .sort((a, b) => sign * compareValues(sortValue(a, column), sortValue(b, column))
        || compareValues(b.created_at, a.created_at));
  }

  /** Renders the keys table body and header sort state. */
  function renderKeys() {
    const rows = visibleKeys().map(keyRow);
    const body = $('keys-body');
    if (rows.length === 0) {
      const text = state.keys.length ? 'No key matches the filters.' : 'No keys yet: create one above.';
      body.replaceChildren(el('tr', { class: 'empty' }, el('td', { colspan: 12 }, text)));
    } else {
      body.replaceChildren(...rows);
    }
    $('keys-count').textContent = 'Showing ' + rows.length + ' of ' + state.keys.length + ' key(s).';
    for (const th of document.querySelectorAll('#keys-table th[data-sort]')) {
      const active = th.dataset.sort === state.sort.column;
      th.setAttribute('aria-sort', active ? (state.sort.dir === 'asc' ? 'ascending' : 'descending') : 'none');
    }
  }

  /** One row of the keys table. */
  function keyRow(key) {
    const status = keyStatus(key);
    const canRotate = status.kind === 'active';
    const canRevoke = status.kind !== 'revoked';
    const label = key.name + ' (' + key.hint + ')';
    const tr = el('tr', { 'data-key-id': key.id, class: 'status-' + status.kind },
      el('td', { class: 'name' }, key.name),
      el('td', { class: 'hint' }, el('code', null, key.hint)),
      el('td', { class: 'owner' }, key.owner),
      el('td', { class: 'scopes' }, (key.scopes || []).join(', ')),
      el('td', { class: 'num rpm' }, fmtNum(key.rate_limit_per_minute)),
      el('td', { class: 'num daily' }, fmtNum(key.daily_limit)),
      el('td', { class: 'status' }, status.label),
      el('td', { class: 'created' }, timeNode(key.created_at)),
      el('td', { class: 'expires' }, timeNode(key.expires_at, 'never')),
      el('td', { class: 'last-used' }),
      el('td', { class: 'spike-flag' }),
      el('td', { class: 'actions' }, el('div', { class: 'row-buttons' },
        el('button', { type: 'button', class: 'usage small secondary', 'aria-label': 'Usage of ' + label }, 'Usage'),
        el('button', { type: 'button', class: 'rotate small secondary', disabled: !canRotate, 'aria-label': 'Rotate ' + label }, 'Rotate'),
        el('button', { type: 'button', class: 'revoke small danger', disabled: !canRevoke, 'aria-label': 'Revoke ' + label }, 'Revoke'))));
    fillUsageCells(tr, key.id);
    return tr;
  }

  /** Fills the last-used and spike cells of a row from state.usage. */
  function fillUsageCells(tr, id) {
    const u = state.usage.get(id);
    const lastCell = tr.querySelector('td.last-used');
    const spikeCell = tr.querySelector('td.spike-flag');
    if (!u) {
      lastCell.replaceChildren(el('span', { class: 'muted' }, '…'));
      spikeCell.replaceChildren();
      return;
    }
    if (u.error) {
      lastCell.replaceChildren(el('span', { class: 'muted', title: u.error }, '?'));
      spikeCell.replaceChildren();
      return;
    }
    lastCell.replaceChildren(timeNode(u.last_used_at ?? null, 'never'));
    spikeCell.replaceChildren(hasSpike(id) ? el('span', { class: 'flag' }, 'spike') : '');
  }

  /** Updates one row in place once its usage arrives. */
  function updateUsageCells(id) {
    const tr = document.querySelector('#keys-body tr[data-key-id="' + CSS.escape(id) + '"]');
    if (tr) fillUsageCells(tr, id);
  }

  /** A click on a sortable header: toggles the direction, or picks the column. */
  function onSortClick(event) {
    const th = event.target.closest('th[data-sort]');
    if (!th) return;
    const column = th.dataset.sort;
    if (state.sort.column === column) {
      state.sort.dir = state.sort.dir === 'asc' ? 'desc' : 'asc';
    } else {
      state.sort = { column, dir: 'asc' };
    }
    renderKeys();
  }

  /** Row buttons: usage, rotate, revoke. */
  function onRowClick(event) {
    const button = event.target.closest('button');
    const tr = event.target.closest('tr[data-key-id]');
    if (!button || !tr || button.disabled) return;
    const key = state.keys.find((k) => k.id === tr.dataset.keyId);
    if (!key) return;
    if (button.classList.contains('revoke')) revokeKey(key);
    else if (button.classList.contains('rotate')) rotateKey(key);
    else if (button.classList.contains('usage')) openUsage(key.id);
  }

  /* ------------------------------------------------------------------ */
  /* Revoke and rotate                                                   */
  /* ------------------------------------------------------------------ */

  async function revokeKey(key) {
    const ok = window.confirm('Revoke the key "' + key.name + '" (' + key.hint + ')?\n' +
      'Every request with it is refused from now on. This cannot be undone.');
    if (!ok) return;
    try {
      await api('DELETE', keyPath(key.id));
      clearError();
      showStatus('Key "' + key.name + '" revoked.');
      await loadKeys();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) showError(describeError(err, 'Revoking the key'));
    }
  }

  /** Asks for a grace period in minutes; null when cancelled or invalid. */
  function askGraceMinutes(key) {
    const answer = window.prompt('Rotate "' + key.name + '" (' + key.hint + ').\n' +
      'For how many minutes should the old key keep working beside the new one? ' +
      '(0 to stop it now, at most ' + MAX_GRACE_MINUTES + ')', '60');
    if (answer === null) return null;
    const text = answer.trim() === '' ? '60' : answer.trim();
    const minutes = Number(text);
    if (!/^\d+$/.test(text) || minutes > MAX_GRACE_MINUTES) {
      showError('The grace period must be a whole number of minutes from 0 to ' + MAX_GRACE_MINUTES + '; got "' + answer + '".');
      return null;
    }
    return minutes;
  }

  async function rotateKey(key) {
    const minutes = askGraceMinutes(key);
    if (minutes === null) return;
    try {
      const created = await api('POST', keyPath(key.id) + '/rotate', { grace_period_seconds: minutes * 60 });
      clearError();
      showNewKey(created, { rotatedFrom: key, graceMinutes: minutes });
      showStatus('Key "' + key.name + '" rotated.');
      await loadKeys();
      revealNewKey();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) showError(describeError(err, 'Rotating the key'));
    }
  }

  /* ------------------------------------------------------------------ */
  /* The once-only new key panel (#new-key)                              */
  /* ------------------------------------------------------------------ */

  /** Removes the panel and with it the key text. */
  function eraseNewKey() {
    const panel = $('new-key');
    if (panel) panel.remove();
  }

  /** Shows a freshly created key once, with copy, export line and next steps. */
  function showNewKey(created, options = {}) {
    eraseNewKey();
    const { rotatedFrom, graceMinutes } = options;
    const exportLine = 'export NOVA_AI_API_KEY=' + created.key;
    const copyStatus = el('span', { id: 'new-key-copy-status', class: 'help', role: 'status' });
    const copyButton = el('button', { type: 'button', id: 'new-key-copy' }, 'Copy key');
    const dismiss = el('button', { type: 'button', id: 'new-key-dismiss', class: 'secondary' }, 'I have copied it: dismiss');
    const title = rotatedFrom
      ? 'New key for "' + created.name + '" (rotated)'
      : 'New key "' + created.name + '" created';

    const steps = rotatedFrom ? rotationSteps(rotatedFrom, created, graceMinutes) : null;
    const panel = el('section', { id: 'new-key', class: 'card new-key', 'aria-labelledby': 'new-key-title', tabindex: '-1' },
      el('h2', { id: 'new-key-title' }, title),
      el('p', { class: 'warning', id: 'new-key-warning' }, 'Copy it now: you will not see it again.'),
      el('div', { class: 'key-box' },
        el('code', { id: 'new-key-value', class: 'secret' }, created.key),
        copyButton, copyStatus),
      el('p', null, 'Use it in your app:'),
      el('pre', { class: 'export' }, el('code', { id: 'new-key-export' }, exportLine)),
      steps,
      el('div', { class: 'form-actions' }, dismiss));

    copyButton.addEventListener('click', () => copyKey(created.key, copyStatus));
    dismiss.addEventListener('click', () => {
      eraseNewKey();
      showStatus('The new key was erased from the page.');
    });
    $('new-key-slot').append(panel);
    revealNewKey();
  }

  /** Scrolls the new key panel into view and focuses it (again after a reload). */
  function revealNewKey() {
    const panel = $('new-key');
    if (!panel) return;
    panel.scrollIntoView({ block: 'start' });
    panel.focus({ preventScroll: true });
  }

  /** The rotation checklist: new key, update the app, test, retire the old one. */
  function rotationSteps(oldKey, created, graceMinutes) {
    const until = nowSeconds() + graceMinutes * 60;
    const retire = graceMinutes > 0
      ? 'Revoke the old key (' + oldKey.hint + ') once nothing uses it, or let its grace period end at ' + fmtTime(until) + ' UTC.'
      : 'The old key (' + oldKey.hint + ') stopped working at once (no grace period).';
    const revokeOld = el('button', { type: 'button', id: 'new-key-revoke-old', class: 'small danger' }, 'Revoke the old key now');
    revokeOld.addEventListener('click', async () => {
      const current = state.keys.find((k) => k.id === oldKey.id) || oldKey;
      await revokeKey(current);
    });
    return el('div', { class: 'rotation-steps' },
      el('h3', null, 'Rotation, step by step'),
      el('ol', { id: 'rotation-steps' },
        el('li', null, 'Create the new key: done, it is shown above (' + created.hint + ').'),
        el('li', null, 'Update the app: set NOVA_AI_API_KEY to the new key (the export line above) and restart or redeploy it.'),
        el('li', null, 'Test it: send a request with the new key and check it is admitted (see its usage below the table).'),
        el('li', null, retire, graceMinutes > 0 ? ' ' : null, graceMinutes > 0 ? revokeOld : null)));
  }

  /** Copies text with the Clipboard API, or selects it and uses execCommand. */
  async function copyKey(text, statusNode) {
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
        statusNode.textContent = 'Copied.';
        return;
      }
    } catch (_) { /* fall back below */ }
    const node = $('new-key-value');
    const range = document.createRange();
    range.selectNodeContents(node);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    let ok = false;
    try { ok = document.execCommand('copy'); } catch (_) { ok = false; }
    statusNode.textContent = ok ? 'Copied.' : 'Selected: press Ctrl+C (⌘C) to copy.';
  }

  /* ------------------------------------------------------------------ */
  /* Create form                                                         */
  /* ------------------------------------------------------------------ */

  /** Maps an API param ("scopes[0]") to a field-error name ("scopes"). */
  function fieldOf(param) {
    if (!param) return null;
    const base = String(param).replace(/\[.*$/, '').replace(/\..*$/, '');
    return document.querySelector('#create-form .field-error[data-for="' + CSS.escape(base) + '"]') ? base : null;
  }

  /** The input that belongs to a field-error name. */
  function inputOf(field) {
    const ids = { name: 'create-name', owner: 'create-owner', rate_limit_per_minute: 'create-rpm', daily_limit: 'create-daily', expires_at: 'create-expires' };
    return ids[field] ? $(ids[field]) : document.querySelector('#create-form input[name=scope]');
  }

  function setFieldError(field, text) {
    const box = document.querySelector('#create-form .field-error[data-for="' + field + '"]');
    box.textContent = text;
    box.hidden = false;
    const input = inputOf(field);
    if (field === 'scopes') {
      for (const cb of document.querySelectorAll('#create-form input[name=scope]')) cb.setAttribute('aria-invalid', 'true');
    } else if (input) {
      input.setAttribute('aria-invalid', 'true');
    }
  }

  function clearFieldErrors() {
    for (const box of document.querySelectorAll('#create-form .field-error')) {
      box.textContent = '';
      box.hidden = true;
    }
    for (const input of document.querySelectorAll('#create-form [aria-invalid]')) input.removeAttribute('aria-invalid');
  }

  /** datetime-local text read as UTC, in Unix seconds (NaN when malformed). */
  function utcSeconds(value) {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(value);
    if (!m) return Number.NaN;
    return Math.floor(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0)) / 1000);
  }

  /** Checks the form; answers {body} or {errors: {field: text}}. */
  function readCreateForm() {
    const errors = {};
    const name = $('create-name').value.trim();
    const owner = $('create-owner').value.trim();
    for (const [field, value] of [['name', name], ['owner', owner]]) {
      if (!value) errors[field] = 'Required.';
      else if ([...value].length > MAX_LABEL_CHARS) errors[field] = 'At most ' + MAX_LABEL_CHARS + ' characters.';
      else if (/\p{Cc}/u.test(value)) errors[field] = 'No control characters (tabs, line breaks).';
    }
    const numbers = {};
    for (const [field, id] of [['rate_limit_per_minute', 'create-rpm'], ['daily_limit', 'create-daily']]) {
      const [min, max] = LIMITS[field];
      const text = $(id).value.trim();
      const n = Number(text);
      if (text === '' || !Number.isInteger(n) || n < min || n > max || $(id).validity.badInput) {
        errors[field] = 'Enter a whole number from ' + min + ' to ' + max + '.';
      } else {
        numbers[field] = n;
      }
    }
    let expiresAt = null;
    const expiresText = $('create-expires').value;
    if ($('create-expires').validity.badInput) {
      errors.expires_at = 'Enter a complete date and time, or leave it empty.';
    } else if (expiresText) {
      expiresAt = utcSeconds(expiresText);
      if (Number.isNaN(expiresAt)) errors.expires_at = 'Enter a valid date and time (UTC).';
      else if (expiresAt <= nowSeconds()) errors.expires_at = 'The expiry must be in the future (times are UTC).';
    }
    const scopes = [...document.querySelectorAll('#create-form input[name=scope]:checked')].map((cb) => cb.value);
    if (scopes.length === 0) errors.scopes = 'Pick at least one scope.';
    if (Object.keys(errors).length) return { errors };
    const body = { name, owner, rate_limit_per_minute: numbers.rate_limit_per_minute, daily_limit: numbers.daily_limit, scopes };
    if (expiresAt !== null) body.expires_at = expiresAt;
    return { body };
  }

  async function onCreate(event) {
    event.preventDefault();
    clearFieldErrors();
    const { body, errors } = readCreateForm();
    if (errors) {
      for (const [field, text] of Object.entries(errors)) setFieldError(field, text);
      const first = inputOf(Object.keys(errors)[0]);
      if (first) first.focus();
      return;
    }
    const submit = $('create-submit');
    submit.disabled = true;
    try {
      const created = await api('POST', '/v1/keys', body);
      clearError();
      resetCreateForm();
      showNewKey(created);
      showStatus('Key "' + created.name + '" created.');
      await loadKeys();
      revealNewKey();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      const field = err instanceof ApiError && err.status === 400 ? fieldOf(err.param) : null;
      if (field) {
        setFieldError(field, err.message);
        const input = inputOf(field);
        if (input) input.focus();
      } else {
        showError(describeError(err, 'Creating the key'));
      }
    } finally {
      submit.disabled = false;
    }
  }

  /** Back to the defaults: 60/min, 1000/day, no expiry, every scope. */
  function resetCreateForm() {
    $('create-form').reset();
    $('create-rpm').value = '60';
    $('create-daily').value = '1000';
    for (const cb of document.querySelectorAll('#create-form input[name=scope]')) cb.checked = true;
  }

  /* ------------------------------------------------------------------ */
  /* Usage: spikes, chart, table                                         */
  /* ------------------------------------------------------------------ */

  /** Refused count of one reason on a day. */
  const reasonCount = (day, reason) => Number((day.denied_by_reason || {})[reason] || 0);

  /**
   * The last 30 of the days, each with spike flags. A day is a spike when
   * its admitted (or refused) count is more than 3x the mean of the (up to)
   * 7 days before it in the answer, and at least 20.
   */
  function spikeDays(days) {
    // A day needs the 7 days before it: the first days of the answer
    // cannot be judged (and are not flagged).
    const isSpike = (i, field) => {
      if (i < 7) return false;
      const value = Number(days[i][field] || 0);
      if (value < 20) return false;
      let sum = 0;
      for (let j = i - 7; j < i; j++) sum += Number(days[j][field] || 0);
      return value * 7 > 3 * sum;
    };
    const out = days.map((day, i) => {
      const admittedSpike = isSpike(i, 'admitted');
      const deniedSpike = isSpike(i, 'denied');
      return { ...day, admittedSpike, deniedSpike, spike: admittedSpike || deniedSpike };
    });
    return out.slice(-30);
  }

  /** The reasons to show: the known five, then any others the answer holds. */
  function reasonsOf(days) {
    const extra = new Set();
    for (const d of days) for (const r of Object.keys(d.denied_by_reason || {})) if (!REASONS.includes(r)) extra.add(r);
    return [...REASONS, ...[...extra].sort()];
  }

  /** Opens #usage for a key and loads its usage. */
  /** Empties the usage panel's numbers, chart and table, saying `text`. */
  function resetUsagePanel(text) {
    for (const id of ['usage-minute', 'usage-day', 'usage-last-used', 'usage-total-admitted',
      'usage-total-refused', 'usage-today-admitted', 'usage-today-refused',
      'usage-30-admitted', 'usage-30-refused']) {
      const cell = $(id);
      if (cell) cell.textContent = '–';
    }
    for (const id of ['usage-minute-reset', 'usage-day-reset']) {
      const cell = $(id);
      if (cell) cell.textContent = '';
    }
    $('usage-chart').replaceChildren(svgEl('text', { x: 450, y: 160, 'text-anchor': 'middle', class: 'tick' }, text));
    $('usage-legend').replaceChildren();
    $('usage-head').replaceChildren();
    $('usage-body').replaceChildren();
  }

  function openUsage(id) {
    state.usageKeyId = id;
    const key = state.keys.find((k) => k.id === id);
    $('usage-title').textContent = key ? 'Usage of "' + key.name + '" (' + key.hint + ')' : 'Usage of ' + id;
    resetUsagePanel('Loading…');
    $('usage').hidden = false;
    $('usage').scrollIntoView({ block: 'start' });
    loadUsage();
  }

  async function loadUsage() {
    const id = state.usageKeyId;
    if (!id) return;
    const button = $('usage-reload');
    button.disabled = true;
    try {
      const usage = await api('GET', keyPath(id) + '/usage');
      if (id !== state.usageKeyId) return;
      state.usage.set(id, usage);
      updateUsageCells(id);
      renderUsage(usage);
      showStatus('Usage loaded.');
    } catch (err) {
      if (id === state.usageKeyId) resetUsagePanel('The usage could not be loaded.');
      if (!(err instanceof ApiError && err.status === 401)) showError(describeError(err, 'Loading the usage'));
    } finally {
      button.disabled = false;
    }
  }

  /** Fills the quota, totals, chart and table of #usage. */
  function renderUsage(usage) {
    const days = spikeDays(Array.isArray(usage.days) ? usage.days : []);
    const reasons = reasonsOf(days);
    const limits = usage.limits;
    if (limits && limits.minute && limits.day) {
      $('usage-minute').textContent = fmtNum(limits.minute.remaining) + ' of ' + fmtNum(limits.minute.limit) + ' left this minute';
      $('usage-minute-reset').textContent = '(full again in ' + fmtDuration(limits.minute.reset) + ')';
      $('usage-day').textContent = fmtNum(limits.day.remaining) + ' of ' + fmtNum(limits.day.limit) + ' left today';
      $('usage-day-reset').textContent = '(resets in ' + fmtDuration(limits.day.reset) + ', at UTC midnight)';
    } else {
      $('usage-minute').textContent = 'unknown';
      $('usage-day').textContent = 'unknown';
      $('usage-minute-reset').textContent = '';
      $('usage-day-reset').textContent = '';
    }
    $('usage-last-used').replaceChildren(timeNode(usage.last_used_at ?? null, 'never'));
    const total = usage.total || {};
    const today = usage.today || {};
    $('usage-total-admitted').textContent = fmtNum(total.admitted);
    $('usage-total-refused').textContent = fmtNum(total.denied);
    $('usage-today-admitted').textContent = fmtNum(today.admitted);
    $('usage-today-refused').textContent = fmtNum(today.denied);
    $('usage-30-admitted').textContent = fmtNum(days.reduce((s, d) => s + Number(d.admitted || 0), 0));
    $('usage-30-refused').textContent = fmtNum(days.reduce((s, d) => s + Number(d.denied || 0), 0));
    renderChart(days, reasons);
    renderLegend(reasons);
    renderUsageTable(days, reasons);
  }

  /** Series of the chart: admitted first, then each refusal reason. */
  function seriesOf(reasons) {
    return [
      { id: 'admitted', label: 'admitted', pattern: 'pat-admitted', value: (d) => Number(d.admitted || 0) },
      ...reasons.map((r, i) => ({
        id: r,
        label: 'refused: ' + r.replaceAll('_', ' '),
        pattern: 'pat-reason-' + Math.min(i, 5),
        value: (d) => reasonCount(d, r),
      })),
    ];
  }

  /** Fill patterns: each series differs by texture, not colour alone. */
  function chartDefs() {
    const pat = (id, children, extra) => svgEl('pattern', { id, patternUnits: 'userSpaceOnUse', width: 8, height: 8, ...extra }, children);
    const bg = (cls) => svgEl('rect', { width: 8, height: 8, class: cls });
    return svgEl('defs', null,
      pat('pat-admitted', [bg('pf-admitted')]),
      pat('pat-reason-0', [bg('pf-r0'), svgEl('line', { x1: 0, y1: 0, x2: 0, y2: 8, class: 'ps' })], { patternTransform: 'rotate(45)' }),
      pat('pat-reason-1', [bg('pf-r1'), svgEl('path', { d: 'M0 4H8M4 0V8', class: 'ps' })]),
      pat('pat-reason-2', [bg('pf-r2'), svgEl('circle', { cx: 4, cy: 4, r: 1.8, class: 'pd' })]),
      pat('pat-reason-3', [bg('pf-r3'), svgEl('line', { x1: 0, y1: 4, x2: 8, y2: 4, class: 'ps' })]),
      pat('pat-reason-4', [bg('pf-r4'), svgEl('line', { x1: 0, y1: 0, x2: 0, y2: 8, class: 'ps' })], { patternTransform: 'rotate(-45)' }),
      pat('pat-reason-5', [bg('pf-r5'), svgEl('rect', { width: 4, height: 4, class: 'pd' }), svgEl('rect', { x: 4, y: 4, width: 4, height: 4, class: 'pd' })]));
  }

  /** Round tick step for a maximum: 1, 2 or 5 times a power of ten. */
  function tickStep(max) {
    const rough = Math.max(1, max / 5);
    const pow = 10 ** Math.floor(Math.log10(rough));
    const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= rough);
    return Math.max(1, step);
  }

  /** Draws the stacked bar chart into svg#usage-chart. */
  function renderChart(days, reasons) {
    const svg = $('usage-chart');
    const W = 900, H = 320, left = 64, right = 16, top = 28, bottom = 56;
    const plotW = W - left - right, plotH = H - top - bottom;
    const series = seriesOf(reasons);
    const totals = days.map((d) => Number(d.admitted || 0) + reasons.reduce((s, r) => s + reasonCount(d, r), 0));
    const step = tickStep(Math.max(1, ...totals));
    const yMax = Math.max(step, Math.ceil(Math.max(1, ...totals) / step) * step);
    const y = (v) => top + plotH - (v / yMax) * plotH;
    const slot = plotW / Math.max(1, days.length);
    const barW = Math.max(4, slot * 0.7);

    const nodes = [svgEl('title', null, 'Requests per UTC day, last 30 days, admitted and refused by reason'), chartDefs()];
    // Y axis: grid lines, tick labels and a title.
    const yAxis = svgEl('g', { class: 'axis y-axis' });
    for (let v = 0; v <= yMax; v += step) {
      yAxis.append(svgEl('line', { x1: left, x2: W - right, y1: y(v), y2: y(v), class: v === 0 ? 'axis-line' : 'grid' }));
      yAxis.append(svgEl('text', { x: left - 8, y: y(v) + 4, 'text-anchor': 'end', class: 'tick' }, fmtNum(v)));
    }
    yAxis.append(svgEl('text', { x: 16, y: top + plotH / 2, 'text-anchor': 'middle', class: 'axis-title', transform: 'rotate(-90 16 ' + (top + plotH / 2) + ')' }, 'Requests per day'));
    nodes.push(yAxis);

    // One group per day: stacked segments, a tooltip, a spike marker.
    const bars = svgEl('g', { class: 'bars' });
    days.forEach((d, i) => {
      const x = left + i * slot + (slot - barW) / 2;
      const g = svgEl('g', { class: 'day' + (d.spike ? ' spike' : ''), 'data-date': d.date });
      const parts = series.map((s) => s.label + ' ' + s.value(d)).filter((t) => !t.endsWith(' 0'));
      g.append(svgEl('title', null, d.date + ': ' + (parts.length ? parts.join(', ') : 'no requests') + (d.spike ? ' (spike)' : '')));
      let base = 0;
      for (const s of series) {
        const v = s.value(d);
        if (v <= 0) continue;
        g.append(svgEl('rect', { x, y: y(base + v), width: barW, height: Math.max(0.5, y(base) - y(base + v)), fill: 'url(#' + s.pattern + ')', class: 'seg seg-' + s.id }));
        base += v;
      }
      if (d.spike) {
        const what = [d.admittedSpike ? 'admitted' : null, d.deniedSpike ? 'refused' : null].filter(Boolean).join('+');
        g.append(svgEl('path', { d: 'M' + (x + barW / 2) + ' ' + (y(base) - 4) + 'l-5 -8h10z', class: 'spike-marker' }));
        g.append(svgEl('text', { x: x + barW / 2, y: y(base) - 15, 'text-anchor': 'middle', class: 'spike-label' }, 'spike'));
        g.setAttribute('aria-label', d.date + ': spike in ' + what);
      }
      bars.append(g);
    });
    nodes.push(bars);

    // X axis: every 5th date (and the last), as MM-DD, plus a title.
    const xAxis = svgEl('g', { class: 'axis x-axis' });
    days.forEach((d, i) => {
      if (i % 5 !== 0 && i !== days.length - 1) return;
      const cx = left + i * slot + slot / 2;
      xAxis.append(svgEl('line', { x1: cx, x2: cx, y1: top + plotH, y2: top + plotH + 5, class: 'axis-line' }));
      xAxis.append(svgEl('text', { x: cx, y: top + plotH + 18, 'text-anchor': 'middle', class: 'tick' }, String(d.date).slice(5)));
    });
    xAxis.append(svgEl('text', { x: left + plotW / 2, y: H - 10, 'text-anchor': 'middle', class: 'axis-title' }, 'Date (UTC, month-day)'));
    nodes.push(xAxis);
    if (days.length === 0) nodes.push(svgEl('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'tick' }, 'No usage data'));
    svg.replaceChildren(...nodes);
  }

  /** The legend: a swatch with the same pattern, and a label, per series. */
  function renderLegend(reasons) {
    const items = seriesOf(reasons).map((s) => el('li', { 'data-series': s.id },
      svgEl('svg', { width: 18, height: 14, viewBox: '0 0 18 14', 'aria-hidden': 'true', class: 'swatch' },
        svgEl('rect', { x: 0.5, y: 0.5, width: 17, height: 13, fill: 'url(#' + s.pattern + ')', class: 'swatch-rect' })),
      el('span', null, s.label)));
    items.push(el('li', { 'data-series': 'spike' },
      svgEl('svg', { width: 18, height: 14, viewBox: '0 0 18 14', 'aria-hidden': 'true', class: 'swatch' },
        svgEl('path', { d: 'M9 13l-6 -10h12z', class: 'spike-marker' })),
      el('span', null, 'spike (over 3× the previous 7-day mean, and at least 20)')));
    $('usage-legend').replaceChildren(...items);
  }

  /** The table view of the same numbers, spike days marked. */
  function renderUsageTable(days, reasons) {
    $('usage-head').replaceChildren(el('tr', null,
      el('th', { scope: 'col' }, 'Date (UTC)'),
      el('th', { scope: 'col', class: 'num' }, 'Admitted'),
      reasons.map((r) => el('th', { scope: 'col', class: 'num reason' }, 'Refused: ' + r.replaceAll('_', ' '))),
      el('th', { scope: 'col', class: 'num' }, 'Refused total'),
      el('th', { scope: 'col' }, 'Spike')));
    const rows = days.slice().reverse().map((d) => el('tr', { class: d.spike ? 'spike' : null, 'data-date': d.date },
      el('th', { scope: 'row' }, d.date),
      el('td', { class: 'num admitted' }, fmtNum(d.admitted)),
      reasons.map((r) => el('td', { class: 'num', 'data-reason': r }, fmtNum(reasonCount(d, r)))),
      el('td', { class: 'num denied' }, fmtNum(d.denied)),
      el('td', null, d.spike ? 'spike (' + [d.admittedSpike ? 'admitted' : null, d.deniedSpike ? 'refused' : null].filter(Boolean).join(', ') + ')' : '')));
    $('usage-body').replaceChildren(...rows);
  }

  function closeUsage() {
    state.usageKeyId = null;
    $('usage').hidden = true;
  }

  /* ------------------------------------------------------------------ */
  /* Start                                                               */
  /* ------------------------------------------------------------------ */

  /** The status of every key now, as one string, to notice a change. */
  const statusKinds = () => state.keys.map((k) => keyStatus(k).kind).join();

  function init() {
    // Statuses move with time (a grace period ends, a key expires): the
    // table is drawn again when one has.
    let kinds = '';
    setInterval(() => {
      const now = statusKinds();
      if (now !== kinds) {
        kinds = now;
        if (state.keys.length) renderKeys();
      }
    }, 15000);
    // A page kept for back/forward navigation keeps no new key.
    window.addEventListener('pagehide', eraseNewKey);
    $('signin').addEventListener('submit', onSignIn);
    $('signout').addEventListener('click', onSignOut);
    $('create-form').addEventListener('submit', onCreate);
    $('keys-table').querySelector('thead').addEventListener('click', onSortClick);
    $('keys-body').addEventListener('click', onRowClick);
    $('filter-owner').addEventListener('input', renderKeys);
    $('filter-status').addEventListener('change', renderKeys);
    $('keys-reload').addEventListener('click', async () => {
      if (await loadKeys()) showStatus('Keys reloaded.');
    });
    $('usage-reload').addEventListener('click', loadUsage);
    $('usage-close').addEventListener('click', closeUsage);
    // Editing a field clears its error.
    $('create-form').addEventListener('input', (event) => {
      const name = event.target.name === 'scope' ? 'scopes' : event.target.name;
      const box = document.querySelector('#create-form .field-error[data-for="' + CSS.escape(name || '') + '"]');
      if (box && !box.hidden) { box.hidden = true; box.textContent = ''; event.target.removeAttribute('aria-invalid'); }
    });

    if (getToken()) {
      showSignedIn(true);
      loadKeys();
    } else {
      showSignedIn(false);
      $('admin-token').focus();
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
