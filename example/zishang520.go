package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	sioredis "github.com/zishang520/socket.io/adapters/redis/v3"
	"github.com/zishang520/socket.io/adapters/redis/v3/adapter"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/iosessions/iosessions/zishang520"
)

// newZishang520 serves the example's events with zishang520/socket.io v3
// (socket.io 3.x/4.x clients). With a Redis client (-store redis), the
// engine's Redis adapter carries room broadcasts to every node, so
// srv.Engine().To(room).Emit reaches the room's sockets on all of them.
// Sessions do not need it: a logout reaches other nodes through the
// store (iosredis), and the binding's sinvalid broadcasts stay local.
// With adminToken, namespace /admin speaks the socket.io Admin UI's
// protocol, login admin / adminToken, in its development mode (events
// listed); the adapter carries it across nodes too.
func newZishang520(a *app, rc *redis.Client, adminToken string) (engineServer, error) {
	var opts *zishang520.Options
	var client *sioredis.RedisClient
	if rc != nil {
		client = sioredis.NewRedisClient(context.Background(), rc)
		aopts := &adapter.RedisAdapterOptions{}
		aopts.SetKey(exampleKeyPrefix + "socket.io")
		so := socket.DefaultServerOptions()
		so.SetAdapter(&adapter.RedisAdapterBuilder{Redis: client, Opts: aopts})
		opts = &zishang520.Options{Server: so}
	}
	srv, err := zishang520.NewServer(a.m, opts)
	if err != nil {
		return nil, err
	}
	if client != nil {
		// After NewServer: the adapter's own listener, which warns when
		// it is the only one, runs first.
		onAdapterError(client)
	}
	zishang520.OnMessage(srv, "incr", a.incr)
	zishang520.OnMessage(srv, "whoami", a.whoami)
	zishang520.OnEvent(srv, "echo", echo)
	if adminToken != "" {
		err := srv.AdminUI(zishang520.AdminUIOptions{Username: "admin", Password: adminToken, Events: true})
		if err != nil {
			_ = srv.Close()
			return nil, err
		}
	}
	return srv, nil
}

// onAdapterError logs the errors of the engine's Redis adapter, one in
// ten seconds. While Redis is down, the adapter's subscription loops
// report a failed read and try again at once, with no pause (go-redis
// fails dials fast once several failed): a busy loop. The listener runs on
// the loop's goroutine, so it paces the loop to four tries a second.
// Publishing errors pass here too; the example never broadcasts across
// nodes itself. The adapter stops when the server closes.
func onAdapterError(client *sioredis.RedisClient) {
	var mu sync.Mutex
	var last time.Time
	_ = client.On("error", func(args ...any) {
		mu.Lock()
		if time.Since(last) >= 10*time.Second {
			last = time.Now()
			slog.Warn("socket.io redis adapter", "err", args)
		}
		mu.Unlock()
		time.Sleep(250 * time.Millisecond)
	})
}
