package iosessions

import "slices"

// frozen is a read-only deep copy of a session's values: what the
// MemoryStore keeps, and the base a socket's session is diffed against.
// It is a slice, not a map: a session holds a few values, and the
// smallest Go map is a table of eight slots, some 300 bytes. A big one
// (more than frozenIndexed values) gets an index for its lookups.
type frozen struct {
	kv  []frozenValue
	idx map[any]int // key -> position in kv; nil when small
}

type frozenValue struct{ k, v any }

// frozenIndexed is the size above which a frozen has an index.
const frozenIndexed = 16

// freeze returns a frozen deep copy of values (see cloneValues).
func freeze(values map[any]any) (frozen, error) {
	kv := make([]frozenValue, 0, len(values))
	for k, v := range values {
		c, err := cloneAny(v)
		if err != nil {
			return frozen{}, err
		}
		kv = append(kv, frozenValue{k, c})
	}
	return newFrozen(kv), nil
}

func newFrozen(kv []frozenValue) frozen {
	f := frozen{kv: kv}
	if len(kv) > frozenIndexed {
		f.idx = make(map[any]int, len(kv))
		for i, e := range kv {
			f.idx[e.k] = i
		}
	}
	return f
}

// get returns the value of key k. The value must not be written to.
func (f frozen) get(k any) (any, bool) {
	if f.idx != nil {
		i, ok := f.idx[k]
		if !ok {
			return nil, false
		}
		return f.kv[i].v, true
	}
	for _, e := range f.kv {
		if e.k == k { // map keys, comparable
			return e.v, true
		}
	}
	return nil, false
}

// thaw returns a deep copy of the values, a map a handler may change.
func (f frozen) thaw() (map[any]any, error) {
	out := make(map[any]any, len(f.kv))
	return out, f.thawInto(out)
}

// thawInto puts a deep copy of the values into m.
func (f frozen) thawInto(m map[any]any) error {
	for _, e := range f.kv {
		c, err := cloneAny(e.v)
		if err != nil {
			return err
		}
		m[e.k] = c
	}
	return nil
}

// with returns f with the changes c made: the values c sets are copied,
// the others shared with f.
func (f frozen) with(c changes) (frozen, error) {
	kv := make([]frozenValue, 0, len(f.kv)+len(c.set))
	for _, e := range f.kv {
		if slices.ContainsFunc(c.set, func(s frozenValue) bool { return s.k == e.k }) || slices.Contains(c.del, e.k) {
			continue
		}
		kv = append(kv, e)
	}
	for _, e := range c.set {
		cv, err := cloneAny(e.v)
		if err != nil {
			return frozen{}, err
		}
		kv = append(kv, frozenValue{e.k, cv})
	}
	return newFrozen(kv), nil
}

// shallow returns the values in a new map, not copied: to be changed by
// a function that only sets and deletes keys (an Updater's fn), then
// frozen again.
func (f frozen) shallow() map[any]any {
	out := make(map[any]any, len(f.kv))
	for _, e := range f.kv {
		out[e.k] = e.v
	}
	return out
}
