package iosredis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/iosessions/iosessions"
)

// Publisher pushes events to the sockets of a user or of a session, on
// every node, from any process that reaches the Redis of the Stores,
// without a Manager: it publishes an iosessions.PushMessage on
// PushChannel(prefix). Processes in other languages do the same with
//
//	PUBLISH <prefix>push '{"user":"alice","event":"note","data":{"text":"hi"}}'
//
// Delivery is at most once and unacknowledged: a node that is cut off
// from Redis when the message is published never sees it.
type Publisher struct {
	client  redis.UniversalClient
	channel string
}

// NewPublisher returns a Publisher on client for the Stores of KeyPrefix
// prefix ("" means the default, "session:").
func NewPublisher(client redis.UniversalClient, prefix string) *Publisher {
	return &Publisher{client: client, channel: PushChannel(prefix)}
}

// PushUser sends event with data (as JSON) to every socket of user.
func (p *Publisher) PushUser(ctx context.Context, user, event string, data any) error {
	if user == "" {
		return errors.New("iosredis: PushUser: empty user")
	}
	return p.publish(ctx, iosessions.PushMessage{User: user, Event: event}, data)
}

// PushSession sends event with data (as JSON) to every socket of the
// session whose id in the store is id.
func (p *Publisher) PushSession(ctx context.Context, id, event string, data any) error {
	if id == "" {
		return errors.New("iosredis: PushSession: empty id")
	}
	return p.publish(ctx, iosessions.PushMessage{Session: id, Event: event}, data)
}

func (p *Publisher) publish(ctx context.Context, m iosessions.PushMessage, data any) error {
	if m.Event == "" {
		return errors.New("iosredis: push: empty event")
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("iosredis: push: %w", err)
	}
	m.Data = raw
	msg, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("iosredis: push: %w", err)
	}
	return p.client.Publish(ctx, p.channel, msg).Err()
}
