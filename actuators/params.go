package actuators

import (
	"encoding/json"
	"fmt"
	"strings"
)

// ParseParams turns NAME=VALUE arguments, as a person types them, into the
// action's params: a value is JSON when it parses as JSON and the catalog
// does not declare the param a string (limit=5, force=true), else a string
// (key=user:42). It does not validate them; ValidateParams does.
func (a *Action) ParseParams(args []string) (map[string]any, error) {
	var schema struct {
		Properties map[string]struct {
			Type any `json:"type"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(a.Params, &schema); err != nil {
		return nil, fmt.Errorf("params schema of %s: %w", a.Name, err)
	}
	params := map[string]any{}
	for _, arg := range args {
		k, v, ok := strings.Cut(arg, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("param %q: want NAME=VALUE", arg)
		}
		if _, dup := params[k]; dup {
			return nil, fmt.Errorf("param %q given twice", k)
		}
		var parsed any
		if schema.Properties[k].Type != "string" && json.Unmarshal([]byte(v), &parsed) == nil {
			params[k] = parsed
		} else {
			params[k] = v
		}
	}
	return params, nil
}
