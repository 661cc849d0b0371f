package statuspage

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/operator-dev/operator/subjects"
)

func TestViews(t *testing.T) {
	v, err := CompileViews("toy", toySubject().Views)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		items     string
		want      string // rows as JSON
		wantTotal int
		wantErr   string
	}{
		{name: "sorted, limited, marked", items: `[{"name":"a","n":1},{"name":"b","n":9},{"name":"c","n":4}]`,
			want: `[{"cells":["b",9],"status":"bad"},{"cells":["c",4],"status":"ok"}]`, wantTotal: 3},
		{name: "no rows", items: `[]`, want: `[]`},
		{name: "a failing cell is null", items: `[{"n":1}]`, want: `[{"cells":[null,1],"status":"ok"}]`, wantTotal: 1},
		{name: "no list to make rows of", items: `7`, want: `[]`, wantErr: "rows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := observation(t, time.Now(), tt.items)
			tables := v.Tables(f.e.Data())
			if len(tables) != 1 {
				t.Fatalf("%d tables", len(tables))
			}
			tb := tables[0]
			rows, _ := json.Marshal(tb.Rows)
			if string(rows) != tt.want || tb.Total != tt.wantTotal || !strings.Contains(tb.Error, tt.wantErr) || (tt.wantErr == "") != (tb.Error == "") {
				t.Errorf("rows %s total %d error %q; want %s total %d error containing %q", rows, tb.Total, tb.Error, tt.want, tt.wantTotal, tt.wantErr)
			}
			if tb.Name != "items" || tb.Title != "Items" || len(tb.Columns) != 2 || tb.Columns[1].Unit != "/s" {
				t.Errorf("table head %+v", tb)
			}
		})
	}
}

func TestCompileViewsRefuses(t *testing.T) {
	col := []subjects.Column{{Title: "id", Expr: "row.id"}}
	tests := []struct {
		name    string
		subject string
		view    subjects.View
		wantErr string
	}{
		{"a syntax error", "toy", subjects.View{Name: "a", Rows: "obs.state.(", Columns: col}, `toy view a: rows "obs.state.("`},
		{"rows that are not a list", "toy", subjects.View{Name: "a", Rows: `"x"`, Columns: col}, "must evaluate to a list"},
		{"a field the state schema lacks", "ratelimiter", subjects.View{Name: "a", Rows: "obs.state.nodez", Columns: col}, "nodez"},
		{"a column field the row lacks", "ratelimiter", subjects.View{Name: "a", Rows: "obs.state.nodes", Columns: []subjects.Column{{Title: "x", Expr: "row.idd"}}},
			`column x "row.idd"`},
		{"an order that is not a key", "toy", subjects.View{Name: "a", Rows: "obs.state.items", OrderBy: "[1]", Columns: col}, "order_by"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileViews(tt.subject, []subjects.View{tt.view})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
