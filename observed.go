package iosessions

import (
	"context"
	"time"
)

// The optional interfaces of a store that the Manager keeps in fields
// (Directory, Relay, TokenLedger, Checker) are wrapped, when the store
// provides them, so that each call is observed as a store call (see
// KindStoreCall). Without an Observer a wrapper costs a nil check.

// observedDir is a store's Directory, observed.
type observedDir struct {
	Directory
	m *Manager
}

func (d observedDir) Join(ctx context.Context, s SocketInfo, subjects []string, ttl time.Duration) (bool, []string, error) {
	t := d.m.callStart()
	fresh, present, err := d.Directory.Join(ctx, s, subjects, ttl)
	d.m.callEnd(OpDirJoin, t, err)
	return fresh, present, err
}

func (d observedDir) Leave(ctx context.Context, s SocketInfo, subjects []string, grace time.Duration) error {
	t := d.m.callStart()
	err := d.Directory.Leave(ctx, s, subjects, grace)
	d.m.callEnd(OpDirLeave, t, err)
	return err
}

func (d observedDir) Beat(ctx context.Context, node string, ttl, grace time.Duration) (bool, []string, error) {
	t := d.m.callStart()
	fresh, absent, err := d.Directory.Beat(ctx, node, ttl, grace)
	d.m.callEnd(OpDirBeat, t, err)
	return fresh, absent, err
}

func (d observedDir) Part(ctx context.Context, node string, grace time.Duration) error {
	t := d.m.callStart()
	err := d.Directory.Part(ctx, node, grace)
	d.m.callEnd(OpDirPart, t, err)
	return err
}

func (d observedDir) Nodes(ctx context.Context) ([]string, error) {
	t := d.m.callStart()
	nodes, err := d.Directory.Nodes(ctx)
	d.m.callEnd(OpDirNodes, t, err)
	return nodes, err
}

func (d observedDir) Sockets(ctx context.Context) ([]SocketInfo, error) {
	t := d.m.callStart()
	socks, err := d.Directory.Sockets(ctx)
	d.m.callEnd(OpDirSockets, t, err)
	return socks, err
}

func (d observedDir) Present(ctx context.Context) ([]string, error) {
	t := d.m.callStart()
	subs, err := d.Directory.Present(ctx)
	d.m.callEnd(OpDirPresent, t, err)
	return subs, err
}

// observedRelay is a store's Relay, observed.
type observedRelay struct {
	r Relay
	m *Manager
}

func (r observedRelay) Relay(ctx context.Context, msg []byte) error {
	t := r.m.callStart()
	err := r.r.Relay(ctx, msg)
	r.m.callEnd(OpRelay, t, err)
	return err
}

func (r observedRelay) OnRelay(f func(msg []byte)) { r.r.OnRelay(f) }

// observedLedger is a store's TokenLedger, observed.
type observedLedger struct {
	TokenLedger
	m *Manager
}

func (l observedLedger) Use(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	t := l.m.callStart()
	first, err := l.TokenLedger.Use(ctx, id, ttl)
	l.m.callEnd(OpToken, t, err)
	return first, err
}

// observedChecker is a store's Checker, observed.
type observedChecker struct {
	Checker
	m *Manager
}

func (c observedChecker) Exist(ctx context.Context, name string, ids []string) ([]bool, error) {
	t := c.m.callStart()
	alive, err := c.Checker.Exist(ctx, name, ids)
	c.m.callEnd(OpCheck, t, err)
	return alive, err
}
