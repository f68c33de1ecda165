/*
 * socket.io-sessions.js: connects a socket.io client with this browser's
 * session, for clients that cannot send the session cookie. Served by the
 * iosessions Go library with a short-lived token for this session inlined;
 * never the session id or cookie.
 *
 *   var socket = io.connectWithSession(url, opts); // returns the socket
 *
 * socket.io 1.x/2.x clients send the token in the handshake query, 3.x/4.x
 * clients in the handshake auth payload. A token is good for one handshake:
 * before a reconnect a fresh one is fetched from the same URL, and a used
 * one is never sent again.
 *
 * With a session kept in the cookie, the server sends "swriteback" after
 * an event that changed it: an opaque, signed, single-use write-back that
 * the shim POSTs back at once (same origin, with credentials, no-store) to
 * get the new cookie set. Write-backs are applied in order; one older
 * than the newest applied is dropped, and the server refuses it anyway.
 */
(function (root) {
  "use strict";
  var io = root.io;
  if (typeof io !== "function") {
    throw new Error("socket.io-sessions.js: load the socket.io client first");
  }
  var state = /*IOSESSIONS_STATE*/null;
  // Refresh from where this script came from, which also works cross-origin.
  var script = root.document && root.document.currentScript;
  if (script && script.src) {
    state.url = script.src.split("?")[0];
    if (state.writeback) { state.writeback = state.url.replace(/\.js$/, "") + "/writeback"; }
  }
  var margin = 5000; // refresh this many ms before expiry

  function fresh() {
    return !!state.token && !state.used && Date.now() < state.expires - margin;
  }

  // refresh fetches a new token for this browser's session, then calls done.
  function refresh(done) {
    if (typeof fetch !== "function") { done(); return; }
    fetch(state.url, {
      credentials: "include",
      cache: "no-store",
      headers: { Accept: "application/json" }
    }).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (s) {
      if (s) { state.token = s.token; state.expires = s.expires; state.used = false; }
      done();
    }, function () { done(); });
  }

  function withToken(obj) {
    var out = {};
    for (var k in obj) {
      if (Object.prototype.hasOwnProperty.call(obj, k)) { out[k] = obj[k]; }
    }
    if (state.writeback && state.wbparam) { out[state.wbparam] = "1"; }
    // Single-use: sent once, then dropped until a refresh brings another.
    if (state.token && !state.used) {
      out[state.param] = state.token;
      state.used = true;
    } else {
      delete out[state.param];
    }
    return out;
  }

  function connectV4(url, opts) {
    var userAuth = opts.auth;
    // socket.io 3.x/4.x calls auth before every (re)connect.
    opts.auth = function (cb) {
      var base = function (then) {
        if (typeof userAuth === "function") { userAuth(then); } else { then(userAuth || {}); }
      };
      base(function (a) {
        if (fresh()) { cb(withToken(a)); return; }
        refresh(function () { cb(withToken(a)); });
      });
    };
    return io(url, opts);
  }

  function connectV2(url, opts) {
    var autoConnect = opts.autoConnect !== false;
    var query = opts.query || {};
    if (typeof query === "string") {
      var parsed = {};
      query.split("&").forEach(function (kv) {
        if (!kv) { return; }
        var i = kv.indexOf("=");
        parsed[decodeURIComponent(i < 0 ? kv : kv.slice(0, i))] = i < 0 ? "" : decodeURIComponent(kv.slice(i + 1));
      });
      query = parsed;
    }
    // The token goes into the query just before a handshake (which uses it
    // up): now if the caller opens the socket itself, else below.
    opts.query = autoConnect ? query : withToken(query);
    opts.autoConnect = false;
    var socket = io(url, opts);
    var manager = socket.io;
    var setQuery = function () { manager.opts.query = withToken(manager.opts.query || {}); };
    // 2.x reconnects synchronously after reconnect_attempt: refresh as
    // soon as the connection drops, so the token is fresh by then, and put
    // it in the query at the attempt (which uses it up).
    socket.on("disconnect", function () { if (!fresh()) { refresh(function () {}); } });
    manager.on("reconnect_attempt", setQuery);
    if (autoConnect) {
      var open = function () { setQuery(); socket.open(); };
      if (fresh()) { open(); } else { refresh(open); }
    }
    return socket;
  }

  // Write-backs: one at a time, in the order received, newest wins.
  var applied = 0; // the version of the newest write-back applied
  var queue = Promise.resolve();
  function writeBack(msg) {
    if (!msg || typeof msg.token !== "string" || typeof msg.v !== "number") { return; }
    if (!state.writeback || typeof fetch !== "function") { return; }
    queue = queue.then(function () {
      if (msg.v <= applied) { return; }
      return fetch(state.writeback, {
        method: "POST",
        credentials: "include",
        cache: "no-store",
        body: new URLSearchParams({ token: msg.token })
      }).then(function (r) {
        if (r.ok && msg.v > applied) { applied = msg.v; }
      });
    }).catch(function () {});
  }

  io.connectWithSession = function (url, opts) {
    if (typeof url === "object" && url !== null) { opts = url; url = undefined; }
    opts = Object.assign({}, opts || {});
    // socket.io-client 1.x/2.x export io.protocol (4 or less); 3.x/4.x
    // speak protocol 5 and, from 4.x on, export no io.protocol at all.
    var legacy = typeof io.protocol === "number" && io.protocol < 5;
    var socket = legacy ? connectV2(url, opts) : connectV4(url, opts);
    socket.on("swriteback", writeBack);
    return socket;
  };
  // The name in the original socket.io-sessions module, for old pages.
  io.SessionSocket = io.connectWithSession;
})(typeof self !== "undefined" ? self : this);
