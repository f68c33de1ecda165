package iosessions

import (
	"bytes"
	"encoding/gob"
	"reflect"
	"time"
)

// Session values are copied and compared natively when they are of the
// types people keep in sessions: nil, bool, the numbers, string, []byte,
// time.Time, and slices and maps of those (map[string]any, map[any]any,
// []any and the typed ones below), nested. A value of any other type goes
// through gob, as stores encode it: slower, but the same result.

// CloneValues returns a deep copy of a session's values: natively for the
// types above, through gob for the others (an error when such a value does
// not encode). Stores use it to keep a private copy of values they hand
// out, without encoding the common case.
func CloneValues(values map[any]any) (map[any]any, error) { return cloneValues(values) }

// cloneValues returns a deep copy of values, or an error when a value of
// a type the library does not copy natively does not encode with gob.
func cloneValues(values map[any]any) (map[any]any, error) {
	out := make(map[any]any, len(values))
	for k, v := range values {
		c, err := cloneAny(v)
		if err != nil {
			return nil, err
		}
		out[k] = c
	}
	return out, nil
}

// cloneAny deep-copies v natively, or through a gob round trip.
func cloneAny(v any) (any, error) {
	if c, ok := clone(v); ok {
		return c, nil
	}
	return gobRoundTrip(v)
}

// gobRoundTrip returns v as a store that encodes with gob gives it back.
func gobRoundTrip(v any) (any, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(map[any]any{0: v}); err != nil {
		return nil, err
	}
	m := make(map[any]any, 1)
	if err := gob.NewDecoder(&buf).Decode(&m); err != nil {
		return nil, err
	}
	return m[0], nil
}

// clone deep-copies v if it is made only of the native types, and reports
// whether it was. Times lose their monotonic reading, as in a store.
func clone(v any) (any, bool) {
	switch x := v.(type) {
	case nil, bool, string, int, int8, int16, int32, int64, uint, uint8, uint16,
		uint32, uint64, uintptr, float32, float64, complex64, complex128:
		return x, true
	case time.Time:
		return x.Round(0), true
	case []byte:
		return cloneSlice(x), true
	case []string:
		return cloneSlice(x), true
	case []int:
		return cloneSlice(x), true
	case []int64:
		return cloneSlice(x), true
	case []float64:
		return cloneSlice(x), true
	case []bool:
		return cloneSlice(x), true
	case []any:
		if x == nil {
			return x, true
		}
		out := make([]any, len(x))
		for i, e := range x {
			c, ok := clone(e)
			if !ok {
				return nil, false
			}
			out[i] = c
		}
		return out, true
	case map[string]any:
		return cloneAnyMap(x, func(string) bool { return true })
	case map[any]any:
		return cloneAnyMap(x, basicKey)
	case map[string]string:
		return cloneMap(x), true
	case map[string]int:
		return cloneMap(x), true
	case map[string]bool:
		return cloneMap(x), true
	case map[string]float64:
		return cloneMap(x), true
	}
	return nil, false
}

// cloneAnyMap deep-copies m if every key passes keyOK and every value
// clones natively.
func cloneAnyMap[K comparable](m map[K]any, keyOK func(K) bool) (any, bool) {
	if m == nil {
		return m, true
	}
	out := make(map[K]any, len(m))
	for k, e := range m {
		if !keyOK(k) {
			return nil, false
		}
		c, ok := clone(e)
		if !ok {
			return nil, false
		}
		out[k] = c
	}
	return out, true
}

func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append(make([]T, 0, len(s)), s...)
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return nil
	}
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// basicKey reports whether k is a map key clone copies as it is.
func basicKey(k any) bool {
	switch k.(type) {
	case bool, string, int, int8, int16, int32, int64, uint, uint8, uint16,
		uint32, uint64, uintptr, float32, float64:
		return true
	}
	return false
}

// sameValue reports whether v, a value as a handler left it, is what
// base (a clone made earlier) holds: what a store's round trip drops (a
// time's monotonic reading) is no change.
func sameValue(base, v any) bool {
	if eq, native := equal(base, v); native {
		return eq
	}
	if reflect.DeepEqual(base, v) {
		return true
	}
	rt, err := gobRoundTrip(v)
	return err == nil && reflect.DeepEqual(base, rt)
}

// equal compares v with base without copying, when v is made only of the
// types clone copies (native); base is a clone.
func equal(base, v any) (eq, native bool) {
	switch x := v.(type) {
	case nil, bool, string, int, int8, int16, int32, int64, uint, uint8, uint16,
		uint32, uint64, uintptr, float32, float64, complex64, complex128:
		return base == v, true
	case time.Time:
		b, ok := base.(time.Time)
		return ok && b == x.Round(0), true
	case []byte:
		return equalSlice(base, x), true
	case []string:
		return equalSlice(base, x), true
	case []int:
		return equalSlice(base, x), true
	case []int64:
		return equalSlice(base, x), true
	case []float64:
		return equalSlice(base, x), true
	case []bool:
		return equalSlice(base, x), true
	case []any:
		b, ok := base.([]any)
		eq = ok && (b == nil) == (x == nil) && len(b) == len(x)
		for i, e := range x {
			var en bool
			var ee bool
			if eq {
				ee, en = equal(b[i], e)
			} else {
				_, en = clone(e)
			}
			if !en {
				return false, false
			}
			eq = eq && ee
		}
		return eq, true
	case map[string]any:
		return equalAnyMap(base, x, func(string) bool { return true })
	case map[any]any:
		return equalAnyMap(base, x, basicKey)
	case map[string]string:
		return equalMap(base, x), true
	case map[string]int:
		return equalMap(base, x), true
	case map[string]bool:
		return equalMap(base, x), true
	case map[string]float64:
		return equalMap(base, x), true
	}
	return false, false
}

// equalAnyMap is equal for a map of any values; base is a clone.
func equalAnyMap[K comparable](base any, m map[K]any, keyOK func(K) bool) (eq, native bool) {
	b, ok := base.(map[K]any)
	eq = ok && (b == nil) == (m == nil) && len(b) == len(m)
	for k, e := range m {
		if !keyOK(k) {
			return false, false
		}
		var en, ee bool
		if be, found := b[k]; eq && found {
			ee, en = equal(be, e)
		} else {
			_, en = clone(e)
		}
		if !en {
			return false, false
		}
		eq = eq && ee
	}
	return eq, true
}

func equalSlice[T comparable](base any, s []T) bool {
	b, ok := base.([]T)
	if !ok || (b == nil) != (s == nil) || len(b) != len(s) {
		return false
	}
	for i := range s {
		if b[i] != s[i] {
			return false
		}
	}
	return true
}

func equalMap[K, V comparable](base any, m map[K]V) bool {
	b, ok := base.(map[K]V)
	if !ok || (b == nil) != (m == nil) || len(b) != len(m) {
		return false
	}
	for k, v := range m {
		if bv, found := b[k]; !found || bv != v {
			return false
		}
	}
	return true
}
