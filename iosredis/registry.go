package iosredis

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/iosessions/iosessions"
)

// The registry (iosessions.Directory) lives in five keys that share the
// hash tag {reg}, so that its scripts work on Redis Cluster too:
//
//	<prefix>{reg}:nodes             zset   node -> deadline of its beat (ms)
//	<prefix>{reg}:sockets:<node>    hash   socket id -> SocketInfo (JSON)
//	<prefix>{reg}:count             hash   subject -> sockets, every node
//	<prefix>{reg}:nodecount:<node>  hash   subject -> sockets on the node
//	<prefix>{reg}:online            zset   present subject -> 0 while it has
//	                                       sockets, else the end of its grace (ms)
//
// Every change is one script, atomic in Redis, timed by Redis's own clock:
// a transition (absent to present, present to absent) happens in exactly
// one script call, so exactly one node hears of it.

var _ iosessions.Directory = (*Store)(nil)

func (s *Store) regKey(name string) string { return s.prefix + "{reg}:" + name }

func (s *Store) regKeys(node string) []string {
	return []string{s.regKey("nodes"), s.regKey("sockets:" + node), s.regKey("count"),
		s.regKey("nodecount:" + node), s.regKey("online")}
}

// luaNow is Redis's time in ms; luaReap takes node d out (keys built from
// ARGV[pre], in the same hash slot), its subjects starting their grace.
const luaNow = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

const luaReap = `local function reap(pre, nodes, count, online, d, grace, now)
  local counts = redis.call('HGETALL', pre .. 'nodecount:' .. d)
  for i = 1, #counts, 2 do
    if redis.call('HINCRBY', count, counts[i], -tonumber(counts[i + 1])) <= 0 then
      redis.call('HDEL', count, counts[i])
      redis.call('ZADD', online, now + grace, counts[i])
    end
  end
  redis.call('DEL', pre .. 'sockets:' .. d, pre .. 'nodecount:' .. d)
  redis.call('ZREM', nodes, d)
end
`

// joinScript: KEYS nodes, sockets, count, nodecount, online; ARGV node,
// socket id, info, ttl ms, subjects…; returns {fresh, present…}.
var joinScript = redis.NewScript(luaNow + `
local fresh = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[1])
local out = {fresh}
if redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) == 0 then return out end
for i = 5, #ARGV do
  local s = ARGV[i]
  redis.call('HINCRBY', KEYS[4], s, 1)
  if redis.call('HINCRBY', KEYS[3], s, 1) == 1 then
    if not redis.call('ZSCORE', KEYS[5], s) then table.insert(out, s) end
    redis.call('ZADD', KEYS[5], 0, s)
  end
end
return out`)

// leaveScript: KEYS as joinScript; ARGV socket id, grace ms, subjects….
var leaveScript = redis.NewScript(luaNow + `
if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then return 0 end
for i = 3, #ARGV do
  local s = ARGV[i]
  if redis.call('HINCRBY', KEYS[4], s, -1) <= 0 then redis.call('HDEL', KEYS[4], s) end
  if redis.call('HINCRBY', KEYS[3], s, -1) <= 0 then
    redis.call('HDEL', KEYS[3], s)
    redis.call('ZADD', KEYS[5], now + tonumber(ARGV[2]), s)
  end
end
return 1`)

// beatScript: KEYS nodes, count, online; ARGV node, ttl ms, grace ms,
// key prefix; returns {fresh, absent…}.
var beatScript = redis.NewScript(luaNow + luaReap + `
local grace = tonumber(ARGV[3])
local fresh = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
for _, d in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  reap(ARGV[4], KEYS[1], KEYS[2], KEYS[3], d, grace, now)
end
local out = {fresh}
for _, s in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '(0', now)) do
  redis.call('ZREM', KEYS[3], s)
  table.insert(out, s)
end
return out`)

// partScript: KEYS nodes, count, online; ARGV node, grace ms, key prefix.
var partScript = redis.NewScript(luaNow + luaReap + `
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  reap(ARGV[3], KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]), now)
end
return 0`)

