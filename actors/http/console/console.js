// The registryd web console: a single page over /console/api/* (reads) and the Nacos Open API
// (writes, so they take its validated path). Every value from the registry reaches the page as
// text (textContent, createElement), never as markup: metadata may hold anything.
'use strict';

const state = {
  auth: false,            // the node requires a login
  token: sessionStorage.getItem('registryd.token') || '',
  user: sessionStorage.getItem('registryd.user') || '',
  pollMs: 1000,
  generation: 0,          // bumped on every route change: stale polls stop
  notice: null,           // {error: bool, text} of the last action, shown on the service page
};

// -- DOM helpers ------------------------------------------------------------------------------

/// An element with attributes and children; strings become text nodes.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = String(v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return e;
}

function yesNo(b) {
  return el('span', { class: b ? 'yes' : 'no', 'data-value': String(b) }, b ? 'yes' : 'no');
}

function main() { return document.getElementById('main'); }

function setUpdated(text) { document.getElementById('updated').textContent = text; }

// -- the node ---------------------------------------------------------------------------------

class NodeError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function authHeaders() {
  return state.token ? { accessToken: state.token } : {};
}

/// GET a console endpoint; resolves to its JSON, rejects with the node's text.
async function getJson(path, params) {
  const query = params ? '?' + new URLSearchParams(params).toString() : '';
  const res = await fetch(path + query, { headers: authHeaders(), cache: 'no-store' });
  const text = await res.text();
  let body = null;
  try { body = JSON.parse(text); } catch (e) { body = null; }
  if (!res.ok) {
    const message = body && body.message ? body.message : text;
    throw new NodeError(res.status, message);
  }
  return body;
}

/// A write through the Open API (form body); resolves to the reply text, rejects with the node's.
async function write(method, path, params) {
  const res = await fetch(path, {
    method,
    headers: Object.assign({ 'Content-Type': 'application/x-www-form-urlencoded' }, authHeaders()),
    body: new URLSearchParams(params).toString(),
  });
  const text = await res.text();
  if (!res.ok) throw new NodeError(res.status, text || ('HTTP ' + res.status));
  return text;
}

/// A refusal for lack of a login sends the user to the login form.
function needsLogin(err) {
  return state.auth && err instanceof NodeError && (err.status === 403 || err.status === 401);
}

function showError(container, err) {
  if (needsLogin(err)) { logout(); return; }
  container.replaceChildren(el('p', { class: 'error', id: 'load-error' }, err.message));
}

// -- confirmation -----------------------------------------------------------------------------

/// Asks before an action; `input` ({name, value}) adds a field. Resolves to the value (or true),
/// or null when cancelled.
function confirmAction(text, input) {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  const label = document.getElementById('confirm-input-label');
  const field = document.getElementById('confirm-input');
  label.hidden = !input;
  if (input) {
    document.getElementById('confirm-input-name').textContent = input.name;
    field.value = input.value;
  }
  return new Promise((resolve) => {
    const ok = document.getElementById('confirm-ok');
    const cancel = document.getElementById('confirm-cancel');
    const finish = (value) => {
      ok.removeEventListener('click', onOk);
      cancel.removeEventListener('click', onCancel);
      dialog.removeEventListener('cancel', onCancel); // Escape
      if (dialog.open) dialog.close();
      resolve(value);
    };
    const onOk = (ev) => { ev.preventDefault(); finish(input ? field.value : true); };
    const onCancel = (ev) => { ev.preventDefault(); finish(null); };
    ok.addEventListener('click', onOk);
    cancel.addEventListener('click', onCancel);
    dialog.addEventListener('cancel', onCancel);
    dialog.showModal();
    if (input) field.focus();
  });
}

// -- login ------------------------------------------------------------------------------------

function logout() {
  state.token = '';
  state.user = '';
  sessionStorage.removeItem('registryd.token');
  sessionStorage.removeItem('registryd.user');
  route();
}

function renderLogin() {
  const error = el('p', { class: 'error', id: 'login-error' });
  const user = el('input', { id: 'username', name: 'username', autocomplete: 'username', required: true });
  const password = el('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password' });
  const form = el('form', { class: 'login', id: 'login' },
    el('h1', { text: 'Log in' }),
    el('label', {}, 'User', user),
    el('label', {}, 'Password', password),
    el('button', { type: 'submit', id: 'login-submit' }, 'Log in'),
    error);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    try {
      const res = await fetch('/nacos/v1/auth/login', {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username: user.value, password: password.value }).toString(),
      });
      const text = await res.text();
      if (!res.ok) throw new NodeError(res.status, text);
      const body = JSON.parse(text);
      state.token = body.accessToken;
      state.user = user.value;
      sessionStorage.setItem('registryd.token', state.token);
      sessionStorage.setItem('registryd.user', state.user);
      route();
    } catch (err) {
      error.textContent = err.message;
    }
  });
  main().replaceChildren(form);
  user.focus();
}

