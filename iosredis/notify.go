package iosredis

import (
	"context"
	"time"
)

// channel is the Redis pub/sub channel of ended sessions.
func (s *Store) channel() string { return s.prefix + "ended" }

// NotifyEnd implements iosessions.Notifier: f is called with the id of
// every session deleted through a Store on any node sharing this Redis and
// KeyPrefix, this one included. The first call subscribes; go-redis
// resubscribes by itself when Redis comes back after a failure. Sessions
// that expire are not reported here: see Exist.
func (s *Store) NotifyEnd(f func(id string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notify = append(s.notify, f)
	if s.sub != nil || s.closed {
		return
	}
	s.sub = s.client.Subscribe(context.Background(), s.channel())
	s.subDone = make(chan struct{})
	ch := s.sub.Channel()
	go func() {
		defer close(s.subDone)
		for msg := range ch {
			s.mu.Lock()
			fs := s.notify
			s.mu.Unlock()
			for _, f := range fs {
				f(msg.Payload)
			}
		}
	}()
}

// publishEnded tells every node that id ended. If Redis fails here, the
// other nodes still notice within the Manager's CheckInterval.
func (s *Store) publishEnded(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = s.client.Publish(ctx, s.channel(), id).Err()
}

// Close stops the subscription of NotifyEnd. It does not close the Redis
// client. It is idempotent.
func (s *Store) Close() error {
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
