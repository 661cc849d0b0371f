package main

// The compose environment (compose/) cannot be started here, so these tests
// check it statically, loading compose/docker-compose.yaml with compose-go as
// `docker compose` does: every profile parses, every service is
// health-checked or a one-shot, every operator command, flag and OPERATOR_*
// variable exists in the real command tree, every URL names a service and a
// port it listens on, every file the stack reads exists, Prometheus scrapes
// every metrics endpoint, and every Grafana panel queries metrics the code
// exports.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/operator-dev/operator/evaluators"
)

// Paths relative to this package, where go test runs.
const (
	repoRoot    = "../.."
	composeFile = "../../compose/docker-compose.yaml"
	dockerfile  = "../../compose/Dockerfile"
)

// loadCompose loads the compose file as `docker compose --profile P ...`
// does, without the caller's environment (no interpolation surprises).
func loadCompose(t *testing.T, profiles ...string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{composeFile},
		cli.WithWorkingDirectory(filepath.Dir(composeFile)),
		cli.WithProfiles(profiles))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return opts.LoadProject(ctx)
}

// composeStack is the compose file with every profile enabled, the image
// its operator services run, and each operator service's parsed command.
type composeStack struct {
	all   *types.Project
	image imageSpec
	// byProfile holds the project as each profile (and none) enables it.
	byProfile map[string]*types.Project
	// operator maps each service built from compose/Dockerfile to its
	// command and healthcheck, parsed by the real command tree. A service
	// whose command does not parse is reported and left out.
	operator map[string]operatorService
}

type operatorService struct {
	main    *invocation // with the service's environment applied
	envErrs []error     // what applying the environment refused
	health  *invocation // nil without an operator healthcheck
}

func mustLoadStack(t *testing.T) *composeStack {
	t.Helper()
	all, err := loadCompose(t, "*")
	if err != nil {
		t.Fatalf("load %s with every profile: %v", composeFile, err)
	}
	img, err := parseDockerfile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	st := &composeStack{all: all, image: img, byProfile: map[string]*types.Project{}, operator: map[string]operatorService{}}
	for _, p := range append([]string{""}, composeProfiles(all)...) {
		var profiles []string
		if p != "" {
			profiles = []string{p}
		}
		proj, err := loadCompose(t, profiles...)
		if err != nil {
			t.Fatalf("load %s with profile %q: %v", composeFile, p, err)
		}
		st.byProfile[p] = proj
	}
	for _, name := range serviceNames(all) {
		s := all.Services[name]
		if s.Build == nil {
			continue
		}
		var op operatorService
		op.main, err = st.parseOperatorArgs(append(st.entrypoint(s), s.Command...))
		if err != nil {
			t.Errorf("service %s: %v", name, err)
			continue
		}
		op.envErrs = op.main.applyEnv(s.Environment)
		if hc := healthTest(s); len(hc) > 0 && hc[0] == "CMD" {
			op.health, err = st.parseOperatorArgs(hc[1:])
			if err != nil {
				t.Errorf("service %s healthcheck: %v", name, err)
			}
		}
		st.operator[name] = op
	}
	return st
}

