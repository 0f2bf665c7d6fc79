// Drives the real Nacos 2.x client (the official Rust SDK 0.8.0 through its Node binding,
// nacos-sdk-rust-binding-node, installed by nacos2_client_test.cpp into a temporary directory)
// against registryd's gRPC API. Prints one line per step: "ok STEP" or "FAIL STEP: why"; exits 0
// when every step passed.
//   node nacos2_rust_client.js basic SERVERS        register, query, subscribe, push, deregister
//   node nacos2_rust_client.js child SERVERS IP     registers IP:8081 in "orders", then waits
//   node nacos2_rust_client.js failover SERVERS FLAG registers; once FLAG exists (its node was
//                                                    killed), waits until the client works again,
//                                                    then stays until FLAG.done exists
'use strict';

const fs = require('fs');
const { spawn } = require('child_process');
const { NacosNamingClient } = require('nacos-sdk-rust-binding-node');

const [mode, servers, arg] = process.argv.slice(2);
let failed = false;

function step(name, ok, why) {
  if (ok) console.log('ok ' + name);
  else { failed = true; console.log('FAIL ' + name + ': ' + (why || '')); }
}

function client() {
  // Empty pushes are applied (the default ignores them), so a service emptied by a kill is seen.
  return new NacosNamingClient({ serverAddr: servers, namespace: 'public', appName: 'registry-test',
                                 namingPushEmptyProtection: false });
}

function instance(ip, port) {
  return { ip, port, weight: 1.0, healthy: true, enabled: true, ephemeral: true,
           clusterName: 'DEFAULT', metadata: { version: '1.0' } };
}

const addrs = hosts => (hosts || []).map(h => h.ip + ':' + h.port).sort();

/// Resolves true once `pred` holds for an event from index `from` on (any: `newest` false) or for
/// the newest one, false after `ms`. An SDK may reconnect and redo its registrations at any time,
/// so an arrival is any event showing it; a departure is the newest event not showing it.
function waitFor(events, pred, ms, from = 0, newest = true) {
  return new Promise(resolve => {
    const t0 = Date.now();
    const timer = setInterval(() => {
      const hit = newest ? events.length > from && pred(events[events.length - 1])
                         : events.slice(from).some(pred);
      if (hit) { clearInterval(timer); resolve(true); }
      else if (Date.now() - t0 > ms) { clearInterval(timer); resolve(false); }
    }, 20);
  });
}

async function retry(fn, ms) {
  const t0 = Date.now();
  for (;;) {
    try { return await fn(); } catch (e) {
      if (Date.now() - t0 > ms) throw e;
      await new Promise(r => setTimeout(r, 100));
    }
  }
}

async function basic() {
  const c = client();
  await retry(() => c.registerInstance('orders', 'DEFAULT_GROUP', instance('10.0.0.1', 8080)), 10000);
  step('register', true);
  const all = await c.getAllInstances('orders', 'DEFAULT_GROUP', [], false);
  step('query', addrs(all).join() === '10.0.0.1:8080' && all[0].metadata.version === '1.0',
       JSON.stringify(all));
  const events = [];
  await c.subscribe('orders', 'DEFAULT_GROUP', [], (err, hosts) => { if (!err) events.push(addrs(hosts)); });
  step('subscribe', true);
  // A second client in its own process registers, and is killed without deregistering.
  const child = spawn(process.execPath, [__filename, 'child', servers, '10.0.0.2'],
                      { stdio: ['ignore', 'pipe', 'inherit'] });
  step('push-arrive', await waitFor(events, h => h.includes('10.0.0.2:8081') && h.includes('10.0.0.1:8080'),
                                    20000, 0, false), JSON.stringify(events));
  child.kill('SIGKILL');
  step('push-leave', await waitFor(events, h => !h.includes('10.0.0.2:8081') && h.includes('10.0.0.1:8080'),
                                   20000), JSON.stringify(events));
  const batch = [instance('10.0.0.3', 1), instance('10.0.0.4', 1)];
  await c.batchRegisterInstance('batch', 'DEFAULT_GROUP', batch);
  const b = await c.getAllInstances('batch', 'DEFAULT_GROUP', [], false);
  step('batch', addrs(b).join() === '10.0.0.3:1,10.0.0.4:1', JSON.stringify(b));
  await c.deregisterInstance('orders', 'DEFAULT_GROUP', instance('10.0.0.1', 8080));
  const after = await c.getAllInstances('orders', 'DEFAULT_GROUP', [], false);
  step('deregister', after.length === 0, JSON.stringify(after));
  step('push-deregister', await waitFor(events, h => h.length === 0, 20000), JSON.stringify(events));
}

async function child() {
  const c = client();
  await retry(() => c.registerInstance('orders', 'DEFAULT_GROUP', instance(arg, 8081)), 10000);
  console.log('ok registered');
  await new Promise(() => {}); // until killed
}

async function failover() {
  const c = client();
  await retry(() => c.registerInstance('moving', 'DEFAULT_GROUP', instance('10.9.0.1', 9000)), 10000);
  const events = [];
  await c.subscribe('moving', 'DEFAULT_GROUP', [], (err, hosts) => { if (!err) events.push(addrs(hosts)); });
  console.log('ok registered');
  while (!fs.existsSync(arg))
    await new Promise(r => setTimeout(r, 50));
  // The node was killed: the client reconnects to the other one and redoes its registration.
  const t0 = Date.now();
  let ok = false;
  let last = '';
  while (!ok && Date.now() - t0 < 30000) {
    try {
      const all = await c.getAllInstances('moving', 'DEFAULT_GROUP', [], false);
      last = JSON.stringify(all);
      ok = addrs(all).join() === '10.9.0.1:9000';
    } catch (e) { last = String(e); }
    if (!ok) await new Promise(r => setTimeout(r, 200));
  }
  step('query-after-move', ok, last);
  await c.registerInstance('moving', 'DEFAULT_GROUP', instance('10.9.0.2', 9000));
  step('register-after-move', true);
  // Stay connected while the test looks at the survivor (until FLAG.done exists).
  while (!fs.existsSync(arg + '.done'))
    await new Promise(r => setTimeout(r, 50));
}

const modes = { basic, child, failover };
if (!modes[mode]) { console.log('FAIL usage: unknown mode ' + mode); process.exit(2); }
modes[mode]().then(() => process.exit(failed ? 1 : 0),
                   e => { step(mode, false, String(e && e.stack || e)); process.exit(1); });
