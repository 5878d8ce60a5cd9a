// Preloaded into @modelcontextprotocol/server-everything (node --require) by the interop suite.
//
// server-everything calls `app.listen(process.env.PORT || 3001)` with no host, which binds every
// interface. This hook forces every listening TCP server in the process onto 127.0.0.1, lets the
// kernel pick the port (PORT=0), writes the bound port to $INTEROP_PORT_FILE, and appends each
// HTTP request's method, path and headers as one JSON line to $INTEROP_HEADER_LOG, so the suite
// can check what the proxy sent upstream (injected credential, never the run token).
"use strict";
const fs = require("node:fs");
const net = require("node:net");
const http = require("node:http");

const portFile = process.env.INTEROP_PORT_FILE;
const headerLog = process.env.INTEROP_HEADER_LOG;
const name = process.env.INTEROP_UPSTREAM_NAME || "everything";

const origListen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  // Normalise listen(port[, host][, backlog][, cb]) and listen({port, host}) to loopback.
  if (args.length > 0 && typeof args[0] === "object" && args[0] !== null && !Array.isArray(args[0])) {
    args[0] = Object.assign({}, args[0], { host: "127.0.0.1" });
  } else if (args.length > 0 && (typeof args[0] === "number" || typeof args[0] === "string")) {
    const port = Number(args[0]);
    const cb = typeof args[args.length - 1] === "function" ? args[args.length - 1] : undefined;
    args = cb ? [{ port, host: "127.0.0.1" }, cb] : [{ port, host: "127.0.0.1" }];
  }
  this.once("listening", () => {
    const addr = this.address();
    if (portFile && addr && typeof addr === "object") {
      fs.writeFileSync(portFile + ".tmp", String(addr.port));
      fs.renameSync(portFile + ".tmp", portFile);
    }
  });
  if (headerLog && this instanceof http.Server) {
    this.prependListener("request", (req) => {
      const headers = [];
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        headers.push([req.rawHeaders[i].toLowerCase(), req.rawHeaders[i + 1]]);
      }
      fs.appendFileSync(
        headerLog,
        JSON.stringify({ upstream: name, method: req.method, path: req.url, headers }) + "\n",
      );
    });
  }
  return origListen.apply(this, args);
};