func serviceNames(p *types.Project) []string {
	names := make([]string, 0, len(p.Services))
	for n := range p.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func composeProfiles(p *types.Project) []string {
	var out []string
	for _, s := range p.Services {
		for _, pr := range s.Profiles {
			if !slices.Contains(out, pr) {
				out = append(out, pr)
			}
		}
	}
	sort.Strings(out)
	return out
}

// entrypoint is the service's entrypoint, or the image's.
func (st *composeStack) entrypoint(s types.ServiceConfig) []string {
	if len(s.Entrypoint) > 0 {
		return s.Entrypoint
	}
	return st.image.entrypoint
}

// parseOperatorArgs checks that argv runs the image's operator binary and
// parses the rest with the real command tree.
func (st *composeStack) parseOperatorArgs(argv []string) (*invocation, error) {
	if len(st.image.entrypoint) == 0 || len(argv) == 0 || argv[0] != st.image.entrypoint[0] {
		return nil, fmt.Errorf("runs %q, not the image's %q", argv, st.image.entrypoint)
	}
	return parseInvocation(argv[1:])
}

// invocation is one run of the operator binary: the command its arguments
// select, with flags parsed from the arguments and then from OPERATOR_*
// variables.
type invocation struct {
	cmd  *cobra.Command
	args []string // positional arguments
}

func parseInvocation(args []string) (*invocation, error) {
	root := newRootCmd()
	c, rest, err := root.Find(args)
	if err != nil {
		return nil, fmt.Errorf("operator %s: %w", strings.Join(args, " "), err)
	}
	if !c.Runnable() {
		return nil, fmt.Errorf("operator %s: %q runs nothing (a subcommand is missing)", strings.Join(args, " "), c.CommandPath())
	}
	if err := c.ParseFlags(rest); err != nil {
		return nil, fmt.Errorf("%s: %w", c.CommandPath(), err)
	}
	pos := c.Flags().Args()
	if err := c.ValidateArgs(pos); err != nil {
		return nil, fmt.Errorf("%s: %w", c.CommandPath(), err)
	}
	if len(c.ValidArgs) > 0 {
		for _, a := range pos {
			if !slices.ContainsFunc(c.ValidArgs, func(v string) bool { return strings.SplitN(v, "\t", 2)[0] == a }) {
				return nil, fmt.Errorf("%s: argument %q is none of %v", c.CommandPath(), a, c.ValidArgs)
			}
		}
	}
	return &invocation{cmd: c, args: pos}, nil
}

// flagForEnv returns the flag an OPERATOR_* variable sets (see
// flagsFromEnv), or "" when the name is not an OPERATOR_ variable.
func flagForEnv(name string) string {
	rest, ok := strings.CutPrefix(name, "OPERATOR_")
	if !ok || rest == "" {
		return ""
	}
	return strings.ToLower(strings.ReplaceAll(rest, "_", "-"))
}

// applyEnv sets the flags the environment names, as flagsFromEnv does, and
// reports variables that name no flag, set a flag also given as an
// argument, or do not parse.
func (inv *invocation) applyEnv(env types.MappingWithEquals) []error {
	var errs []error
	for _, k := range keysOf(env) {
		v := env[k]
		name := flagForEnv(k)
		if name == "" {
			errs = append(errs, fmt.Errorf("%s is not an OPERATOR_* variable; %s reads only those", k, inv.cmd.CommandPath()))
			continue
		}
		f := inv.cmd.Flags().Lookup(name)
		if f == nil {
			errs = append(errs, fmt.Errorf("%s names no flag of %s (no --%s)", k, inv.cmd.CommandPath(), name))
			continue
		}
		if f.Changed {
			errs = append(errs, fmt.Errorf("%s and --%s are both given; the flag wins, so one of them is dead", k, name))
			continue
		}
		if v == nil {
			errs = append(errs, fmt.Errorf("%s has no value", k))
			continue
		}
		if err := inv.cmd.Flags().Set(name, *v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", k, *v, err))
		}
	}
	return errs
}

// values returns a flag's effective values: one per element of a list flag.
func (inv *invocation) values(name string) []string {
	f := inv.cmd.Flags().Lookup(name)
	if f == nil {
		return nil
	}
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return sv.GetSlice()
	}
	if v := f.Value.String(); v != "" {
		return []string{v}
	}
	return nil
}

// listenPorts are the ports an invocation serves on (--listen,
// --metrics-listen).
func (inv *invocation) listenPorts() []string {
	var ports []string
	for _, name := range []string{"listen", "metrics-listen"} {
		for _, v := range inv.values(name) {
			if _, port, err := net.SplitHostPort(v); err == nil {
				ports = append(ports, port)
			}
		}
	}
	return ports
}

// bounded reports whether the invocation stops on its own: it has a
// --duration or --for flag set to more than zero.
func (inv *invocation) bounded() bool {
	for _, name := range []string{"duration", "for"} {
		for _, v := range inv.values(name) {
			if d, err := time.ParseDuration(v); err == nil && d > 0 {
				return true
			}
		}
	}
	return false
}

