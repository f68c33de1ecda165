// Package client holds the JavaScript of the iosessions client shim,
// embedded so that the Go binary serves it with no files beside it.
package client

import _ "embed"

// Shim is the source of socket.io-sessions.js. The server replaces the
// placeholder STATE with a JSON object {token, expires, url, param,
// writeback, wbparam}.
//
//go:embed socket.io-sessions.js
var Shim string

// Placeholder is the text in Shim that the server replaces.
const Placeholder = "/*IOSESSIONS_STATE*/null"
