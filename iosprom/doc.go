// Package iosprom exports the metrics of an iosessions.Manager to
// Prometheus, with github.com/prometheus/client_golang, so that the core
// package keeps its two dependencies.
//
// New makes a Manager's collector and sets it as the Manager's Observer;
// register it on a registry and serve the registry with promhttp:
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(iosprom.New(m))
//	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// # Metrics
//
// Every name starts with iosessions_. Labels take values from small fixed
// sets only: never a user, a session, a socket id or an error's text.
//
//	name                                        type       labels           meaning
//	iosessions_sockets                          gauge      binding          sockets connected to this process
//	iosessions_sessions_live                    gauge                       sessions with a socket connected to this process
//	iosessions_handshakes_total                 counter    binding,outcome  socket handshakes: ok, or the sinvalid reason
//	iosessions_disconnects_total                counter    binding          sockets that disconnected
//	iosessions_events_total                     counter    mode,outcome     session events handled (Socket.Do)
//	iosessions_event_duration_seconds           histogram  mode             how long they took, before the ack
//	iosessions_store_calls_total                counter    op,result        calls of the session store
//	iosessions_store_call_duration_seconds      histogram  op               their latency
//	iosessions_saves_lost_total                 counter                     disconnects whose changes were not saved (ErrUnsaved)
//	iosessions_pushes_total                     counter                     Manager.Push calls that returned
//	iosessions_push_sockets_total               counter                     sockets those pushes reached, on every node
//	iosessions_push_acks_total                  counter                     sockets that acked them in time
//	iosessions_panics_total                     counter                     panics recovered (*iosessions.PanicError)
//
// The two gauges are read from the Manager at each scrape
// (Manager.Sockets, Manager.Stats), so they are exact; the rest count the
// Manager's observations (iosessions.Observation) since New.
//
// # Label values
//
//   - binding: the socket's engine binding, "googollee" or "zishang520";
//     "unknown" for a Conn that does not implement iosessions.Binder.
//   - outcome of a handshake: "ok", "no_session", "bad_key", "bad_token",
//     "not_found", "ended", "store_unavailable", "store_timeout",
//     "origin", "shutdown", "canceled" or "error". A browser handshake
//     that a binding refuses with 403 for its origin never becomes a
//     socket and is not counted.
//   - mode: "perconn" or "permessage".
//   - outcome of an event: "ok", "error" (the handler's own error, or a
//     save the store refused), "no_session", "ended",
//     "store_unavailable", "store_timeout", "shutdown", "panic",
//     "canceled".
//   - op: "load", "update", "save", "delete", "lock", "unlock", "check",
//     "token", "relay", and the directory's "dir_join", "dir_leave",
//     "dir_beat", "dir_part", "dir_nodes", "dir_sockets", "dir_present"
//     (see the Op constants of iosessions; directory, relay and token
//     calls are made to the store only with a store that provides them,
//     as iosredis does).
//   - result: "ok", "not_found" (no such session: an answer, not a
//     failure), "timeout" (Config.StoreTimeout passed) or "error".
//
// Pushes count Manager.Push calls of this process; pushes published by
// other processes (iosessions.PushFeed) are not counted.
package iosprom
