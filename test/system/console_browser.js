// Drives the web console in headless Chromium (puppeteer-core, installed by console_test.cpp) and
// checks what each page shows against `registryctl --json`. Prints "ok STEP" per passed step and
// exits non-zero, naming the step, on the first failure.
//
// Usage: node console_browser.js CONFIG_JSON
//   {"base": "http://127.0.0.1:PORT", "ctl": [registryctl, flags...], "shots": DIR,
//    "user": U, "password": P, "chromium": PATH}
'use strict';

const puppeteer = require('puppeteer-core');
const { execFileSync } = require('child_process');
const path = require('path');

const cfg = JSON.parse(process.argv[2]);
let current = 'start';

function ok(step) { console.log('ok ' + step); }
function check(cond, message) { if (!cond) throw new Error(message); }

/// registryctl --json ARGS, parsed.
function ctl(...args) {
  const out = execFileSync(cfg.ctl[0], [...cfg.ctl.slice(1), '--json', ...args], { encoding: 'utf8', timeout: 20000 });
  return JSON.parse(out.trim().split('\n')[0]);
}
/// registryctl ARGS (a write).
function ctlWrite(...args) {
  execFileSync(cfg.ctl[0], [...cfg.ctl.slice(1), ...args], { encoding: 'utf8', timeout: 20000 });
}

/// Waits until `fn` (in Node, may be async) returns a truthy value; returns it.
async function waitFor(what, fn, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try { last = await fn(); } catch (e) { last = undefined; if (Date.now() > deadline) throw e; }
    if (last) return last;
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(cfg.shots, name), fullPage: true });
}

/// The services table as data.
function serviceRows(page) {
  return page.$$eval('#services tbody tr', (rows) => rows.map((r) => ({
    name: r.dataset.service,
    instances: Number(r.querySelector('.c-instances').textContent),
    healthy: Number(r.querySelector('.c-healthy').textContent),
    subscribers: Number(r.querySelector('.c-subscribers').textContent),
    reached: r.querySelector('.c-reached span').dataset.value === 'true',
    kind: r.querySelector('.c-kind').textContent,
  })));
}

/// The instances table of a service page as data.
function instanceRows(page) {
  return page.$$eval('#instances tbody tr', (rows) => rows.map((r) => ({
    address: r.dataset.instance,
    cluster: r.querySelector('.c-cluster').textContent,
    weight: Number(r.querySelector('.c-weight').textContent),
    healthy: r.querySelector('.c-healthy span').dataset.value === 'true',
    enabled: r.querySelector('.c-enabled span').dataset.value === 'true',
    metadata: Array.from(r.querySelectorAll('.c-metadata li')).map((li) => li.textContent),
    owner: r.querySelector('.c-owner').textContent,
  })));
}

/// A write straight to the Open API (as the page sends it), for comparing refusal texts.
async function directPut(pathAndQuery, token) {
  const res = await fetch(cfg.base + pathAndQuery, { method: 'PUT', headers: { accessToken: token } });
  return { status: res.status, text: await res.text() };
}

/// Clicks `selector`, again if the page replaced the element between finding and clicking it.
async function click(page, selector) {
  for (let attempt = 1; ; ++attempt) {
    try {
      await page.waitForSelector(selector, { timeout: 10000 });
      await page.click(selector);
      return;
    } catch (e) {
      if (attempt >= 3) throw e;
    }
  }
}

async function confirmWith(page, value) {
  await page.waitForSelector('#confirm[open]');
  if (value !== undefined) {
    await page.$eval('#confirm-input', (e) => { e.value = ''; });
    await page.type('#confirm-input', value);
  }
  await click(page, '#confirm-ok');
  await page.waitForSelector('#confirm:not([open])');
}