// keysOf returns the keys of m in order.
func keysOf[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func healthTest(s types.ServiceConfig) []string {
	hc := s.HealthCheck
	if hc == nil || hc.Disable || len(hc.Test) == 0 || hc.Test[0] == "NONE" {
		return nil
	}
	return hc.Test
}

// oneShot reports whether a service runs to completion: no restart, no
// published ports and, for operator services, a command that stops on its
// own.
func (st *composeStack) oneShot(name string) bool {
	s := st.all.Services[name]
	if (s.Restart != "" && s.Restart != types.RestartPolicyNo) || len(s.Ports) > 0 {
		return false
	}
	if op, ok := st.operator[name]; ok {
		return op.main.bounded()
	}
	return true
}

func TestComposeParsesForEveryProfile(t *testing.T) {
	all, err := loadCompose(t, "*")
	if err != nil {
		t.Fatalf("load with every profile: %v", err)
	}
	profiles := composeProfiles(all)
	for _, want := range []string{"load", "tikv"} {
		if !slices.Contains(profiles, want) {
			t.Errorf("no service has profile %q (profiles: %v)", want, profiles)
		}
	}
	for _, p := range append([]string{""}, profiles...) {
		t.Run("profile="+p, func(t *testing.T) {
			var ps []string
			if p != "" {
				ps = []string{p}
			}
			proj, err := loadCompose(t, ps...)
			if err != nil {
				t.Fatal(err)
			}
			if len(proj.Services) == 0 {
				t.Fatal("no services enabled")
			}
			for name, s := range proj.Services {
				if len(s.Profiles) > 0 && !slices.Contains(s.Profiles, p) {
					t.Errorf("service %s (profiles %v) is enabled", name, s.Profiles)
				}
			}
		})
	}
}

func TestComposeServicesAreHealthCheckedOrOneShot(t *testing.T) {
	st := mustLoadStack(t)
	for _, name := range serviceNames(st.all) {
		s := st.all.Services[name]
		hc := healthTest(s)
		_, isOperator := st.operator[name]
		switch {
		case len(hc) == 0:
			if !st.oneShot(name) {
				t.Errorf("service %s runs until stopped (restart %q, ports %d) and has no healthcheck", name, s.Restart, len(s.Ports))
			}
		case hc[0] != "CMD" && hc[0] != "CMD-SHELL":
			t.Errorf("service %s: healthcheck test %q starts with neither CMD nor CMD-SHELL", name, hc)
		case isOperator && hc[0] != "CMD":
			t.Errorf("service %s: the operator image has no shell, so its healthcheck must be CMD, not %s", name, hc[0])
		case s.Restart == "" || s.Restart == types.RestartPolicyNo:
			t.Errorf("service %s is long-running (it has a healthcheck) but restart is %q", name, s.Restart)
		}
	}
}

func TestComposeDependsOnConditions(t *testing.T) {
	st := mustLoadStack(t)
	for _, name := range serviceNames(st.all) {
		for _, dep := range keysOf(st.all.Services[name].DependsOn) {
			cond := st.all.Services[name].DependsOn[dep].Condition
			target, ok := st.all.Services[dep]
			if !ok {
				t.Errorf("service %s depends on %s, which does not exist", name, dep)
				continue
			}
			switch cond {
			case types.ServiceConditionHealthy:
				if healthTest(target) == nil {
					t.Errorf("service %s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
				}
			case types.ServiceConditionCompletedSuccessfully:
				if !st.oneShot(dep) {
					t.Errorf("service %s waits for %s to complete, but %s is not a one-shot", name, dep, dep)
				}
			default:
				// The short form (a list) means service_started: it does
				// not wait for anything to be ready.
				t.Errorf("service %s depends on %s with condition %q; want %s or %s", name, dep, cond,
					types.ServiceConditionHealthy, types.ServiceConditionCompletedSuccessfully)
			}
		}
	}
}

func TestComposeOperatorCommandsExist(t *testing.T) {
	st := mustLoadStack(t)
	if len(st.operator) == 0 {
		t.Fatal("no service is built from compose/Dockerfile")
	}
	for _, name := range keysOf(st.operator) {
		op := st.operator[name]
		s := st.all.Services[name]
		t.Run(name, func(t *testing.T) {
			for _, err := range op.envErrs {
				t.Error(err)
			}
			if op.health == nil {
				return
			}
			// The healthcheck runs in the same container, so it reads the
			// same environment; it must not pick up a variable meant for
			// the main command.
			op.health.cmd.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
				for k := range s.Environment {
					if flagForEnv(k) == f.Name {
						t.Errorf("%s also sets %s --%s", k, op.health.cmd.CommandPath(), f.Name)
					}
				}
			})
			if op.health.cmd.Name() != "healthcheck" {
				return
			}
			u, err := url.Parse(op.health.args[0])
			if err != nil {
				t.Fatalf("healthcheck URL: %v", err)
			}
			if !isLoopback(u.Hostname()) {
				t.Errorf("healthcheck %s checks another host; it should check this container", u)
			}
			if ports := op.main.listenPorts(); !slices.Contains(ports, u.Port()) {
				t.Errorf("healthcheck %s: %s listens on ports %v", u, op.main.cmd.CommandPath(), ports)
			}
		})
	}
}

// TestComposeURLsNameServices checks every URL an operator service is
// configured with, flags left at their defaults included: it names a
// service enabled in every profile that enables this one, on a port that
// service listens on. A default such as nats://127.0.0.1:4222 points at the
// container itself and is refused.
func TestComposeURLsNameServices(t *testing.T) {
	st := mustLoadStack(t)
	defaultPorts := map[string]string{"http": "80", "https": "443", "nats": "4222", "redis": "6379"}
	for _, name := range keysOf(st.operator) {
		inv := st.operator[name].main
		inv.cmd.Flags().VisitAll(func(f *pflag.Flag) {
			for _, v := range inv.values(f.Name) {
				u, err := url.Parse(v)
				if err != nil || defaultPorts[u.Scheme] == "" || u.Host == "" {
					continue
				}
				host, port := u.Hostname(), u.Port()
				if port == "" {
					port = defaultPorts[u.Scheme]
				}
				if isLoopback(host) {
					t.Errorf("service %s: --%s %s is the container itself; set it to a service", name, f.Name, v)
					continue
				}
				target, ok := st.all.Services[host]
				if !ok {
					t.Errorf("service %s: --%s %s: no service %q", name, f.Name, v, host)
					continue
				}
				if ports := st.servicePorts(host); !slices.Contains(ports, port) {
					t.Errorf("service %s: --%s %s: %s listens on %v, not %s", name, f.Name, v, host, ports, port)
				}
				for p, proj := range st.byProfile {
					_, on := proj.Services[name]
					if _, targetOn := proj.Services[host]; on && !targetOn {
						t.Errorf("service %s: --%s %s: profile %q runs %s without %s (profiles %v)", name, f.Name, v, p, name, host, target.Profiles)
					}
				}
			}
		})
	}
}