// socketsScript: KEYS nodes; ARGV key prefix; the sockets of live nodes.
var socketsScript = redis.NewScript(luaNow + `
local out = {}
for _, n in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
  for _, v in ipairs(redis.call('HVALS', ARGV[1] .. 'sockets:' .. n)) do table.insert(out, v) end
end
return out`)

// liveScript: KEYS nodes or online; ARGV 1 for online. The live nodes, or
// the present subjects.
var liveScript = redis.NewScript(luaNow + `
if ARGV[1] == '1' then
  local out = redis.call('ZRANGEBYSCORE', KEYS[1], 0, 0)
  for _, s in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do table.insert(out, s) end
  return out
end
return redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')`)

func ms(d time.Duration) int64 { return d.Milliseconds() }

// Join implements iosessions.Directory.
func (s *Store) Join(ctx context.Context, si iosessions.SocketInfo, subjects []string, ttl time.Duration) (bool, []string, error) {
	info, err := json.Marshal(si)
	if err != nil {
		return false, nil, err
	}
	args := append([]any{si.Node, si.ID, info, ms(ttl)}, strs(subjects)...)
	res, err := joinScript.Run(ctx, s.client, s.regKeys(si.Node), args...).Slice()
	if err != nil {
		return false, nil, err
	}
	return freshAnd(res)
}

// Leave implements iosessions.Directory.
func (s *Store) Leave(ctx context.Context, si iosessions.SocketInfo, subjects []string, grace time.Duration) error {
	args := append([]any{si.ID, ms(grace)}, strs(subjects)...)
	return leaveScript.Run(ctx, s.client, s.regKeys(si.Node), args...).Err()
}

// Beat implements iosessions.Directory.
func (s *Store) Beat(ctx context.Context, node string, ttl, grace time.Duration) (bool, []string, error) {
	keys := []string{s.regKey("nodes"), s.regKey("count"), s.regKey("online")}
	res, err := beatScript.Run(ctx, s.client, keys, node, ms(ttl), ms(grace), s.regKey("")).Slice()
	if err != nil {
		return false, nil, err
	}
	return freshAnd(res)
}

// Part implements iosessions.Directory.
func (s *Store) Part(ctx context.Context, node string, grace time.Duration) error {
	keys := []string{s.regKey("nodes"), s.regKey("count"), s.regKey("online")}
	return partScript.Run(ctx, s.client, keys, node, ms(grace), s.regKey("")).Err()
}

// Nodes implements iosessions.Directory.
func (s *Store) Nodes(ctx context.Context) ([]string, error) {
	return liveScript.Run(ctx, s.client, []string{s.regKey("nodes")}, 0).StringSlice()
}

// Present implements iosessions.Directory.
func (s *Store) Present(ctx context.Context) ([]string, error) {
	return liveScript.Run(ctx, s.client, []string{s.regKey("online")}, 1).StringSlice()
}

// Sockets implements iosessions.Directory.
func (s *Store) Sockets(ctx context.Context) ([]iosessions.SocketInfo, error) {
	vals, err := socketsScript.Run(ctx, s.client, []string{s.regKey("nodes")}, s.regKey("")).StringSlice()
	if err != nil {
		return nil, err
	}
	out := make([]iosessions.SocketInfo, 0, len(vals))
	for _, v := range vals {
		var si iosessions.SocketInfo
		if err := json.Unmarshal([]byte(v), &si); err != nil {
			return nil, fmt.Errorf("iosredis: registry entry: %w", err)
		}
		out = append(out, si)
	}
	return out, nil
}

func strs(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// freshAnd decodes a script's {fresh, subjects…}.
func freshAnd(res []any) (bool, []string, error) {
	if len(res) == 0 {
		return false, nil, fmt.Errorf("iosredis: registry script: empty reply")
	}
	fresh, _ := res[0].(int64)
	var subs []string
	for _, v := range res[1:] {
		if str, ok := v.(string); ok {
			subs = append(subs, str)
		}
	}
	return fresh == 1, subs, nil
}
