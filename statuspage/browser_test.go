package statuspage_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/sync/errgroup"

	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/pipeline"
	"github.com/operator-dev/operator/pipeline/scenario"
	"github.com/operator-dev/operator/ratelimiter"
	"github.com/operator-dev/operator/ratelimiter/api"
	"github.com/operator-dev/operator/schemas"
	"github.com/operator-dev/operator/statuspage"
	"github.com/operator-dev/operator/subjects"
	srl "github.com/operator-dev/operator/subjects/ratelimiter"
)

// chromiumPath finds Debian's chromium; without it the test skips, or
// fails under CI=true, where test.sh installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"chromium", "/usr/bin/chromium"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (apt-get install chromium; test.sh does it): the status page's browser test cannot run")
	}
	t.Skip("chromium is not installed (apt-get install chromium): skipping the status page in a browser")
	return ""
}

// artifactDir is where the test leaves its screenshot.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("OPERATOR_TEST_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

const browserToken = "browser-test-token"

// hostile is a summary a page that rendered it as markup would run.
const hostile = `<script>window.__xss=1</script><img src=x onerror="window.__xss=2"> probe`

// TestBrowser runs the pipeline on a rate limiter sandbox, loads the status
// page in headless Chromium and, without reloading it, watches a fault go
// through the whole chain: the alert pending then firing, the drain and
// every gate, the verification, the resolution and the diagnosis. Through
// the page it approves an action, engages and releases the kill switch,
// and survives a dropped stream. A hostile summary renders as text.
func TestBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	sb, err := srl.StartSandbox(ctx, srl.SandboxConfig{Nodes: 3, Limiter: ratelimiter.Config{EnableChaos: true, Clock: ratelimiter.ClockNode}})
	if err != nil {
		t.Fatal(err)
	}
	dep, err := sb.Deployment("demo", 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Start(ctx, pipeline.Config{Deployments: []*subjects.Deployment{dep},
		Store: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Close(); err != nil {
			t.Errorf("close pipeline: %v", err)
		}
	}()
	runCtx, stopRun := context.WithCancel(ctx)
	var g errgroup.Group
	g.Go(func() error { return p.Run(runCtx) })
	defer func() {
		stopRun()
		if err := g.Wait(); err != nil {
			t.Errorf("pipeline: %v", err)
		}
	}()

	sets, err := p.RuleSets()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := subjects.NewRegistry(srl.Subject())
	if err != nil {
		t.Fatal(err)
	}
	page, err := statuspage.New(ctx, statuspage.Config{Token: browserToken, RuleSets: sets, Subjects: reg}, p.Bus)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(page.Handler())
	defer srv.Close()

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1100))
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()

	// Uncaught exceptions in the page fail the test.
	var (
		consoleMu  sync.Mutex
		exceptions []string
		watchers   sync.WaitGroup
	)
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	watchers.Add(1)
	go func() {
		defer watchers.Done()
		for m, err := range chromedp.Console(bctx) {
			if err != nil {
				return
			}
			if m.IsException() {
				consoleMu.Lock()
				exceptions = append(exceptions, m.String())
				consoleMu.Unlock()
			}
		}
	}()
	defer func() {
		cancelBrowser()
		watchers.Wait()
		consoleMu.Lock()
		defer consoleMu.Unlock()
		for _, e := range exceptions {
			t.Errorf("page exception: %s", e)
		}
	}()

	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			text, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("%s: %v (after %s)\npage:\n%s", what, err, time.Since(start).Round(time.Millisecond), text)
		}
		t.Logf("%6.1fs %s", time.Since(start).Seconds(), what)
	}
	// until waits for a JavaScript condition; the page is never reloaded.
	until := func(what, cond string) {
		t.Helper()
		step(what, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(40*time.Second)))
	}

	step("load the page", chromedp.Navigate(srv.URL+"/"),
		chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem('operator-token', '`+browserToken+`')`))
	// A recorder of every alert row and connection state the page shows,
	// so states that last a moment are not missed between polls.
	step("record what the page shows", chromedp.Evaluate[chromedp.Void](`(() => {
		window.__seen = new Set();
		const note = () => {
			for (const r of document.querySelectorAll('#alerts tr.alert')) {
				window.__seen.add(r.dataset.fingerprint + ' ' + r.querySelector('.badge').textContent);
				if (/^fires in \d/.test(r.cells[7].textContent)) window.__seen.add(r.dataset.fingerprint + ' grace');
			}
			window.__seen.add('conn ' + document.getElementById('conn').className);
		};
		new MutationObserver(note).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
		note();
	})()`))
	until("the stream is live", `document.querySelector('#conn').classList.contains('live')`)
	until("the nodes table shows three nodes up", `document.querySelectorAll('table[data-view="nodes"] tbody tr.row-ok').length === 3`)

	// A summary with markup renders as text and runs nothing.
	publishHostile(t, ctx, p.Bus)
	until("a hostile summary arrives", `!!document.querySelector('[data-episode="probe-ep"] .summary')`)
	got, err := chromedp.Run(bctx, chromedp.Evaluate[map[string]any](`({
		text: document.querySelector('[data-episode="probe-ep"] .summary').textContent,
		xss: window.__xss === undefined ? null : window.__xss,
		imgs: document.querySelectorAll('main img').length,
		scripts: document.querySelectorAll('main script').length,
	})`))
	if err != nil {
		t.Fatal(err)
	}
	if got["text"] != hostile || got["xss"] != nil || got["imgs"] != float64(0) || got["scripts"] != float64(0) {
		t.Errorf("the hostile summary was not shown as text: %v", got)
	}

	// The fault: node n2's clock 2 s ahead.
	env, err := scenario.NewEnv(ctx, sb.NodeURLs(), sb.Token(), sb.AdminRedis(), sb)
	if err != nil {
		t.Fatal(err)
	}
	victim := env.Victim()
	if _, err := env.Nodes[victim].SetChaos(ctx, api.Chaos{ClockSkewMS: 2000}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%6.1fs skewed the clock of %s by 2 s", time.Since(start).Seconds(), victim)
	fp := "ratelimiter/demo/clock_skew/" + victim
	until("the alert is pending, with the grace left", `window.__seen.has('`+fp+` pending') && window.__seen.has('`+fp+` grace')`)
	until("the alert fires", `window.__seen.has('`+fp+` firing')`)
	until("the episode resolves after the drain, every gate, the verification and the diagnosis", `(() => {
		const e = [...document.querySelectorAll('details.episode')].find(d => d.querySelector('summary .mono')?.textContent === 'clock_skew[`+victim+`]');
		if (!e || e.dataset.state !== 'resolved') return false;
		const kinds = [...e.querySelectorAll('.timeline li')].map(li => li.dataset.kind);
		const gates = [...e.querySelectorAll('[data-gate]')].map(g => g.dataset.gate + '=' + g.querySelector('.badge').textContent).join(' ');
		const done = [...e.querySelectorAll('li[data-kind="completed"] .title')].some(x => x.textContent.startsWith('drain_node succeeded'));
		const verified = [...e.querySelectorAll('li[data-kind="verified"] .title')].some(x => x.textContent.startsWith('drain_node verified'));
		return ['observed', 'firing', 'requested', 'gates', 'completed', 'verified', 'resolved', 'diagnosis'].every(k => kinds.includes(k)) &&
			gates === 'catalog=passed kill_switch=passed mode=passed precondition=passed budget=passed approval=passed ledger=passed' &&
			done && verified && !!e.querySelector('.diagnosis [data-hypothesis="clock_skew"]');
	})()`)
	until("the nodes table shows the victim draining", `[...document.querySelectorAll('table[data-view="nodes"] tbody tr')].some(r =>
		r.cells[0].textContent === '`+victim+`' && r.cells[1].textContent === 'draining' && r.classList.contains('row-warn'))`)
	until("the alert is gone", `!document.querySelector('#alerts tr.alert[data-fingerprint="`+fp+`"]')`)

	// An action that needs approval, approved through the page.
	reqID := requestBlock(t, ctx, p.Bus)
	until("the request awaits approval", `!!document.querySelector('.approval[data-request="`+reqID+`"]')`)
	shot := screenshot(t, bctx)
	step("approve it", chromedp.Click(chromedp.CSS(`.approval[data-request="`+reqID+`"] button.approve`)))
	until("the approved action ran and was verified", `(() => {
		const e = document.querySelector('details.episode[data-episode="`+reqID+`"]');
		return !!e && !document.querySelector('.approval[data-request="`+reqID+`"]') &&
			[...e.querySelectorAll('li[data-kind="completed"] .title')].some(x => x.textContent.startsWith('block_key succeeded')) &&
			[...e.querySelectorAll('li[data-kind="verified"] .title')].some(x => x.textContent.startsWith('block_key verified'));
	})()`)
	until("the blocked keys show it", `[...document.querySelectorAll('table[data-view="blocks"] tbody tr')].some(r => r.cells[0].textContent === 'abuser:1')`)

	step("stop all actions", chromedp.Click(chromedp.CSS(`#ks-stop`)))
	until("the kill switch shows engaged", `document.querySelector('#ks-state').dataset.engaged === 'true'`)
	step("resume", chromedp.Click(chromedp.CSS(`#ks-resume`)))
	until("the kill switch shows released", `document.querySelector('#ks-state').dataset.engaged === 'false'`)

	// The stream drops: the page says so, polls, and comes back live with
	// nothing lost or shown twice.
	srv.CloseClientConnections()
	until("the page says it is reconnecting", `window.__seen.has('conn conn reconnecting')`)
	publishHostile(t, ctx, p.Bus, "probe-2")
	until("an update published meanwhile arrives", `!!document.querySelector('[data-episode="probe-2"]')`)
	until("the stream is live again", `document.querySelector('#conn').classList.contains('live')`)
	dupes, err := chromedp.Run(bctx, chromedp.Evaluate[int](`(() => {
		const ids = [...document.querySelectorAll('.timeline li[data-step]')].map(li => li.dataset.step);
		return ids.length - new Set(ids).size;
	})()`))
	if err != nil || dupes != 0 {
		t.Errorf("%d steps shown twice (%v)", dupes, err)
	}

	dir := artifactDir(t)
	path := filepath.Join(dir, "status-page.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes); the whole run took %s", path, len(shot), time.Since(start).Round(time.Millisecond))
}