// servicePorts are the container ports a service listens on: expose,
// published ports' targets, and an operator service's --listen and
// --metrics-listen.
func (st *composeStack) servicePorts(name string) []string {
	s := st.all.Services[name]
	ports := append([]string(nil), s.Expose...)
	for _, p := range s.Ports {
		ports = append(ports, strconv.FormatUint(uint64(p.Target), 10))
	}
	if op, ok := st.operator[name]; ok {
		ports = append(ports, op.main.listenPorts()...)
	}
	slices.Sort(ports)
	return slices.Compact(ports)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func TestComposePublishedPorts(t *testing.T) {
	st := mustLoadStack(t)
	seen := map[string]string{}
	for _, name := range serviceNames(st.all) {
		s := st.all.Services[name]
		for _, p := range s.Ports {
			if p.Published == "" {
				continue
			}
			if p.HostIP != "127.0.0.1" {
				t.Errorf("service %s publishes %s on %q; bind it to 127.0.0.1 (chaos hooks, no token)", name, p.Published, p.HostIP)
			}
			key := p.HostIP + ":" + p.Published + "/" + p.Protocol
			if other, dup := seen[key]; dup {
				t.Errorf("services %s and %s both publish %s", other, name, key)
			}
			seen[key] = name
			if _, ok := st.operator[name]; ok {
				if ports := st.servicePorts(name); !slices.Contains(ports, strconv.FormatUint(uint64(p.Target), 10)) {
					t.Errorf("service %s publishes container port %d; it listens on %v", name, p.Target, ports)
				}
			}
		}
	}
}

// TestComposeFilesExist checks every file the stack reads from the
// repository: build contexts and Dockerfiles, what the Dockerfile copies,
// bind mounts, and every absolute path in a command, healthcheck or
// variable, which must be in the image or under a bind mount.
func TestComposeFilesExist(t *testing.T) {
	st := mustLoadStack(t)
	dfAbs, err := filepath.Abs(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range serviceNames(st.all) {
		s := st.all.Services[name]
		if b := s.Build; b != nil {
			if fi, err := os.Stat(b.Context); err != nil || !fi.IsDir() {
				t.Errorf("service %s: build context %s: not a directory (%v)", name, b.Context, err)
			}
			df := b.Dockerfile
			if !filepath.IsAbs(df) {
				df = filepath.Join(b.Context, df)
			}
			if df != dfAbs {
				t.Errorf("service %s builds %s; these tests check only %s", name, df, dfAbs)
			}
			for dest, src := range st.image.copies {
				if src == "" {
					continue // from another stage
				}
				if _, err := os.Stat(filepath.Join(b.Context, src)); err != nil {
					t.Errorf("%s copies %s to %s: %v", dockerfile, src, dest, err)
				}
			}
		}
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("service %s mounts %s: %v", name, v.Source, err)
			}
		}
		words := slices.Concat([]string(s.Entrypoint), s.Command, healthTest(s))
		for _, k := range keysOf(s.Environment) {
			if v := s.Environment[k]; v != nil {
				words = append(words, *v)
			}
		}
		for _, w := range words {
			for _, p := range absolutePaths(w) {
				st.checkContainerPath(t, name, p)
			}
		}
	}
}

// absolutePaths returns the absolute paths in a word: the word itself, or
// the value of --flag=/path.
func absolutePaths(w string) []string {
	if _, v, ok := strings.Cut(w, "="); ok && strings.HasPrefix(w, "-") {
		w = v
	}
	if !strings.HasPrefix(w, "/") || strings.ContainsAny(w, " |") {
		return nil
	}
	return []string{w}
}

// checkContainerPath checks that a path a service uses exists in its
// container: under one of its bind mounts (on the host), in the operator
// image, or under one of its named volumes.
func (st *composeStack) checkContainerPath(t *testing.T, service, p string) {
	t.Helper()
	s := st.all.Services[service]
	for _, v := range s.Volumes {
		rel, err := filepath.Rel(v.Target, p)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		if v.Type == types.VolumeTypeBind {
			if _, err := os.Stat(filepath.Join(v.Source, rel)); err != nil {
				t.Errorf("service %s uses %s: not in its mount of %s (%v)", service, p, v.Source, err)
			}
		}
		return // named volumes are filled at run time
	}
	if _, ok := st.operator[service]; ok {
		if _, ok := st.image.copies[p]; !ok {
			t.Errorf("service %s uses %s: neither mounted nor copied into the image by %s", service, p, dockerfile)
		}
	}
	// Other images' own files (/etc/prometheus/..., /data) are theirs.
}

func TestComposeRuleFilesLoad(t *testing.T) {
	st := mustLoadStack(t)
	var n int
	for _, name := range keysOf(st.operator) {
		for _, p := range st.operator[name].main.values("rules") {
			src, ok := st.image.copies[p]
			if !ok || src == "" {
				t.Errorf("service %s: --rules %s is not copied into the image from the repository", name, p)
				continue
			}
			if _, err := evaluators.LoadRuleSets(evaluators.LoadOptions{}, filepath.Join(repoRoot, src)); err != nil {
				t.Errorf("service %s: --rules %s (%s): %v", name, p, src, err)
			}
			n++
		}
	}
	if n == 0 {
		t.Error("no service runs the evaluator with a rule file")
	}
}

