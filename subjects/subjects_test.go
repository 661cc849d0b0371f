package subjects

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestNewRegistryChecksViews(t *testing.T) {
	col := []Column{{Title: "id", Expr: "row.id"}}
	tests := []struct {
		name    string
		views   []View
		wantErr string
	}{
		{name: "no views", views: nil},
		{name: "a complete view", views: []View{{Name: "nodes", Rows: "obs.state.nodes", Columns: col}}},
		{name: "a name that is not a token", views: []View{{Name: "hot keys", Rows: "obs.state.keys", Columns: col}},
			wantErr: `view "hot keys": name: invalid subject token`},
		{name: "no rows", views: []View{{Name: "nodes", Columns: col}}, wantErr: "no rows expression"},
		{name: "no columns", views: []View{{Name: "nodes", Rows: "obs.state.nodes"}}, wantErr: "no columns"},
		{name: "a column without an expression", views: []View{{Name: "nodes", Rows: "obs.state.nodes", Columns: []Column{{Title: "id"}}}},
			wantErr: "column 1 needs a title and an expression"},
		{name: "a negative limit", views: []View{{Name: "nodes", Rows: "obs.state.nodes", Columns: col, Limit: -1}},
			wantErr: "limit -1 is negative"},
		{name: "one name twice", views: []View{{Name: "nodes", Rows: "obs.a", Columns: col}, {Name: "nodes", Rows: "obs.b", Columns: col}},
			wantErr: `view "nodes" declared twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Subject{Name: "toy", Files: Files{Rules: File{Path: "rules.yaml", Data: []byte("subject: toy")}},
				Observer: Observer{Flags: func(*pflag.FlagSet) NewSource { return nil }}, Views: tt.views}
			_, err := NewRegistry(s)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
