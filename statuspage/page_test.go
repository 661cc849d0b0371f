package statuspage

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/operator-dev/operator/internal/importcheck"
)

// TestPageTreatsDataAsText keeps the page's one promise about what it
// shows: every value from the bus becomes text, never markup or code.
func TestPageTreatsDataAsText(t *testing.T) {
	js, err := assets.ReadFile("assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setTimeout('", `setTimeout("`} {
		if strings.Contains(string(js), sink) {
			t.Errorf("app.js uses %s: build elements and set textContent instead", sink)
		}
	}
	html, err := assets.ReadFile("assets/index.html")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`<script(?:[^>]*)>`).FindAllString(string(html), -1); len(m) != 1 || !strings.Contains(m[0], `src="/ui/app.js"`) {
		t.Errorf("index.html scripts %q: only /ui/app.js, no inline script (the policy refuses them)", m)
	}
	if regexp.MustCompile(`\son[a-z]+=`).Match(html) {
		t.Error("index.html has an inline event handler")
	}
	if regexp.MustCompile(`(?i)(src|href)="(https?:)?//`).Match(html) {
		t.Error("index.html loads something from another host")
	}
}

// subjectNames lists the subjects' folders, and the service one of them is.
func subjectNames(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("../subjects")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "subjectstest" {
			names = append(names, e.Name())
		}
	}
	if len(names) < 2 {
		t.Fatalf("subjects %v: the shipped ones are missing", names)
	}
	return names
}

// TestPageNamesNoSubject: everything subject-specific comes from the
// subject's views, so a new subject needs no change here.
func TestPageNamesNoSubject(t *testing.T) {
	forbidden := map[string]string{}
	for _, name := range subjectNames(t) {
		forbidden["github.com/operator-dev/operator/subjects/"+name] = "a subject"
	}
	forbidden["github.com/operator-dev/operator/ratelimiter"] = "a subject's service"
	importcheck.Forbid(t, "github.com/operator-dev/operator/statuspage", ".", forbidden)

	files, _ := filepath.Glob("*.go")
	assetFiles, _ := filepath.Glob("assets/*")
	for _, f := range append(files, assetFiles...) {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range append(subjectNames(t), "rate limiter") {
			if strings.Contains(strings.ToLower(string(src)), name) {
				t.Errorf("%s names the subject %q", f, name)
			}
		}
	}
}