// TestComposeImageVersions keeps the images in step with go.mod: the
// builder's Go and the NATS server the tests embed.
func TestComposeImageVersions(t *testing.T) {
	st := mustLoadStack(t)
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	natsVersion := regexp.MustCompile(`(?m)^\s*github\.com/nats-io/nats-server/v2 v(\d+\.\d+)\.`).FindSubmatch(gomod)
	if goVersion == nil || natsVersion == nil {
		t.Fatal("go.mod: no go directive or nats-server requirement")
	}
	if want := "golang:" + string(goVersion[1]); !slices.ContainsFunc(st.image.from, func(f string) bool {
		return f == want || strings.HasPrefix(f, want+".") || strings.HasPrefix(f, want+"-")
	}) {
		t.Errorf("%s builds FROM %v; go.mod wants %s", dockerfile, st.image.from, want)
	}
	if u := st.image.user; u == "" || u == "root" || u == "0" || strings.HasPrefix(u, "root:") || strings.HasPrefix(u, "0:") {
		t.Errorf("%s runs as %q; want a non-root USER", dockerfile, u)
	}
	versions := map[string]string{} // repository -> tag
	for _, name := range serviceNames(st.all) {
		img := st.all.Services[name].Image
		repo, tag, ok := strings.Cut(img, ":")
		if !ok || tag == "" || tag == "latest" {
			t.Errorf("service %s: image %q has no fixed version", name, img)
			continue
		}
		if repo == "nats" && !strings.HasPrefix(tag, string(natsVersion[1])+".") && !strings.HasPrefix(tag, string(natsVersion[1])+"-") {
			t.Errorf("service %s runs %s; the tests embed nats-server %s", name, img, natsVersion[1])
		}
		if strings.HasPrefix(repo, "pingcap/") {
			if v, seen := versions["pingcap"]; seen && v != tag {
				t.Errorf("service %s runs %s; other PD and TiKV services run %s", name, img, v)
			}
			versions["pingcap"] = tag
		}
	}
}

// imageSpec is what compose/Dockerfile's final stage runs and holds.
type imageSpec struct {
	from       []string          // every stage's base image
	entrypoint []string          // ENTRYPOINT of the final stage
	user       string            // USER of the final stage
	copies     map[string]string // final-stage COPY destination -> source in the build context ("" when copied from a stage)
}

