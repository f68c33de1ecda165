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
// one script call, so exactly one node hears of it. (A beat that finds
// dead nodes is two calls: the first finds them, the second reaps those
// not reaped meanwhile, as KEYS name keys and scripts build none.)

var _ iosessions.Directory = (*Store)(nil)

func (s *Store) regKey(name string) string { return s.prefix + "{reg}:" + name }

func (s *Store) regKeys(node string) []string {
	return []string{s.regKey("nodes"), s.regKey("sockets:" + node), s.regKey("count"),
		s.regKey("nodecount:" + node), s.regKey("online")}
}

// luaNow is Redis's time in ms; luaReap takes node d out, with its keys
// sockets and nodecount, its subjects starting their grace.
const luaNow = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

const luaReap = `local function reap(nodes, count, online, sockets, nodecount, d, grace, now)
  local counts = redis.call('HGETALL', nodecount)
  for i = 1, #counts, 2 do
    if redis.call('HINCRBY', count, counts[i], -tonumber(counts[i + 1])) <= 0 then
      redis.call('HDEL', count, counts[i])
      redis.call('ZADD', online, now + grace, counts[i])
    end
  end
  redis.call('DEL', sockets, nodecount)
  redis.call('ZREM', nodes, d)
end
`

// Every script names each key it touches in KEYS, as Redis Cluster wants;
// none builds a key name. The scripts that need the keys of nodes that
// only Redis knows (the dead ones to reap, the live ones to list) take
// those of the nodes the caller names, and answer with the nodes it did
// not name, for the caller to call again with them (see Beat, Sockets).

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

// beatScript: KEYS nodes, count, online, then sockets and nodecount of
// each node of ARGV[4…]; ARGV node, ttl ms, grace ms, nodes to reap….
// It reaps the named nodes that are dead (and not reaped meanwhile). If
// other nodes are dead, it returns {fresh, {those nodes}} and does no
// more; else {fresh, {}, absent…}.
var beatScript = redis.NewScript(luaNow + luaReap + `
local grace = tonumber(ARGV[3])
local fresh = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local named = {}
for i = 4, #ARGV do
  local d = ARGV[i]
  named[d] = true
  local deadline = redis.call('ZSCORE', KEYS[1], d)
  if deadline and tonumber(deadline) <= now then
    reap(KEYS[1], KEYS[2], KEYS[3], KEYS[2 * i - 4], KEYS[2 * i - 3], d, grace, now)
  end
end
local unnamed = {}
for _, d in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  if not named[d] then table.insert(unnamed, d) end
end
if #unnamed > 0 then return {fresh, unnamed} end
local out = {fresh, {}}
for _, s in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '(0', now)) do
  redis.call('ZREM', KEYS[3], s)
  table.insert(out, s)
end
return out`)

// partScript: KEYS nodes, count, online, sockets, nodecount (of the
// node); ARGV node, grace ms.
var partScript = redis.NewScript(luaNow + luaReap + `
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  reap(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], tonumber(ARGV[2]), now)
end
return 0`)

// socketsScript: KEYS nodes, then sockets of each node of ARGV; ARGV
// nodes. It returns {{live nodes}, missing, sockets of the named live
// nodes…}, missing being the number of live nodes not named.
var socketsScript = redis.NewScript(luaNow + `
local named = {}
for i = 1, #ARGV do named[ARGV[i]] = i + 1 end
local live = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
local out = {live, 0}
for _, n in ipairs(live) do
  local k = named[n]
  if k then
    for _, v in ipairs(redis.call('HVALS', KEYS[k])) do table.insert(out, v) end
  else
    out[2] = out[2] + 1
  end
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

// maxRounds bounds the calls of Beat and Sockets while nodes come and go.
const maxRounds = 5

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

// Beat implements iosessions.Directory: one script, or, when it finds
// dead nodes, one more with their keys to reap them.
func (s *Store) Beat(ctx context.Context, node string, ttl, grace time.Duration) (bool, []string, error) {
	var fresh bool
	var dead []string
	for range maxRounds {
		keys := []string{s.regKey("nodes"), s.regKey("count"), s.regKey("online")}
		args := []any{node, ms(ttl), ms(grace)}
		for _, d := range dead {
			keys = append(keys, s.regKey("sockets:"+d), s.regKey("nodecount:"+d))
			args = append(args, d)
		}
		res, err := beatScript.Run(ctx, s.client, keys, args...).Slice()
		if err != nil {
			return false, nil, err
		}
		f, subs, err := freshAnd(res)
		if err != nil {
			return false, nil, err
		}
		fresh = fresh || f
		if len(res) < 2 {
			return false, nil, fmt.Errorf("iosredis: registry beat: short reply")
		}
		unnamed, _ := res[1].([]any)
		if len(unnamed) == 0 {
			return fresh, subs, nil
		}
		dead = strsOf(unnamed)
	}
	return false, nil, fmt.Errorf("iosredis: registry beat: dead nodes kept changing")
}

// Part implements iosessions.Directory.
func (s *Store) Part(ctx context.Context, node string, grace time.Duration) error {
	keys := []string{s.regKey("nodes"), s.regKey("count"), s.regKey("online"),
		s.regKey("sockets:" + node), s.regKey("nodecount:" + node)}
	return partScript.Run(ctx, s.client, keys, node, ms(grace)).Err()
}

// Nodes implements iosessions.Directory.
func (s *Store) Nodes(ctx context.Context) ([]string, error) {
	return liveScript.Run(ctx, s.client, []string{s.regKey("nodes")}, 0).StringSlice()
}

// Present implements iosessions.Directory.
func (s *Store) Present(ctx context.Context) ([]string, error) {
	return liveScript.Run(ctx, s.client, []string{s.regKey("online")}, 1).StringSlice()
}

// Sockets implements iosessions.Directory: one script, naming the live
// nodes that the last call found, and one more when others came.
func (s *Store) Sockets(ctx context.Context) ([]iosessions.SocketInfo, error) {
	s.mu.Lock()
	nodes := s.live
	s.mu.Unlock()
	var vals []any
	for round := 0; ; round++ {
		if round == maxRounds {
			return nil, fmt.Errorf("iosredis: registry sockets: live nodes kept changing")
		}
		keys := []string{s.regKey("nodes")}
		args := make([]any, len(nodes))
		for i, n := range nodes {
			keys = append(keys, s.regKey("sockets:"+n))
			args[i] = n
		}
		res, err := socketsScript.Run(ctx, s.client, keys, args...).Slice()
		if err != nil {
			return nil, err
		}
		if len(res) < 2 {
			return nil, fmt.Errorf("iosredis: registry sockets: short reply")
		}
		live, _ := res[0].([]any)
		nodes = strsOf(live)
		if missing, _ := res[1].(int64); missing == 0 {
			vals = res[2:]
			break
		}
	}
	s.mu.Lock()
	s.live = nodes
	s.mu.Unlock()
	out := make([]iosessions.SocketInfo, 0, len(vals))
	for _, v := range vals {
		str, _ := v.(string)
		var si iosessions.SocketInfo
		if err := json.Unmarshal([]byte(str), &si); err != nil {
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

// strsOf returns the strings of a script's reply.
func strsOf(vs []any) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		if str, ok := v.(string); ok {
			out = append(out, str)
		}
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