/// Writes are offered when auth is off, or to a logged-in user.
function canWrite() { return !state.auth || !!state.token; }

// -- services ---------------------------------------------------------------------------------

function renderServices(q) {
  const ns = el('input', { id: 'filter-namespace', value: q.get('namespaceId') || 'public' });
  const group = el('input', { id: 'filter-group', value: q.get('groupName') || 'DEFAULT_GROUP' });
  const search = el('input', { id: 'filter-search', value: q.get('search') || '', placeholder: 'part of a name' });
  const page = Math.max(1, parseInt(q.get('pageNo') || '1', 10) || 1);
  const pageSize = q.get('pageSize') || '';
  const apply = (pageNo) => {
    const p = new URLSearchParams({ namespaceId: ns.value, groupName: group.value, search: search.value, pageNo: String(pageNo) });
    if (pageSize) p.set('pageSize', pageSize);
    location.hash = '#/services?' + p.toString();
  };
  const form = el('form', { class: 'filters', id: 'filters' },
    el('label', {}, 'Namespace', ns),
    el('label', {}, 'Group', group),
    el('label', {}, 'Search', search),
    el('button', { type: 'submit', id: 'filter-apply' }, 'Apply'));
  form.addEventListener('submit', (ev) => { ev.preventDefault(); apply(1); });
  const region = el('div', { id: 'services-region' });
  main().replaceChildren(el('h1', { text: 'Services' }), form, region);

  const params = { namespaceId: ns.value, groupName: group.value, search: search.value, pageNo: String(page) };
  if (pageSize) params.pageSize = pageSize;
  poll(() => getJson('/console/api/services', params), (data) => {
    const rows = data.services.map((s) => {
      const link = '#/service?' + new URLSearchParams({ namespaceId: s.namespaceId, groupName: s.groupName, serviceName: s.name }).toString();
      if (s.error) {
        return el('tr', { 'data-service': s.name },
          el('td', { class: 'c-name' }, el('a', { href: link }, s.name)),
          el('td', { colspan: 7, class: 'error' }, s.error));
      }
      return el('tr', { 'data-service': s.name },
        el('td', { class: 'c-name' }, el('a', { href: link }, s.name)),
        el('td', { class: 'c-group' }, s.groupName),
        el('td', { class: 'num c-instances' }, String(s.instances)),
        el('td', { class: 'num c-healthy' }, String(s.healthyInstances)),
        el('td', { class: 'num c-subscribers' }, String(s.subscribers)),
        el('td', { class: 'num c-threshold' }, s.protectThreshold < 0 ? 'off' : String(s.protectThreshold)),
        el('td', { class: 'c-reached' }, s.reachProtectionThreshold ? el('span', { class: 'warn', 'data-value': 'true' }, 'reached') : el('span', { 'data-value': 'false' }, 'no')),
        el('td', { class: 'c-kind' }, s.kind));
    });
    const table = el('table', { id: 'services' },
      el('thead', {}, el('tr', {},
        el('th', {}, 'Service'), el('th', {}, 'Group'), el('th', { class: 'num' }, 'Instances'),
        el('th', { class: 'num' }, 'Healthy'), el('th', { class: 'num' }, 'Subscribers'),
        el('th', { class: 'num' }, 'Protect threshold'), el('th', {}, 'Protection'), el('th', {}, 'Kind'))),
      el('tbody', {}, rows));
    const pages = Math.max(1, Math.ceil(data.count / data.pageSize));
    const pager = el('div', { class: 'pager' },
      el('button', { id: 'page-prev', type: 'button', disabled: page <= 1, onclick: () => apply(page - 1) }, 'Previous'),
      el('span', { id: 'page-info' }, `page ${page} of ${pages} (${data.count} services${data.truncated ? ', list cut short' : ''})`),
      el('button', { id: 'page-next', type: 'button', disabled: page >= pages, onclick: () => apply(page + 1) }, 'Next'));
    const empty = rows.length === 0 ? el('p', { id: 'no-services' }, 'No services match.') : null;
    region.replaceChildren(table, empty || '', pager);
  }, region);
}