func parseDockerfile(name string) (imageSpec, error) {
	f, err := os.Open(name)
	if err != nil {
		return imageSpec{}, err
	}
	defer func() { _ = f.Close() }()
	var spec imageSpec
	var line strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") || (l == "" && line.Len() == 0) {
			continue
		}
		if cont, ok := strings.CutSuffix(l, `\`); ok {
			line.WriteString(cont + " ")
			continue
		}
		line.WriteString(l)
		instr := line.String()
		line.Reset()
		fields := strings.Fields(instr)
		if len(fields) < 2 {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			spec.from = append(spec.from, fields[1])
			spec.copies, spec.entrypoint, spec.user = map[string]string{}, nil, ""
		case "USER":
			spec.user = fields[1]
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(strings.TrimSpace(instr[len(fields[0]):])), &spec.entrypoint); err != nil {
				return imageSpec{}, fmt.Errorf("%s: ENTRYPOINT must be an exec-form JSON array: %w", name, err)
			}
		case "COPY":
			args, fromStage := fields[1:], false
			for len(args) > 0 && strings.HasPrefix(args[0], "--") {
				fromStage = fromStage || strings.HasPrefix(args[0], "--from=")
				args = args[1:]
			}
			if len(args) < 2 {
				return imageSpec{}, fmt.Errorf("%s: %q: want COPY SRC... DEST", name, instr)
			}
			srcs, dest := args[:len(args)-1], args[len(args)-1]
			for _, src := range srcs {
				to := dest
				if len(srcs) > 1 || strings.HasSuffix(dest, "/") {
					to = path.Join(dest, path.Base(src))
				}
				if fromStage {
					src = ""
				}
				spec.copies[to] = src
			}
		}
	}
	if err := sc.Err(); err != nil {
		return imageSpec{}, err
	}
	if len(spec.from) == 0 || len(spec.entrypoint) == 0 {
		return imageSpec{}, fmt.Errorf("%s: no FROM or no ENTRYPOINT in the final stage", name)
	}
	return spec, nil
}

// TestComposePrometheusScrapesEveryEndpoint checks compose/prometheus: every
// target is a service listening on that port, and every operator service
// that serves metrics is a target.
func TestComposePrometheusScrapesEveryEndpoint(t *testing.T) {
	st := mustLoadStack(t)
	cfgPath := st.hostPath(t, "prometheus", "/etc/prometheus/prometheus.yml")
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, cfgPath, &cfg)
	targets := map[string]string{} // host:port -> job
	for _, sc := range cfg.ScrapeConfigs {
		for _, stc := range sc.StaticConfigs {
			for _, tg := range stc.Targets {
				host, port, err := net.SplitHostPort(tg)
				if err != nil {
					t.Errorf("job %s: target %q: %v", sc.JobName, tg, err)
					continue
				}
				if _, ok := st.all.Services[host]; !ok {
					t.Errorf("job %s: target %s: no such service", sc.JobName, tg)
				} else if ports := st.servicePorts(host); !slices.Contains(ports, port) {
					t.Errorf("job %s: target %s: %s listens on %v", sc.JobName, tg, host, ports)
				}
				targets[tg] = sc.JobName
			}
		}
	}
	for _, name := range keysOf(st.operator) {
		for _, port := range st.operator[name].main.listenPorts() {
			if _, ok := targets[net.JoinHostPort(name, port)]; !ok {
				t.Errorf("service %s serves metrics on port %s; Prometheus does not scrape %s:%s", name, port, name, port)
			}
		}
	}
}

// hostPath maps a path in a service's container to the repository file its
// bind mount provides.
func (st *composeStack) hostPath(t *testing.T, service, p string) string {
	t.Helper()
	s, ok := st.all.Services[service]
	if !ok {
		t.Fatalf("no service %s", service)
	}
	for _, v := range s.Volumes {
		rel, err := filepath.Rel(v.Target, p)
		if v.Type != types.VolumeTypeBind || err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		return filepath.Join(v.Source, rel)
	}
	t.Fatalf("service %s: nothing is mounted at %s", service, p)
	return ""
}

func readYAML(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// TestComposeGrafanaDashboardQueriesExportedMetrics checks the provisioned
// datasource and dashboards: the dashboards are where the provider reads
// them, their JSON parses, every panel uses the provisioned datasource,
// and every query names only metrics the code exports.
func TestComposeGrafanaDashboardQueriesExportedMetrics(t *testing.T) {
	st := mustLoadStack(t)
	prov := st.hostPath(t, "grafana", "/etc/grafana/provisioning")

	uids := map[string]bool{}
	dsFiles, _ := filepath.Glob(filepath.Join(prov, "datasources", "*.yaml"))
	for _, f := range dsFiles {
		var ds struct {
			Datasources []struct {
				UID string `yaml:"uid"`
				URL string `yaml:"url"`
			} `yaml:"datasources"`
		}
		readYAML(t, f, &ds)
		for _, d := range ds.Datasources {
			u, err := url.Parse(d.URL)
			if err != nil {
				t.Errorf("%s: datasource %s: %v", f, d.UID, err)
			} else if ports := st.servicePorts(u.Hostname()); !slices.Contains(ports, u.Port()) {
				t.Errorf("%s: datasource %s at %s: service %q listens on %v", f, d.UID, d.URL, u.Hostname(), ports)
			}
			uids[d.UID] = true
		}
	}
	if len(uids) == 0 {
		t.Fatalf("no datasource provisioned in %s", prov)
	}

	var dashboards []string
	pvFiles, _ := filepath.Glob(filepath.Join(prov, "dashboards", "*.yaml"))
	for _, f := range pvFiles {
		var providers struct {
			Providers []struct {
				Name    string `yaml:"name"`
				Options struct {
					Path string `yaml:"path"`
				} `yaml:"options"`
			} `yaml:"providers"`
		}
		readYAML(t, f, &providers)
		for _, p := range providers.Providers {
			files, _ := filepath.Glob(filepath.Join(st.hostPath(t, "grafana", p.Options.Path), "*.json"))
			if len(files) == 0 {
				t.Errorf("%s: provider %s reads %s, which has no dashboards", f, p.Name, p.Options.Path)
			}
			dashboards = append(dashboards, files...)
		}
	}
	if len(dashboards) == 0 {
		t.Fatal("no dashboard provisioned")
	}

	exported, err := exportedMetrics(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range dashboards {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var queries int
		d.walk(func(p panel) {
			if p.Type == "row" {
				return
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", filepath.Base(f), p.Title)
			}
			for _, tg := range p.Targets {
				queries++
				for _, ref := range []*datasourceRef{p.Datasource, tg.Datasource} {
					if ref != nil && !uids[ref.UID] {
						t.Errorf("%s: panel %q uses datasource uid %q, which is not provisioned", filepath.Base(f), p.Title, ref.UID)
					}
				}
				names, err := promqlMetricNames(tg.Expr)
				if err != nil {
					t.Errorf("%s: panel %q: %v", filepath.Base(f), p.Title, err)
					continue
				}
				if len(names) == 0 {
					t.Errorf("%s: panel %q: query %q names no metric", filepath.Base(f), p.Title, tg.Expr)
				}
				for _, n := range unknownMetrics(names, exported) {
					t.Errorf("%s: panel %q: %s is not a metric the code exports", filepath.Base(f), p.Title, n)
				}
			}
		})
		if queries == 0 {
			t.Errorf("%s: no queries", f)
		}
	}
	// The home dashboard Grafana opens on is one of them.
	for k, v := range st.all.Services["grafana"].Environment {
		if k == "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH" && v != nil {
			if home := st.hostPath(t, "grafana", *v); !slices.Contains(dashboards, home) {
				t.Errorf("%s=%s is not a provisioned dashboard", k, *v)
			}
		}
	}
}

type dashboard struct {
	Panels []panel `json:"panels"`
}

type panel struct {
	Title      string         `json:"title"`
	Type       string         `json:"type"`
	Datasource *datasourceRef `json:"datasource"`
	Targets    []struct {
		Expr       string         `json:"expr"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type datasourceRef struct {
	UID string `json:"uid"`
}

func (d dashboard) walk(fn func(panel)) {
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			fn(p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
}

// unknownMetrics returns the names that are not exposed series of the
// exported metrics.
func unknownMetrics(names []string, exported map[string]bool) []string {
	var out []string
	for _, n := range names {
		if !exported[n] {
			out = append(out, n)
		}
	}
	return out
}

// exportedMetrics returns the series names the code exposes: every
// prometheus.*Opts literal's name in the non-test Go files under root, with
// a histogram's _bucket, _sum and _count and a summary's _sum and _count
// (the base name of a histogram is no series of its own).
func exportedMetrics(root string) (map[string]bool, error) {
	const promPkg = "github.com/prometheus/client_golang/prometheus"
	out := map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		local := ""
		for _, imp := range f.Imports {
			if strings.Trim(imp.Path.Value, `"`) == promPkg {
				local = path.Base(promPkg)
				if imp.Name != nil {
					local = imp.Name.Name
				}
			}
		}
		if local == "" {
			return nil
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			sel, ok := lit.Type.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); !ok || x.Name != local || !strings.HasSuffix(sel.Sel.Name, "Opts") {
				return true
			}
			parts := map[string]string{}
			for _, e := range lit.Elts {
				kv, ok := e.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				key, ok1 := kv.Key.(*ast.Ident)
				val, ok2 := kv.Value.(*ast.BasicLit)
				if ok1 && ok2 && val.Kind == token.STRING {
					if s, err := strconv.Unquote(val.Value); err == nil {
						parts[key.Name] = s
					}
				}
			}
			if parts["Name"] == "" {
				return true // a name that is not a literal: not checked
			}
			var fq []string
			for _, k := range []string{"Namespace", "Subsystem", "Name"} {
				if parts[k] != "" {
					fq = append(fq, parts[k])
				}
			}
			name := strings.Join(fq, "_")
			switch sel.Sel.Name {
			case "HistogramOpts":
				out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = true, true, true
			case "SummaryOpts":
				out[name], out[name+"_sum"], out[name+"_count"] = true, true, true
			default:
				out[name] = true
			}
			return true
		})
		return nil
	})
	return out, err
}

