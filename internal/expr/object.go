package expr

import (
	"reflect"
	"sync"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// object is a JSON object as a CEL map with string keys. Field selection,
// the hot path of every evaluation, is a scan of a short slice (or an index
// for large objects) instead of a hash map per object; the rarely used
// operations (equality, iteration, conversion) go through a regular CEL map
// built on first use. Safe for concurrent use.
type object struct {
	fields []field
	index  map[string]int // for objects with more than indexFrom fields

	once sync.Once
	full traits.Mapper
}

const indexFrom = 16

var _ traits.Mapper = (*object)(nil)

// field is one field of an object.
type field struct {
	name string
	val  ref.Val
}

// init sets the fields of a zero object, which owns them from then on.
func (o *object) init(fields []field) {
	o.fields = fields
	if len(fields) > indexFrom {
		o.index = make(map[string]int, len(fields))
		for i, f := range fields {
			o.index[f.name] = i
		}
	}
}

func (o *object) lookup(k string) (ref.Val, bool) {
	if o.index != nil {
		i, ok := o.index[k]
		if !ok {
			return nil, false
		}
		return o.fields[i].val, true
	}
	for i := range o.fields {
		if o.fields[i].name == k {
			return o.fields[i].val, true
		}
	}
	return nil, false
}

func (o *object) asMap() traits.Mapper {
	o.once.Do(func() {
		m := make(map[ref.Val]ref.Val, len(o.fields))
		for _, f := range o.fields {
			m[types.String(f.name)] = f.val
		}
		o.full = types.NewRefValMap(types.DefaultTypeAdapter, m).(traits.Mapper)
	})
	return o.full
}

// Find returns the value of a string key.
func (o *object) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return o.asMap().Find(key)
	}
	return o.lookup(string(k))
}

// Get returns the value of key, or a no such key error.
func (o *object) Get(key ref.Val) ref.Val {
	if v, ok := o.Find(key); ok {
		return v
	}
	if types.IsError(key) || types.IsUnknown(key) {
		return key
	}
	return types.NewErr("no such key: %v", key)
}

// Contains reports whether key is present.
func (o *object) Contains(key ref.Val) ref.Val {
	_, ok := o.Find(key)
	return types.Bool(ok)
}

// Size returns the number of fields.
func (o *object) Size() ref.Val { return types.Int(len(o.fields)) }

// Iterator iterates over the keys.
func (o *object) Iterator() traits.Iterator { return o.asMap().Iterator() }

// ConvertToNative converts like a CEL map.
func (o *object) ConvertToNative(t reflect.Type) (any, error) { return o.asMap().ConvertToNative(t) }

// ConvertToType converts like a CEL map.
func (o *object) ConvertToType(t ref.Type) ref.Val { return o.asMap().ConvertToType(t) }

// Equal compares like a CEL map.
func (o *object) Equal(other ref.Val) ref.Val { return o.asMap().Equal(other) }

// Type is map.
func (o *object) Type() ref.Type { return types.MapType }

// Value returns the underlying map.
func (o *object) Value() any { return o.asMap().Value() }
