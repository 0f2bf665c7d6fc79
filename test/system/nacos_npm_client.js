// Drives the real npm Nacos client (nacos-naming, installed by nacos_client_test.cpp into a temporary
// directory) against registryd's HTTP API. Prints one line per step: "ok STEP" or "FAIL STEP: why";
// exits 0 when every step passed.
//   node nacos_npm_client.js basic SERVERS RAW_SERVER
//   node nacos_npm_client.js kill SERVERS RAW_SERVER PID_TO_KILL
'use strict';

const http = require('http');
const { NacosNamingClient } = require('nacos-naming');

const [mode, servers, raw, killPid] = process.argv.slice(2);
const logger = { info() {}, warn() {}, debug() {}, error() {}, log() {} };
let failed = false;

function step(name, ok, why) {
  if (ok) console.log('ok ' + name);
  else { failed = true; console.log('FAIL ' + name + ': ' + (why || '')); }
}

function rawRequest(method, path) {
  return new Promise((resolve, reject) => {
    const [host, port] = raw.split(':');
    const req = http.request({ host, port: Number(port), method, path, timeout: 5000 }, res => {
      let body = '';
      res.on('data', c => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/// Resolves with the first listener call whose hosts satisfy `pred`, or null after `ms`.
function waitForEvent(events, pred, ms) {
  return new Promise(resolve => {
    const t0 = Date.now();
    const timer = setInterval(() => {
      const hit = events.find(hosts => pred(hosts));
      if (hit || Date.now() - t0 > ms) {
        clearInterval(timer);
        resolve(hit || null);
      }
    }, 20);
  });
}

const has = (hosts, ip, port) => hosts.some(h => h.ip === ip && h.port === port);

async function basic(client) {
  const events = [];
  client.subscribe('npm-demo', hosts => events.push(hosts));
  await client.registerInstance('npm-demo', {
    ip: '10.0.0.1', port: 8080, metadata: { version: '1.0', zone: 'z1' },
  });
  const ev = await waitForEvent(events, hosts => has(hosts, '10.0.0.1', 8080), 12000);
  step('subscribe-event', ev !== null, 'no change event with 10.0.0.1:8080 in 12 s');
  const all = await client.getAllInstances('npm-demo', 'DEFAULT_GROUP', '', false);
  const h = all.find(x => x.ip === '10.0.0.1' && x.port === 8080);
  step('getAllInstances', h !== undefined && h.metadata.version === '1.0' && h.metadata.zone === 'z1'
       && h.healthy === true && h.enabled === true && h.weight === 1, JSON.stringify(all));
  const healthy = await client.selectInstances('npm-demo', 'DEFAULT_GROUP', '', true, false);
  step('selectInstances-healthy', has(healthy, '10.0.0.1', 8080), JSON.stringify(healthy));
  const unhealthy = await client.selectInstances('npm-demo', 'DEFAULT_GROUP', '', false, false);
  step('selectInstances-unhealthy', unhealthy.length === 0, JSON.stringify(unhealthy));
  step('getServerStatus', (await client.getServerStatus()) === 'UP');
  await client.deregisterInstance('npm-demo', { ip: '10.0.0.1', port: 8080 });
  const after = await rawRequest('GET', '/nacos/v1/ns/instance/list?serviceName=DEFAULT_GROUP%40%40npm-demo');
  const listed = JSON.parse(after.body).hosts;
  step('deregister', after.status === 200 && !has(listed, '10.0.0.1', 8080), after.body);
}

async function kill(client) {
  const events = [];
  client.subscribe('npm-kill', hosts => events.push(hosts));
  await client.registerInstance('npm-kill', { ip: '10.0.0.2', port: 8081 });
  let ev = await waitForEvent(events, hosts => has(hosts, '10.0.0.2', 8081), 12000);
  step('subscribed-before-kill', ev !== null, 'no event with 10.0.0.2:8081');
  process.kill(Number(killPid), 'SIGKILL');
  // Until the survivor has seen the other node go, a write it must forward there fails (503), and a
  // client moves on and retries: so does this one, for up to 15 s.
  let reg = null;
  for (const t0 = Date.now(); Date.now() - t0 < 15000;) {
    reg = await rawRequest('POST', '/nacos/v1/ns/instance?serviceName=npm-kill&ip=10.0.0.3&port=8082');
    if (reg.status === 200) break;
    await new Promise(resolve => setTimeout(resolve, 200));
  }
  step('register-on-survivor', reg.status === 200 && reg.body === 'ok', reg.status + ' ' + reg.body);
  ev = await waitForEvent(events, hosts => has(hosts, '10.0.0.3', 8082), 15000);
  step('event-after-kill', ev !== null, 'no event with 10.0.0.3:8082 after the node was killed');
  step('getServerStatus-after-kill', (await client.getServerStatus()) === 'UP');
}

(async () => {
  const client = new NacosNamingClient({ logger, serverList: servers, namespace: 'public' });
  await client.ready();
  if (mode === 'basic') await basic(client);
  else await kill(client);
  console.log(failed ? 'done: failed' : 'done: passed');
  process.exit(failed ? 1 : 0);
})().catch(e => {
  console.log('FAIL exception: ' + (e && e.stack || e));
  process.exit(1);
});