// promqlReserved are PromQL's keywords and aggregation operators: never
// metric names when they stand unquoted.
var promqlReserved = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"inf": true, "nan": true,
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
}

// promqlGrouping are the modifiers followed by a list of label names.
var promqlGrouping = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// promqlMetricNames returns the metric names an expression selects, in
// order of appearance: every identifier that is not a function call, a
// keyword or aggregation, a label inside {...} or a grouping list, a
// duration inside [...], a number, a string or a Grafana $variable.
func promqlMetricNames(expr string) ([]string, error) {
	var names []string
	isIdentStart := func(c byte) bool {
		return c == '_' || c == ':' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
	}
	isIdent := func(c byte) bool { return isIdentStart(c) || ('0' <= c && c <= '9') }
	skipSpace := func(i int) int {
		for i < len(expr) && strings.IndexByte(" \t\r\n", expr[i]) >= 0 {
			i++
		}
		return i
	}
	// skipTo returns the index after the bracket closing the one at i,
	// stepping over strings.
	var skipTo func(i int, open, close byte) (int, error)
	skipString := func(i int) (int, error) {
		q := expr[i]
		for j := i + 1; j < len(expr); j++ {
			switch {
			case expr[j] == '\\' && q != '`':
				j++
			case expr[j] == q:
				return j + 1, nil
			}
		}
		return 0, fmt.Errorf("query %q: unterminated string at %d", expr, i)
	}
	skipTo = func(i int, open, close byte) (int, error) {
		depth := 0
		for j := i; j < len(expr); j++ {
			switch c := expr[j]; {
			case c == '"' || c == '\'' || c == '`':
				k, err := skipString(j)
				if err != nil {
					return 0, err
				}
				j = k - 1
			case c == open:
				depth++
			case c == close:
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("query %q: unclosed %c at %d", expr, open, i)
	}
	depth := 0 // of parentheses
	for i := 0; i < len(expr); {
		c := expr[i]
		var err error
		switch {
		case c == '(':
			depth++
			i++
		case c == ')':
			if depth--; depth < 0 {
				return nil, fmt.Errorf("query %q: unopened ) at %d", expr, i)
			}
			i++
		case c == '"' || c == '\'' || c == '`':
			i, err = skipString(i)
		case c == '{':
			i, err = skipTo(i, '{', '}')
		case c == '[':
			i, err = skipTo(i, '[', ']')
		case c == '$': // Grafana: $var, ${var}, $__rate_interval
			i++
			if i < len(expr) && expr[i] == '{' {
				i, err = skipTo(i, '{', '}')
			} else {
				for i < len(expr) && isIdent(expr[i]) {
					i++
				}
			}
		case '0' <= c && c <= '9' || c == '.':
			// A number or duration: 0.99, 1e3, 0x1f, 5m.
			for i++; i < len(expr) && (isIdent(expr[i]) || expr[i] == '.'); i++ {
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			word, next := expr[i:j], skipSpace(j)
			lower := strings.ToLower(word)
			switch {
			case promqlGrouping[lower] && next < len(expr) && expr[next] == '(':
				j, err = skipTo(next, '(', ')')
			case promqlReserved[lower]:
			case next < len(expr) && expr[next] == '(':
				// a function call
			default:
				names = append(names, word)
			}
			i = j
		default:
			i++
		}
		if err != nil {
			return nil, err
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("query %q: %d unclosed (", expr, depth)
	}
	return names, nil
}

func TestComposePromQLMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`sum by (node, result) (rate(ratelimiter_checks_total[$__rate_interval]))`, []string{"ratelimiter_checks_total"}},
		{`histogram_quantile(0.99, sum by (le, node) (rate(x_bucket{a="b}",c=~"d|e"}[5m])))`, []string{"x_bucket"}},
		{`sum(rate(a[1m])) by (node) > bool 0.5`, []string{"a"}},
		{`a / on(node) group_left(version) b offset 5m`, []string{"a", "b"}},
		{`a and ignoring (x) b unless c or d`, []string{"a", "b", "c", "d"}},
		{`label_replace(m, "dst", "$1", "src", "(.*)")`, []string{"m"}},
		{`max_over_time(job:req:rate5m[1h:5m]) @ start()`, []string{"job:req:rate5m"}},
		{`clamp_min(a - (b or 0 * a), 0)`, []string{"a", "b", "a"}},
		{`1e-3 * a + 0x1F - .5 + Inf`, []string{"a"}},
		{`count_values("v", a) + topk(3, b) + quantile(0.9, c)`, []string{"a", "b", "c"}},
		{`sum without (instance) (rate(m{node=~"${node}"}[${__range}]))`, []string{"m"}},
		{`vector(1)`, nil},
	}
	for _, tc := range tests {
		got, err := promqlMetricNames(tc.expr)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: names %q, want %q", tc.expr, got, tc.want)
		}
	}
	for _, bad := range []string{`rate(a{job="x}[5m])`, `sum(rate(a[5m])`, `a{job="x"`, `sum(a))`} {
		if got, err := promqlMetricNames(bad); err == nil {
			t.Errorf("%s: names %q, want an error", bad, got)
		}
	}
}