// screenshot takes the whole page as PNG.
func screenshot(t *testing.T, bctx context.Context) []byte {
	t.Helper()
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	return png
}

// publishHostile publishes a firing violation of a subject nobody deploys
// whose summary is markup.
func publishHostile(t *testing.T, ctx context.Context, b *bus.Bus, episode ...string) {
	t.Helper()
	ep := "probe-ep"
	if len(episode) > 0 {
		ep = episode[0]
	}
	now := time.Now().UTC()
	v := schemas.Violation{Subject: "probe", Instance: "x", Rule: "markup", Key: "k", Fingerprint: "probe/x/markup/k",
		Status: schemas.StatusFiring, Severity: schemas.SeverityInfo, Summary: hostile, Episode: ep, ActiveAt: now, FiredAt: &now}
	e, err := schemas.NewEvent(schemas.EventSpec{Type: schemas.TypeViolation, Source: "/tests", Subject: "probe/x/markup/k",
		ID: "v-" + ep, Time: now, CorrelationID: ep}, v)
	if err != nil {
		t.Fatal(err)
	}
	subj, err := b.Subjects().Violation("probe", "x", "markup")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, subj, e); err != nil {
		t.Fatal(err)
	}
}

// requestBlock requests a high-risk block_key by hand, as operator act does.
func requestBlock(t *testing.T, ctx context.Context, b *bus.Bus) string {
	t.Helper()
	now := time.Now().UTC()
	id := fmt.Sprintf("act-browser-%d", now.UnixNano())
	req := schemas.ActionRequest{ID: id, Subject: srl.Name, Instance: "demo", Action: "block_key",
		Params: map[string]any{"key": "abuser:1", "ttl_ms": 600000, "reason": "browser test"}, RequestedBy: "tests", RequestedAt: now}
	e, err := schemas.NewEvent(schemas.EventSpec{Type: schemas.TypeActionRequested, Source: "/cli/act", Subject: "ratelimiter/demo",
		ID: id, Time: now, CorrelationID: id}, req)
	if err != nil {
		t.Fatal(err)
	}
	subj, err := b.Subjects().ActionRequested(srl.Name, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, subj, e); err != nil {
		t.Fatal(err)
	}
	return id
}
