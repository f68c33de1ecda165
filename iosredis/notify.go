package iosredis

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Redis pub/sub channels of a Store: ended sessions, and the
// Manager's relayed broadcasts.
func (s *Store) endedChannel() string   { return s.prefix + "ended" }
func (s *Store) relayChannel() string   { return s.prefix + "relay" }
func (s *Store) changedChannel() string { return s.prefix + "changed" }

// PushChannel is the channel of pushes from other processes, for a Store
// of KeyPrefix prefix ("" means the default, "session:"): prefix + "push".
func PushChannel(prefix string) string {
	if prefix == "" {
		prefix = "session:"
	}
	return prefix + "push"
}

// NotifyEnd implements iosessions.Notifier: f is called with the id of
// every session deleted through a Store on any node sharing this Redis and
// KeyPrefix, this one included. The first call subscribes; go-redis
// resubscribes by itself when Redis comes back after a failure. Sessions
// that expire are not reported here: see Exist.
func (s *Store) NotifyEnd(f func(id string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notify = append(s.notify, f)
	s.subscribeLocked()
}

// NotifyChange implements iosessions.ChangeNotifier: f is called with the
// id of every session that Save stored again (an HTTP handler's save) on
// any node sharing this Redis and KeyPrefix, this one included. After the
// subscription was lost and is back, f is called once with "": any session
// may have changed meanwhile.
func (s *Store) NotifyChange(f func(id string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.changes = append(s.changes, f)
	s.subscribeLocked()
}

// OnRelay implements iosessions.Relay: f is called with every message
// that a Store on any node sharing this Redis and KeyPrefix relayed, this
// one's included.
func (s *Store) OnRelay(f func(msg []byte)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.relays = append(s.relays, f)
	s.subscribeLocked()
}

// OnPush implements iosessions.PushFeed: f is called with every message
// published on PushChannel(KeyPrefix), by a Publisher or by any process
// with PUBLISH.
func (s *Store) OnPush(f func(msg []byte)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pushes = append(s.pushes, f)
	s.subscribeLocked()
}

// Relay implements iosessions.Relay: it publishes msg to every node.
func (s *Store) Relay(ctx context.Context, msg []byte) error {
	return s.client.Publish(ctx, s.relayChannel(), msg).Err()
}

// subscribeLocked subscribes to the Store's channels, once; s.mu is held.
func (s *Store) subscribeLocked() {
	if s.sub != nil || s.closed {
		return
	}
	ended, relay, push, changed := s.endedChannel(), s.relayChannel(), PushChannel(s.prefix), s.changedChannel()
	s.sub = s.client.Subscribe(context.Background(), ended, relay, push, changed)
	s.subDone = make(chan struct{})
	ch := s.sub.ChannelWithSubscriptions()
	go func() {
		defer close(s.subDone)
		subscribed := false // to changed, once: a later subscribe is a resubscribe
		for m := range ch {
			s.mu.Lock()
			notify, relays, pushes, changes := s.notify, s.relays, s.pushes, s.changes
			s.mu.Unlock()
			if sub, ok := m.(*redis.Subscription); ok {
				if sub.Kind == "subscribe" && sub.Channel == changed {
					if subscribed {
						for _, f := range changes {
							f("")
						}
					}
					subscribed = true
				}
				continue
			}
			msg, ok := m.(*redis.Message)
			if !ok {
				continue
			}
			switch msg.Channel {
			case changed:
				for _, f := range changes {
					f(msg.Payload)
				}
			case ended:
				for _, f := range notify {
					f(msg.Payload)
				}
			case relay:
				for _, f := range relays {
					f([]byte(msg.Payload))
				}
			case push:
				for _, f := range pushes {
					f([]byte(msg.Payload))
				}
			}
		}
	}()
}

// publishEnded tells every node that id ended. If Redis fails here, the
// other nodes still notice within the Manager's CheckInterval.
func (s *Store) publishEnded(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = s.client.Publish(ctx, s.endedChannel(), id).Err()
}

// publishChanged tells every node that id was saved over HTTP. If Redis
// fails here, the live copies catch up at the next change or at the
// resubscription.
func (s *Store) publishChanged(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = s.client.Publish(ctx, s.changedChannel(), id).Err()
}

// Close stops the subscription of NotifyEnd, OnRelay and OnPush, and the
// background releases of locks. It does not close the Redis client. It is
// idempotent.
func (s *Store) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.releases.Wait()
	s.mu.Lock()
	sub, done := s.sub, s.subDone
	s.sub, s.closed = nil, true
	s.mu.Unlock()
	if sub == nil {
		return nil
	}
	err := sub.Close()
	<-done
	return err
}
