package expr

import (
	"errors"
	"fmt"
	"math"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// A Value is a CEL value: a JSON document decoded by ParseJSON or a part of
// one, or what an expression yields.
type Value = ref.Val

// JSONValue converts a CEL value back to plain Go data as encoding/json
// decodes it (map[string]any, []any, float64, string, bool, nil), plus
// int64 and uint64 for CEL integers, and timestamps and durations as text.
// It refuses what JSON cannot hold: NaN, infinities, maps with keys that
// are not strings, and CEL errors (returned as the error).
func JSONValue(v Value) (any, error) {
	switch v := v.(type) {
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(v), nil
	case types.String:
		return string(v), nil
	case types.Double:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%v is not representable in JSON", f)
		}
		return f, nil
	case types.Int:
		return int64(v), nil
	case types.Uint:
		return uint64(v), nil
	case types.Timestamp:
		return v.Time.UTC().Format(time.RFC3339Nano), nil
	case types.Duration:
		return v.Duration.String(), nil
	case *types.Err:
		return nil, v
	case traits.Mapper:
		out := map[string]any{}
		it := v.Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			ks, ok := k.(types.String)
			if !ok {
				return nil, fmt.Errorf("map key %v is not a string", k)
			}
			e, err := JSONValue(v.Get(k))
			if err != nil {
				return nil, err
			}
			out[string(ks)] = e
		}
		return out, nil
	case traits.Lister:
		n, ok := v.Size().(types.Int)
		if !ok {
			return nil, errors.New("list without a size")
		}
		out := make([]any, int(n))
		for i := range out {
			e, err := JSONValue(v.Get(types.Int(i)))
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported value of type %s", v.Type())
}