async function main() {
  const browser = await puppeteer.launch({
    executablePath: cfg.chromium, headless: true,
    args: ['--no-sandbox', '--headless=new', '--disable-dev-shm-usage', '--disable-gpu'],
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('dialog', (d) => { pageErrors.push('a browser dialog opened: ' + d.message()); d.dismiss(); });

  if (cfg.mode === 'open') {
    // Auth off: the pages and the actions show at once, without a login.
    current = 'open';
    await page.goto(cfg.base + '/#/services');
    await page.waitForSelector('#services tr[data-service="orders"]');
    check(await page.$('#login') === null, 'a login form with auth off');
    check(await page.$eval('#logout', (e) => e.hidden), 'a logout button with auth off');
    await click(page, '#services tr[data-service="orders"] a');
    await page.waitForSelector('#instances tbody tr .a-toggle');
    await click(page, '#instances tbody tr .a-weight');
    await confirmWith(page, '7');
    await waitFor('weight 7 in registryctl', () => ctl('instances', 'orders').hosts[0].weight === 7);
    ok('open');
    check(pageErrors.length === 0, 'page errors: ' + pageErrors.join('; '));
    await browser.close();
    return;
  }

  // -- headers: CSP without inline script, nosniff; the JS is a separate file.
  current = 'headers';
  for (const p of ['/', '/console/console.js', '/console/console.css', '/console/api/session']) {
    const res = await fetch(cfg.base + p);
    const csp = res.headers.get('content-security-policy') || '';
    check(csp.includes("default-src 'self'") && !csp.includes('unsafe-inline'), p + ': CSP ' + csp);
    check(res.headers.get('x-content-type-options') === 'nosniff', p + ': no nosniff');
  }
  const html = await (await fetch(cfg.base + '/')).text();
  check(!/<script(?![^>]*\ssrc=)[^>]*>/i.test(html), 'the page has an inline script');
  check((await fetch(cfg.base + '/console/api/services')).status === 403, 'services answered without a token');
  const bad = await fetch(cfg.base + '/console/api/services?pageSize=0');
  check(bad.status === 403, 'a bad parameter before login: ' + bad.status);
  ok('headers');

  // -- nothing before login.
  current = 'login-first';
  await page.goto(cfg.base + '/#/services');
  await page.waitForSelector('#login');
  check(await page.$('#services') === null, 'the services table shows before login');
  const before = await page.$eval('body', (b) => b.innerText);
  check(!before.includes('orders'), 'service names show before login');
  await page.type('#username', cfg.user);
  await page.type('#password', 'not-' + cfg.password);
  await click(page, '#login-submit');
  await waitFor('the login refusal', () => page.$eval('#login-error', (e) => e.textContent));
  ok('login-first');

  current = 'login';
  await page.$eval('#password', (e) => { e.value = ''; });
  await page.type('#password', cfg.password);
  await click(page, '#login-submit');
  await page.waitForSelector('#services tbody tr');
  const token = await page.evaluate(() => sessionStorage.getItem('registryd.token'));
  check(token, 'no token kept');
  const badParam = await fetch(cfg.base + '/console/api/services?pageSize=0', { headers: { accessToken: token } });
  const badBody = await badParam.json();
  check(badParam.status === 400 && badBody.field === 'pageSize', 'pageSize=0: ' + JSON.stringify(badBody));
  ok('login');

  // -- services page against registryctl.
  current = 'services-page';
  const list = ctl('services');
  const status = ctl('status');
  const expected = {};
  for (const name of list.services) {
    const info = ctl('instances', name);
    expected[name] = { instances: info.hosts.length, healthy: info.hosts.filter((h) => h.healthy).length };
  }
  const rows = await waitFor('the services rows', async () => {
    const r = await serviceRows(page);
    return r.length === list.services.length ? r : null;
  });
  let subscribers = 0;
  for (const row of rows) {
    const e = expected[row.name];
    check(e, 'unexpected service ' + row.name);
    check(row.instances === e.instances, `${row.name}: instances ${row.instances} != ${e.instances}`);
    check(row.healthy === e.healthy, `${row.name}: healthy ${row.healthy} != ${e.healthy}`);
    check(row.kind === 'ephemeral', `${row.name}: kind ${row.kind}`);
    check(!row.reached, `${row.name}: protection reached`);
    subscribers += row.subscribers;
  }
  check(subscribers === status.subscribers, `subscribers ${subscribers} != status ${status.subscribers}`);
  check(rows.find((r) => r.name === 'orders').subscribers >= 1, 'orders has no subscriber');
  await shot(page, 'console-services.png');
  ok('services-page');

  // -- namespace and group filters.
  current = 'filters';
  const setField = async (selector, value) => {
    await page.$eval(selector, (e) => { e.value = ''; });
    await page.type(selector, value);
  };
  await setField('#filter-namespace', 'dev');
  await setField('#filter-group', 'TEAM_A');
  await click(page, '#filter-apply');
  const devList = ctl('services', '--namespace', 'dev', '--group', 'TEAM_A');
  check(devList.services.length === 1, 'registryctl: ' + JSON.stringify(devList));
  await waitFor('the dev services', async () => {
    const r = await serviceRows(page);
    return JSON.stringify(r.map((x) => x.name)) === JSON.stringify(devList.services);
  });
  const devRow = (await serviceRows(page))[0];
  check(devRow.instances === ctl('instances', 'billing', '--namespace', 'dev', '--group', 'TEAM_A').hosts.length, 'dev instances');
  await setField('#filter-namespace', 'public');
  await setField('#filter-group', 'DEFAULT_GROUP');
  await click(page, '#filter-apply');
  await waitFor('the public services again', async () => (await serviceRows(page)).length === list.services.length);
  ok('filters');

  // -- search and paging.
  current = 'search';
  await page.$eval('#filter-search', (e) => { e.value = ''; });
  await page.type('#filter-search', 'PAY');
  await click(page, '#filter-apply');
  const wanted = list.services.filter((n) => n.toLowerCase().includes('pay')).sort();
  await waitFor('the search result', async () => {
    const r = await serviceRows(page);
    return JSON.stringify(r.map((x) => x.name).sort()) === JSON.stringify(wanted);
  });
  ok('search');

  current = 'paging';
  const sorted = [...list.services].sort();
  await page.goto(cfg.base + '/#/services?pageSize=1&pageNo=2');
  await waitFor('page 2', async () => {
    const r = await serviceRows(page);
    return r.length === 1 && r[0].name === sorted[1];
  });
  await click(page, '#page-next');
  await waitFor('page 3', async () => {
    const r = await serviceRows(page);
    return r.length === 1 && r[0].name === sorted[2];
  });
  const info = await page.$eval('#page-info', (e) => e.textContent);
  check(info.includes(`page 3 of ${sorted.length}`), 'page info: ' + info);
  ok('paging');

  // -- one service against registryctl.
  current = 'service-page';
  await page.goto(cfg.base + '/#/services');
  await page.waitForSelector('#services tr[data-service="orders"] a');
  await click(page, '#services tr[data-service="orders"] a');
  await page.waitForSelector('#instances tbody tr');
  const orders = ctl('instances', 'orders');
  const listed = ctl('members').members;
  const members = [...listed.map((m) => m.address), ...listed.map((m) => m.node).filter(Boolean)];
  const shown = await waitFor('the orders instances', async () => {
    const r = await instanceRows(page);
    return r.length === orders.hosts.length ? r : null;
  });
  for (const h of orders.hosts) {
    const row = shown.find((r) => r.address === `${h.ip}:${h.port}`);
    check(row, `${h.ip}:${h.port} not shown`);
    check(row.cluster === h.clusterName, `${row.address}: cluster ${row.cluster}`);
    check(row.weight === h.weight, `${row.address}: weight ${row.weight} != ${h.weight}`);
    check(row.healthy === h.healthy && row.enabled === h.enabled, `${row.address}: healthy/enabled`);
    const meta = Object.keys(h.metadata).sort().map((k) => `${k}=${h.metadata[k]}`);
    check(JSON.stringify(row.metadata) === JSON.stringify(meta), `${row.address}: metadata ${row.metadata}`);
    check(members.includes(row.owner), `${row.address}: owner ${row.owner} is not a member (${members})`);
  }
  const subs = await page.$$eval('#subscribers tbody tr', (r) => r.length);
  check(subs >= 1, 'no subscriber shown');
  await shot(page, 'console-service.png');
  ok('service-page');

  // -- live view: a registration shows without a reload, within about a second.
  current = 'live-view';
  ctlWrite('register', 'orders', '10.0.0.3:8080', '--meta', 'zone=z3');
  const t0 = Date.now();
  await waitFor('the new instance', async () => (await instanceRows(page)).some((r) => r.address === '10.0.0.3:8080'), 5000);
  const latency = Date.now() - t0;
  console.log('live view latency ms ' + latency);
  check(latency <= 2500, 'the new instance took ' + latency + ' ms to show');
  ok('live-view');

  // -- actions.
  const row = (address) => `#instances tr[data-instance="${address}"]`;
  const rowOf = async (address) => (await instanceRows(page)).find((r) => r.address === address);
  const hostOf = (address) => ctl('instances', 'orders').hosts.find((h) => `${h.ip}:${h.port}` === address);

  current = 'cancel';
  await click(page, row('10.0.0.1:8080') + ' .a-toggle');
  await page.waitForSelector('#confirm[open]');
  await click(page, '#confirm-cancel');
  await page.waitForSelector('#confirm:not([open])');
  check(hostOf('10.0.0.1:8080'), 'a cancelled action changed the instance');
  ok('cancel');

  current = 'offline';
  await click(page, row('10.0.0.1:8080') + ' .a-toggle');
  await confirmWith(page);
  await waitFor('offline shown', async () => (await rowOf('10.0.0.1:8080')).enabled === false);
  await waitFor('offline in registryctl', () => !hostOf('10.0.0.1:8080'));
  const kept = (await rowOf('10.0.0.1:8080'));
  check(kept.metadata.includes('zone=z1'), 'metadata lost by the update: ' + kept.metadata);
  ok('offline');

  current = 'online';
  await click(page, row('10.0.0.1:8080') + ' .a-toggle');
  await confirmWith(page);
  await waitFor('online shown', async () => (await rowOf('10.0.0.1:8080')).enabled === true);
  await waitFor('online in registryctl', () => hostOf('10.0.0.1:8080'));
  ok('online');

  current = 'weight';
  await click(page, row('10.0.0.2:8080') + ' .a-weight');
  await confirmWith(page, '3.5');
  await waitFor('weight shown', async () => (await rowOf('10.0.0.2:8080')).weight === 3.5);
  await waitFor('weight in registryctl', () => (hostOf('10.0.0.2:8080') || {}).weight === 3.5);
  ok('weight');

  current = 'refused-weight';
  await click(page, row('10.0.0.2:8080') + ' .a-weight');
  await confirmWith(page, '-2');
  const refusedWeight = await waitFor('the refusal', () => page.$eval('#action-result', (e) => e.dataset.error === 'true' && e.textContent));
  const direct = await directPut('/nacos/v1/ns/instance?serviceName=orders&ip=10.0.0.2&port=8080&clusterName=c2&weight=-2', token);
  check(direct.status === 400 && refusedWeight === direct.text, `shown "${refusedWeight}", the node answers "${direct.text}"`);
  check((hostOf('10.0.0.2:8080') || {}).weight === 3.5, 'a refused weight changed the instance');
  ok('refused-weight');

  // A threshold of 1 reaches protection while every instance is healthy: the page and registryctl
  // both show the effect. A value out of range is refused with the node's text.
  current = 'threshold';
  check(ctl('instances', 'orders').reachProtectionThreshold === false, 'protection reached before the change');
  await click(page, '#change-threshold');
  await confirmWith(page, '1');
  await waitFor('threshold shown', () => page.$eval('#f-threshold', (e) => e.textContent.trim().startsWith('1')));
  await waitFor('protection shown', () => page.$eval('#f-reached', (e) => e.textContent.startsWith('reached')));
  await waitFor('protection in registryctl', () => ctl('instances', 'orders').reachProtectionThreshold === true);
  ok('threshold');

  current = 'refused-threshold';
  await click(page, '#change-threshold');
  await confirmWith(page, '1.5');
  const refusedThreshold = await waitFor('the threshold refusal', () => page.$eval('#action-result',
    (e, earlier) => e.dataset.error === 'true' && e.textContent !== earlier && e.textContent, refusedWeight));
  const directThreshold = await directPut('/nacos/v1/ns/service?serviceName=orders&protectThreshold=1.5', token);
  check(directThreshold.status === 400 && refusedThreshold === directThreshold.text,
    `shown "${refusedThreshold}", the node answers "${directThreshold.text}"`);
  check(refusedThreshold.includes('protectThreshold'), 'the refusal does not name the field: ' + refusedThreshold);
  check(ctl('instances', 'orders').reachProtectionThreshold === true, 'a refused threshold changed the service');
  ok('refused-threshold');

  // -- metadata that looks like markup shows as text and runs nothing.
  current = 'xss';
  await page.goto(cfg.base + '/#/service?serviceName=payments');
  await page.waitForSelector('#instances tbody tr');
  const xss = await page.evaluate(() => ({
    ran: window.__xss !== undefined,
    images: document.querySelectorAll('main img').length,
    text: document.querySelector('#instances .c-metadata').textContent,
  }));
  check(!xss.ran, 'the onerror handler ran');
  check(xss.images === 0, 'an img element was created');
  check(xss.text.includes('<img src=x onerror='), 'the markup is not shown as text: ' + xss.text);
  const visible = await page.$eval('#instances .c-metadata li', (e) => e.offsetWidth > 0 && e.offsetHeight > 0);
  check(visible, 'the metadata text is not visible');
  await shot(page, 'console-xss.png');
  ok('xss');

  // -- a session's instance offers no actions (an update would write a second, heartbeat client).
  current = 'session-instance';
  await page.goto(cfg.base + '/#/service?serviceName=sessions');
  await page.waitForSelector('#instances tbody tr');
  const sessionRow = await page.$eval('#instances tbody tr', (r) => ({
    buttons: r.querySelectorAll('button').length,
    text: r.querySelector('.actions').textContent,
    owner: r.querySelector('.c-owner').textContent,
  }));
  check(sessionRow.buttons === 0 && sessionRow.text === 'session instance', 'session row: ' + JSON.stringify(sessionRow));
  check(sessionRow.owner === ctl('status').address, 'session owner ' + sessionRow.owner);
  ok('session-instance');

  // -- cluster page against registryctl, while the node serves queries.
  current = 'cluster-page';
  let stop = false;
  let queries = 0;
  let queryErrors = 0;
  const load = async () => {
    while (!stop) {
      try {
        const res = await fetch(cfg.base + '/nacos/v1/ns/instance/list?serviceName=orders', { headers: { accessToken: token } });
        await res.text();
        if (res.ok) queries++; else queryErrors++;
      } catch (e) { queryErrors++; }
    }
  };
  const workers = [load(), load(), load(), load()];
  await click(page, '#nav-cluster');
  await page.waitForSelector('#members tbody tr');
  const st1 = ctl('status');
  const raft = ctl('raft');
  const shownNode = await page.evaluate(() => ({
    address: document.querySelector('#n-address').textContent,
    ready: document.querySelector('#n-ready span').dataset.value === 'true',
    role: document.querySelector('#r-role') ? document.querySelector('#r-role').textContent : '',
    leader: document.querySelector('#r-leader') ? document.querySelector('#r-leader').textContent : '',
  }));
  check(shownNode.address === st1.address, 'node ' + shownNode.address);
  check(shownNode.ready === st1.ready, 'ready');
  check(shownNode.role === raft.role, `raft role ${shownNode.role} != ${raft.role}`);
  check(shownNode.leader === raft.leader, `raft leader ${shownNode.leader} != ${raft.leader}`);
  const readMembers = () => page.$$eval('#members tbody tr', (rows) => rows.map((r) => ({
    address: r.dataset.member,
    state: r.querySelector('.c-state').firstChild.textContent,
    ready: r.querySelector('.c-ready span') ? r.querySelector('.c-ready span').dataset.value === 'true' : null,
    clients: Number(r.querySelector('.c-clients').textContent),
    instances: Number(r.querySelector('.c-instances').textContent),
    verifiesOk: Number(r.querySelector('.c-verifies').textContent.split('/')[0]),
  })));
  // Distro counters move all the time: the page must catch up with registryctl's figures taken
  // before (it is live), and may not run ahead of those taken after.
  const verifiesOf = (st, peer) => (st.distroPeers.find((x) => x.peer === peer) || { verifiesOk: 0 }).verifiesOk;
  const memberRows = await waitFor('the page to catch up with registryctl', async () => {
    const rows = await readMembers();
    return st1.distroPeers.every((d) => {
      const r = rows.find((x) => x.address === d.peer);
      return r && r.verifiesOk >= d.verifiesOk;
    }) ? rows : null;
  }, 5000);
  const st2 = ctl('status');
  for (const d of st1.distroPeers) {
    const r = memberRows.find((x) => x.address === d.peer);
    check(r.verifiesOk <= verifiesOf(st2, d.peer), `verifies ${r.verifiesOk} ahead of registryctl's ${verifiesOf(st2, d.peer)}`);
  }
  check(memberRows.length === st1.members.length, 'member count');
  for (const m of st1.members) {
    const shownMember = memberRows.find((r) => r.address === m.address);
    check(shownMember && shownMember.state === m.state, `member ${m.address}: ${shownMember && shownMember.state} != ${m.state}`);
  }
  check(memberRows.every((r) => r.ready === true), 'a member not shown ready: ' + JSON.stringify(memberRows));
  // Every client this node holds is owned by one member (Distro gives each node every client).
  const owned = memberRows.reduce((sum, r) => sum + r.clients, 0);
  check(owned === st1.clients, `clients owned ${owned} != the node's clients ${st1.clients}`);
  // And every (ephemeral) instance by the member that owns its client.
  const ownedInstances = memberRows.reduce((sum, r) => sum + r.instances, 0);
  check(ownedInstances === st1.instances, `instances owned ${ownedInstances} != the node's instances ${st1.instances}`);
  // The session's instance is this node's.
  const selfRow = memberRows.find((r) => r.address === st1.address);
  check(selfRow && selfRow.instances >= 1, 'this node owns no instance: ' + JSON.stringify(memberRows));
  // Live under load: a registration shows in the node's counts without a reload.
  ctlWrite('register', 'orders', '10.0.0.4:8080');
  const wantInstances = ctl('status').instances;
  const t1 = Date.now();
  await waitFor('the new count', async () => Number(await page.$eval('#n-instances', (e) => e.textContent)) === wantInstances, 5000);
  const clusterLatency = Date.now() - t1;
  console.log('cluster live latency ms ' + clusterLatency + ' under ' + queries + ' queries');
  // The count reaches the status within a second (service actors report once a burst), the page
  // within its poll.
  check(clusterLatency <= 3000, 'the cluster page took ' + clusterLatency + ' ms under load');
  await shot(page, 'console-cluster.png');
  stop = true;
  await Promise.all(workers);
  check(queries > 0 && queryErrors === 0, `queries ${queries}, errors ${queryErrors}`);
  ok('cluster-page');

  current = 'logout';
  await click(page, '#logout');
  await page.waitForSelector('#login');
  check(await page.$('#members') === null, 'the cluster shows after logout');
  ok('logout');

  check(pageErrors.length === 0, 'page errors: ' + pageErrors.join('; '));
  ok('no-page-errors');
  await browser.close();
}

main().catch((e) => {
  console.log('FAILED at ' + current + ': ' + (e && e.stack ? e.stack : e));
  process.exit(1);
});