// -- one service ------------------------------------------------------------------------------

function instanceParams(key, h) {
  return {
    namespaceId: key.namespaceId, groupName: key.groupName, serviceName: key.serviceName,
    ip: h.ip, port: String(h.port), clusterName: h.cluster, weight: String(h.weight),
    enabled: String(h.enabled), healthy: String(h.healthy), ephemeral: String(h.ephemeral),
    metadata: JSON.stringify(h.metadata),
  };
}

async function act(description, fn) {
  try {
    await fn();
    state.notice = { error: false, text: description + ': done' };
  } catch (err) {
    if (needsLogin(err)) { logout(); return; }
    state.notice = { error: true, text: err.message };
  }
  showNotice();
}

function showNotice() {
  const box = document.getElementById('action-result');
  if (!box || !state.notice) return;
  box.className = state.notice.error ? 'error' : 'notice';
  box.dataset.error = String(state.notice.error);
  box.textContent = state.notice.text;
}

async function setEnabled(key, h, enabled) {
  const what = `${enabled ? 'Bring online' : 'Take offline'} ${h.ip}:${h.port} (${h.cluster}) of ${key.serviceName}?`;
  if (await confirmAction(what) === null) return;
  await act(enabled ? 'online' : 'offline', () =>
    write('PUT', '/nacos/v1/ns/instance', Object.assign(instanceParams(key, h), { enabled: String(enabled) })));
}

async function setWeight(key, h) {
  const value = await confirmAction(`Change the weight of ${h.ip}:${h.port} (${h.cluster}) of ${key.serviceName}?`,
    { name: 'Weight', value: String(h.weight) });
  if (value === null) return;
  await act('weight', () =>
    write('PUT', '/nacos/v1/ns/instance', Object.assign(instanceParams(key, h), { weight: value })));
}

async function setThreshold(key, current) {
  const value = await confirmAction(`Change the protect threshold of ${key.serviceName}?`,
    { name: 'Protect threshold', value: String(current) });
  if (value === null) return;
  await act('protect threshold', () =>
    write('PUT', '/nacos/v1/ns/service', Object.assign({}, key, { protectThreshold: value })));
}

/// Heartbeat clients are "ip:port#true", persistent instances "ip:port#false"; the rest are sessions.
function ownedBySession(h) {
  return !/#(true|false)$/.test(h.clientId);
}

function metadataList(meta) {
  const keys = Object.keys(meta).sort();
  return el('ul', { class: 'meta' }, keys.map((k) => el('li', {}, `${k}=${meta[k]}`)));
}

