// Preload (node --require) that makes every network request leaving 127.0.0.1 fail loudly.
// Covers global fetch (undici) and anything built on net.Socket (http, https, tls, ws).
"use strict";
const net = require("net");
const ALLOWED = new Set(["127.0.0.1"]);

// What was refused, for tests to inspect: process is shared with pytest-pyodide's context.
process.blockedRequests = [];

function blocked(what) {
  process.blockedRequests.push(what);
  const err = new Error(`[block_net] network access blocked: ${what}`);
  err.code = "EBLOCKED";
  process.stderr.write(err.message + "\n");
  return err;
}

const origFetch = globalThis.fetch;
globalThis.fetch = async function fetch(input, init) {
  const raw = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  const u = new URL(raw);
  if ((u.protocol === "http:" || u.protocol === "https:") && !ALLOWED.has(u.hostname)) {
    throw blocked(raw);
  }
  return origFetch.call(this, input, init);
};

const origConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  let opts = args[0];
  if (Array.isArray(opts)) opts = opts[0];  // internal normalized form
  let host, path;
  if (opts !== null && typeof opts === "object") { host = opts.host; path = opts.path; }
  else if (typeof opts === "number" || /^\d+$/.test(String(opts))) { host = typeof args[1] === "string" ? args[1] : "localhost"; }
  else { path = opts; }  // unix socket path
  if (!path && !ALLOWED.has(host ?? "localhost")) {
    const err = blocked(`socket connect to ${host}`);
    process.nextTick(() => this.destroy(err));
    return this;
  }
  return origConnect.apply(this, args);
};