func TestComposeUnknownMetricIsCaught(t *testing.T) {
	exported, err := exportedMetrics(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"ratelimiter_checks_total", "ratelimiter_check_duration_seconds_bucket", "operator_bus_published_total"} {
		if !exported[n] {
			t.Errorf("%s is exported by the code but not found", n)
		}
	}
	tests := []struct {
		expr string
		want []string
	}{
		{`sum(rate(ratelimiter_checks_totl[5m]))`, []string{"ratelimiter_checks_totl"}},
		{`histogram_quantile(0.99, rate(ratelimiter_check_duration_seconds[5m]))`, []string{"ratelimiter_check_duration_seconds"}}, // a histogram's base name is no series
		{`rate(ratelimiter_checks_total_bucket[5m])`, []string{"ratelimiter_checks_total_bucket"}},
		{`ratelimiter_redis_up / on(node) operator_nope`, []string{"operator_nope"}},
		{`rate(ratelimiter_check_duration_seconds_count[5m])`, nil},
	}
	for _, tc := range tests {
		names, err := promqlMetricNames(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := unknownMetrics(names, exported); !slices.Equal(got, tc.want) {
			t.Errorf("%s: unknown %q, want %q", tc.expr, got, tc.want)
		}
	}
}

func TestComposeCommandChecksRefuseMistakes(t *testing.T) {
	// The checks refuse what would fail in a container.
	for _, args := range [][]string{
		{"healthcheck"},                                      // the URL is missing
		{"observe"},                                          // runs nothing
		{"evaluate", "--ruless", "x.yaml"},                   // no such flag
		{"chaos", "clock_skw"},                               // no such scenario
		{"loadgen", "--duration", "soon"},                    // not a duration
		{"ratelimiter", "serve", "--node-id", "n1", "extra"}, // no arguments
	} {
		if _, err := parseInvocation(args); err == nil {
			t.Errorf("operator %s: accepted", strings.Join(args, " "))
		}
	}
	inv, err := parseInvocation([]string{"observe", "ratelimiter", "--instance", "x"})
	if err != nil {
		t.Fatal(err)
	}
	s := func(v string) *string { return &v }
	errs := inv.applyEnv(types.MappingWithEquals{
		"OPERATOR_NATS":     s("nats://nats:4222"), // fine
		"OPERATOR_INTERVAL": s("often"),            // does not parse
		"OPERATOR_INSTANCE": s("y"),                // also a flag
		"OPERATOR_RULES":    s("r.yaml"),           // not a flag of this command
		"TZ":                s("UTC"),              // not an OPERATOR_ variable
	})
	joined := errors.Join(errs...)
	for _, want := range []string{"OPERATOR_INTERVAL", "OPERATOR_INSTANCE and --instance", "OPERATOR_RULES names no flag", "TZ is not"} {
		if joined == nil || !strings.Contains(joined.Error(), want) {
			t.Errorf("applyEnv errors %v, want one about %s", joined, want)
		}
	}
	if len(errs) != 4 {
		t.Errorf("applyEnv: %d errors, want 4: %v", len(errs), joined)
	}
}