function renderService(q) {
  const key = {
    namespaceId: q.get('namespaceId') || 'public',
    groupName: q.get('groupName') || 'DEFAULT_GROUP',
    serviceName: q.get('serviceName') || '',
  };
  const back = el('a', { href: '#/services?' + new URLSearchParams({ namespaceId: key.namespaceId, groupName: key.groupName }).toString() }, '← Services');
  const region = el('div', { id: 'service-region' });
  const result = el('p', { id: 'action-result' });
  main().replaceChildren(back, el('h1', { id: 'service-name' }, key.serviceName),
    el('p', { class: 'muted' }, `${key.namespaceId} / ${key.groupName}`), result, region);
  showNotice();
  poll(() => getJson('/console/api/service', key), (s) => {
    const writable = canWrite();
    const facts = el('dl', { class: 'facts', id: 'service-facts' },
      el('dt', {}, 'Kind'), el('dd', { id: 'f-kind' }, s.kind),
      el('dt', {}, 'Instances'), el('dd', { id: 'f-instances' }, String(s.instances)),
      el('dt', {}, 'Healthy'), el('dd', { id: 'f-healthy' }, String(s.healthyInstances)),
      el('dt', {}, 'Subscribers'), el('dd', { id: 'f-subscribers' }, String(s.subscribers)),
      el('dt', {}, 'Protect threshold'), el('dd', { id: 'f-threshold' },
        s.protectThreshold < 0 ? 'off' : String(s.protectThreshold), ' ',
        writable ? el('button', { id: 'change-threshold', type: 'button', onclick: () => setThreshold(key, s.protectThreshold) }, 'Change') : null),
      el('dt', {}, 'Protection'), el('dd', { id: 'f-reached' }, s.reachProtectionThreshold ? 'reached: every instance is returned' : 'not reached'));
    const hosts = s.hosts.map((h) => el('tr', { 'data-instance': `${h.ip}:${h.port}`, 'data-cluster': h.cluster },
      el('td', { class: 'c-address' }, `${h.ip}:${h.port}`),
      el('td', { class: 'c-cluster' }, h.cluster),
      el('td', { class: 'num c-weight' }, String(h.weight)),
      el('td', { class: 'c-healthy' }, yesNo(h.healthy)),
      el('td', { class: 'c-enabled' }, yesNo(h.enabled)),
      el('td', { class: 'c-metadata' }, metadataList(h.metadata)),
      el('td', { class: 'c-owner' }, h.owner),
      el('td', { class: 'actions' }, !writable ? [] : ownedBySession(h)
        // The Open API's update writes a heartbeat client for ip:port: it would stand beside a
        // session's instance, not change it.
        ? el('span', { class: 'muted', title: 'change it from the client that holds the session' }, 'session instance')
        : [
          el('button', { type: 'button', class: 'a-toggle', onclick: () => setEnabled(key, h, !h.enabled) }, h.enabled ? 'Take offline' : 'Bring online'),
          el('button', { type: 'button', class: 'a-weight', onclick: () => setWeight(key, h) }, 'Weight'),
        ])));
    const instances = el('table', { id: 'instances' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Address'), el('th', {}, 'Cluster'), el('th', { class: 'num' }, 'Weight'),
        el('th', {}, 'Healthy'), el('th', {}, 'Enabled'), el('th', {}, 'Metadata'), el('th', {}, 'Owner node'), el('th', {}, ''))),
      el('tbody', {}, hosts));
    const subs = el('table', { id: 'subscribers' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Subscriber'), el('th', {}, 'Clusters'))),
      el('tbody', {}, s.subscriberList.map((x) => el('tr', {},
        el('td', { class: 'c-client' }, x.clientId), el('td', {}, x.clusters || '(all)')))));
    region.replaceChildren(facts, el('h2', {}, 'Instances'), instances, el('h2', {}, 'Subscribers'), subs);
  }, region);
}

// -- cluster ----------------------------------------------------------------------------------

function renderCluster() {
  const region = el('div', { id: 'cluster-region' });
  main().replaceChildren(el('h1', { text: 'Cluster' }), region);
  poll(() => getJson('/console/api/cluster'), (c) => {
    const n = c.node;
    const facts = el('dl', { class: 'facts', id: 'node-facts' },
      el('dt', {}, 'Node'), el('dd', { id: 'n-address' }, n.address),
      el('dt', {}, 'HTTP'), el('dd', { id: 'n-http' }, n.httpAddress),
      el('dt', {}, 'Cluster name'), el('dd', {}, n.clusterName),
      el('dt', {}, 'Version'), el('dd', {}, n.version),
      el('dt', {}, 'Ready'), el('dd', { id: 'n-ready' }, yesNo(n.ready)),
      el('dt', {}, 'Security'), el('dd', {}, n.security),
      el('dt', {}, 'TLS'), el('dd', {}, n.tls),
      el('dt', {}, 'Clients'), el('dd', { id: 'n-clients' }, String(n.clients)),
      el('dt', {}, 'Services'), el('dd', { id: 'n-services' }, String(n.services)),
      el('dt', {}, 'Instances'), el('dd', { id: 'n-instances' }, String(n.instances)),
      el('dt', {}, 'Subscribers'), el('dd', { id: 'n-subscribers' }, String(n.subscribers)));
    const dash = '–';
    const members = el('table', { id: 'members' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Member'), el('th', {}, 'Node'), el('th', {}, 'State'),
        el('th', {}, 'Ready'), el('th', { class: 'num' }, 'Clients owned'), el('th', { class: 'num' }, 'Instances owned'), el('th', { class: 'num' }, 'Syncs ok / failed'),
        el('th', { class: 'num' }, 'Verifies ok / failed'), el('th', { class: 'num' }, 'Verify repairs'),
        el('th', { class: 'num' }, 'Received syncs / verifies'), el('th', { class: 'num' }, 'Raft match / next'))),
      el('tbody', {}, c.members.map((m) => el('tr', { 'data-member': m.address },
        el('td', { class: 'c-address' }, m.address),
        el('td', {}, m.node),
        el('td', { class: 'c-state' }, m.state, m.problem ? el('span', { class: 'error' }, ' ' + m.problem) : null),
        el('td', { class: 'c-ready' }, m.ready === undefined ? dash : yesNo(m.ready)),
        el('td', { class: 'num c-clients' }, m.ownedClients === undefined ? dash : String(m.ownedClients)),
        el('td', { class: 'num c-instances' }, m.ownedInstances === undefined ? dash : String(m.ownedInstances)),
        el('td', { class: 'num c-syncs' }, m.distro ? `${m.distro.syncsOk} / ${m.distro.syncsFailed}` : dash),
        el('td', { class: 'num c-verifies' }, m.distro ? `${m.distro.verifiesOk} / ${m.distro.verifiesFailed}` : dash),
        el('td', { class: 'num c-repairs' }, m.distro ? String(m.distro.repairs) : dash),
        el('td', { class: 'num' }, m.distro ? `${m.distro.syncsReceived} / ${m.distro.verifiesReceived}` : dash),
        el('td', { class: 'num' }, m.raft ? `${m.raft.matchIndex} / ${m.raft.nextIndex}` : dash)))));
    const r = c.raft;
    const raft = !r ? el('p', {}, 'Raft status not available.') : !r.enabled
      ? el('p', { id: 'raft-off' }, 'Raft is off on this node (no data_dir): persistent instances are not served.')
      : el('dl', { class: 'facts', id: 'raft-facts' },
        el('dt', {}, 'Role'), el('dd', { id: 'r-role' }, r.role),
        el('dt', {}, 'Term'), el('dd', { id: 'r-term' }, String(r.term)),
        el('dt', {}, 'Leader'), el('dd', { id: 'r-leader' }, r.leader || '(none known)'),
        el('dt', {}, 'Commit index'), el('dd', { id: 'r-commit' }, String(r.commitIndex)),
        el('dt', {}, 'Applied index'), el('dd', { id: 'r-applied' }, String(r.appliedIndex)),
        el('dt', {}, 'Last index'), el('dd', {}, String(r.lastIndex)),
        el('dt', {}, 'Snapshot index'), el('dd', {}, String(r.snapshotIndex)),
        el('dt', {}, 'Persistent instances'), el('dd', {}, String(r.persistentInstances)));
    region.replaceChildren(facts, el('h2', {}, 'Members'), members, el('h2', {}, 'Raft'), raft);
  }, region);
}

// -- live view and routing --------------------------------------------------------------------

/// Fetches now and again every pollMs until the route changes, and renders what changed (an
/// unchanged answer leaves the page alone: no flicker, and a click is never lost to a re-render).
/// A failure shows the node's text in `region` and polling goes on (the view recovers by itself).
function poll(fetchData, render, region) {
  const generation = state.generation;
  let shown = null;
  const tick = async () => {
    if (generation !== state.generation) return;
    try {
      const data = await fetchData();
      if (generation !== state.generation) return;
      const text = JSON.stringify(data);
      if (text !== shown) {
        render(data);
        shown = text;
      }
      setUpdated('updated ' + new Date().toLocaleTimeString());
    } catch (err) {
      if (generation !== state.generation) return;
      shown = null;
      showError(region, err);
      if (needsLogin(err)) return;
    }
    if (generation === state.generation) setTimeout(tick, state.pollMs);
  };
  tick();
}

function route() {
  state.generation++;
  const hash = location.hash || '#/services';
  const [path, query] = hash.slice(1).split('?');
  const q = new URLSearchParams(query || '');
  const logoutButton = document.getElementById('logout');
  logoutButton.hidden = !(state.auth && state.token);
  document.getElementById('who').textContent = state.auth && state.token ? 'logged in as ' + state.user : '';
  setUpdated('');
  if (state.auth && !state.token) {
    renderLogin();
    return;
  }
  const section = path === '/cluster' ? 'nav-cluster' : 'nav-services';
  for (const a of document.querySelectorAll('header nav a'))
    a.classList.toggle('current', a.id === section);
  if (path === '/service') {
    renderService(q);
  } else if (path === '/cluster') {
    renderCluster();
  } else {
    if (path !== '/services') state.notice = null;
    renderServices(q);
  }
}

async function start() {
  document.getElementById('logout').addEventListener('click', logout);
  try {
    const session = await getJson('/console/api/session');
    state.auth = !!session.auth;
    state.pollMs = session.pollIntervalMs || 1000;
  } catch (err) {
    main().replaceChildren(el('p', { class: 'error', id: 'load-error' }, 'the node did not answer: ' + err.message));
    return;
  }
  window.addEventListener('hashchange', () => { state.notice = null; route(); });
  route();
}

document.addEventListener('DOMContentLoaded', start);
