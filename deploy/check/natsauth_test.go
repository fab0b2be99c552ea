package check

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/service"
)

// NATS authentication (config/nats-auth.conf): every service connects as its own user,
// with a password from the Secret (Kubernetes) or the environment (compose), and may do
// only what its code does. The static checks here read the configuration with
// nats-server's own parser; natslive_test.go runs the server and tries.

// natsStreams are every stream the services provision, by name: the event streams and
// the key-value buckets' streams (KV_<bucket>), and the indexer's webhook queue.
func natsStreams() []string {
	var out []string
	for _, s := range events.Streams(0) {
		out = append(out, s.Name)
	}
	out = append(out, events.StreamWebhooks)
	for _, b := range events.Buckets(0) {
		out = append(out, "KV_"+b.Bucket)
	}
	return out
}

// natsRule is something a service's NATS user must be refused: publishing to (or, with
// sub, subscribing to) subject.
type natsRule struct {
	sub           bool
	subject, what string
}

func (r natsRule) String() string {
	verb := "publish to"
	if r.sub {
		verb = "subscribe to"
	}
	return fmt.Sprintf("%s %s (%s)", verb, r.subject, r.what)
}

// natsRefusals lists, per service, what its user must not be able to do: what the
// issue names (the gateway cannot publish fetched events, the fetchers cannot purge a
// stream) and the like for each. Only the indexer (service.StreamOwner) may change a
// stream's or bucket's configuration: any other would shrink one by updating its limits.
func natsRefusals(svc string) []natsRule {
	var out []natsRule
	pub := func(subject, what string) { out = append(out, natsRule{false, subject, what}) }
	for _, s := range natsStreams() {
		pub("$JS.API.STREAM.DELETE."+s, "delete a stream")
		if svc != service.StreamOwner {
			pub("$JS.API.STREAM.UPDATE."+s, "change a stream's limits (the indexer's to do)")
		}
	}
	pub("$JS.API.STREAM.CREATE.OTHER", "create a stream that is not xsw's")
	pub("$JS.API.STREAM.UPDATE.OTHER", "change a stream that is not xsw's")
	pub("$SYS.REQ.SERVER.PING", "ask the system account")
	purges := func(except ...string) {
		for _, s := range natsStreams() {
			if !slices.Contains(except, s) {
				pub("$JS.API.STREAM.PURGE."+s, "purge a stream")
				pub("$JS.API.STREAM.MSG.DELETE."+s, "delete a stored message")
			}
		}
	}
	switch svc {
	case "gateway":
		purges(events.StreamRequests, events.StreamDead) // the admin API's lane purge, replays
		pub(events.SubjectFetchedBook(events.LegacySite, "1"), "a fetched event is the fetchers'")
		pub(events.SubjectFetchedChapter(events.LegacySite, "1"), "a fetched event is the fetchers'")
		pub(events.SubjectJob(events.JobCompleted, events.LegacySite, "1"), "a job event is the fetchers'")
		pub(events.SubjectDead(events.LegacySite, "1"), "a dead letter is the fetchers'")
		pub(events.SubjectIndexed(events.LegacySite, "1"), "an announcement is the indexer's")
		pub(events.SubjectWebhook("r1"), "a webhook delivery is the indexer's")
		pub("$KV."+events.BucketPoliteness+".site.xsw", "the request slots are the fetchers'")
		pub("$KV."+events.BucketLeases+".refresh", "the leases are the indexer's")
		pub("$JS.API.CONSUMER.DELETE.XSW_EVENTS.indexer", "remove the indexer's consumer")
		pub("$JS.API.CONSUMER.CREATE.XSW_EVENTS.indexer", "change the indexer's consumer")
		pub("$JS.API.CONSUMER.CREATE.XSW_EVENTS.notifier.xsw.job.failed.>", "change the notifier's consumer")
		pub("$JS.API.CONSUMER.MSG.NEXT.XSW_EVENTS.indexer", "take the indexer's events")
		pub("$JS.API.CONSUMER.CREATE.XSW_EVENTS.peek.xsw.fetched.>", "read what the fetchers fetched")
		pub("$JS.API.CONSUMER.MSG.NEXT.XSW_REQUESTS.fetch-interactive-xsw", "take the fetchers' work")
		pub("$JS.ACK.XSW_REQUESTS.fetch-interactive-xsw.1.1.1.1.0", "acknowledge the fetchers' work")
		out = append(out, natsRule{true, events.RPCSubject(events.SubjectRPCChapter, events.LegacySite), "answer the fetchers' calls"})
	case "fetcher":
		purges()
		pub("$JS.API.CONSUMER.DELETE.XSW_REQUESTS.fetch-interactive-xsw", "remove a consumer")
		pub("$JS.API.CONSUMER.DELETE.XSW_EVENTS.indexer", "remove the indexer's consumer")
		pub("$JS.API.CONSUMER.CREATE.XSW_EVENTS.peek", "read the event stream")
		pub(events.RequestSubject(events.LaneInteractive, events.LegacySite, "1"), "jump the readers' queue")
		pub(events.RequestSubject(events.LaneManual, events.LegacySite, "1"), "jump the admin's queue")
		pub(events.SubjectPurgeBook(events.LegacySite, "1"), "a command to the indexer is the gateway's")
		pub(events.SubjectIndexed(events.LegacySite, "1"), "an announcement is the indexer's")
		pub(events.SubjectCacheClear, "the gateways' caches are theirs")
		pub(events.SubjectCrawlAll[:len(events.SubjectCrawlAll)-1]+"crawl-1", "a crawl is the gateway's to queue")
		pub("$KV."+events.BucketLeases+".refresh", "the leases are the indexer's")
	case "indexer":
		purges()
		pub(events.SubjectFetchedBook(events.LegacySite, "1"), "a fetched event is the fetchers'")
		pub(events.SubjectJob(events.JobCompleted, events.LegacySite, "1"), "a job event is the fetchers'")
		pub(events.SubjectPurgeBook(events.LegacySite, "1"), "a command is the gateway's")
		pub(events.RequestSubject(events.LaneInteractive, events.LegacySite, "1"), "jump the readers' queue")
		pub("$KV."+events.BucketPoliteness+".site.xsw", "the request slots are the fetchers'")
		pub("$KV."+events.BucketClaims+".xsw.1", "the sync claims are the fetchers'")
		pub("$JS.API.CONSUMER.MSG.NEXT.XSW_REQUESTS.fetch-interactive-xsw", "take the fetchers' work")
		pub("$JS.API.CONSUMER.CREATE.XSW_REQUESTS.peek", "consume the work queue")
		out = append(out, natsRule{true, events.RPCSubject(events.SubjectRPCChapter, events.LegacySite), "answer the fetchers' calls"})
	}
	return out
}

// subjectMatches reports whether a permission's subject pattern covers a literal subject.
func subjectMatches(pattern, subject string) bool {
	pt, st := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, p := range pt {
		if p == ">" {
			return len(st) > i
		}
		if i >= len(st) || (p != "*" && p != st[i]) {
			return false
		}
	}
	return len(pt) == len(st)
}

// permits reports whether p lets a client use subject, as nats-server decides: no
// permission at all allows everything, an allow list allows only what it matches, and
// a deny wins over an allow.
func permits(p *server.SubjectPermission, subject string) bool {
	if p == nil {
		return true
	}
	match := func(pattern string) bool { return subjectMatches(pattern, subject) }
	return (len(p.Allow) == 0 || slices.ContainsFunc(p.Allow, match)) && !slices.ContainsFunc(p.Deny, match)
}

// checkUserPermissions reports what svc's user u is allowed and must not be.
func checkUserPermissions(svc string, u *server.User) []error {
	if u.Permissions == nil || u.Permissions.Publish == nil || u.Permissions.Subscribe == nil {
		return []error{fmt.Errorf("NATS user %s (%s) has no publish and subscribe permissions: it may do anything", u.Username, svc)}
	}
	var errs []error
	for _, r := range natsRefusals(svc) {
		p := u.Permissions.Publish
		if r.sub {
			p = u.Permissions.Subscribe
		}
		if permits(p, r.subject) {
			errs = append(errs, fmt.Errorf("NATS user %s (%s) may %s", u.Username, svc, r))
		}
	}
	return errs
}

// natsContainerEnv is the environment a NATS container runs with: its literal values,
// the pod's name for metadata.name, and secret(name, key) for a Secret's key.
func natsContainerEnv(c *corev1.Container, podName string, secret func(name, key string) string) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = secret(e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			env[e.Name] = podName
		}
	}
	return env
}

// withEnv runs f with env set in the process's environment (nats-server's parser reads
// its $VARIABLES from there), then restores it. The tests of this package do not run in
// parallel.
func withEnv(env map[string]string, f func() error) error {
	for k, v := range env {
		old, had := os.LookupEnv(k)
		if err := os.Setenv(k, v); err != nil {
			return err
		}
		if had {
			defer os.Setenv(k, old)
		} else {
			defer os.Unsetenv(k)
		}
	}
	return f()
}

// loadNATSConfig writes files (a ConfigMap's data: the main file and what it includes)
// into dir and parses main with nats-server's parser under env.
func loadNATSConfig(dir string, files map[string]string, main string, env map[string]string) (*server.Options, error) {
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			return nil, err
		}
	}
	var opts *server.Options
	err := withEnv(env, func() (err error) {
		opts, err = server.ProcessConfigFile(filepath.Join(dir, main))
		return err
	})
	return opts, err
}

// natsServerFiles returns the NATS StatefulSet's configuration: the files of the
// ConfigMap mounted where --config points, the main file's name, and the container.
func natsServerFiles(b *build) (files map[string]string, main string, c *corev1.Container, err error) {
	sts := find[appsv1.StatefulSet](b, "nats")
	if sts == nil || len(sts.Spec.Template.Spec.Containers) != 1 {
		return nil, "", nil, errors.New("no StatefulSet nats with one container")
	}
	spec := &sts.Spec.Template.Spec
	c = &spec.Containers[0]
	var conf string
	for i, a := range c.Args {
		if (a == "--config" || a == "-c") && i+1 < len(c.Args) {
			conf = c.Args[i+1]
		}
	}
	for _, m := range c.VolumeMounts {
		if filepath.Dir(conf) != filepath.Clean(m.MountPath) {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				if cm := find[corev1.ConfigMap](b, v.ConfigMap.Name); cm != nil && cm.Data[filepath.Base(conf)] != "" {
					return cm.Data, filepath.Base(conf), c, nil
				}
			}
		}
	}
	return nil, "", nil, fmt.Errorf("StatefulSet nats: no ConfigMap holds its --config %q", conf)
}

var (
	// k8sVarRef is a Kubernetes dependent variable, $(NAME); $$(NAME) is a literal.
	k8sVarRef = regexp.MustCompile(`(^|[^$])\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	// natsURLWithUser is a NATS URL that carries credentials.
	natsURLWithUser = regexp.MustCompile(`(nats|tls|ws|wss)://[^\s/@]+@`)
)

// k8sVarRefs returns the variables value refers to as $(NAME).
func k8sVarRefs(value string) []string {
	var out []string
	for _, m := range k8sVarRef.FindAllStringSubmatch(value, -1) {
		out = append(out, m[2])
	}
	return out
}

// natsClientOf returns the NATS user and the Secret key (name/key) of the password a
// container's NATS_URL carries, or why it carries none from a Secret. The password must
// be $(VAR) for a variable defined above NATS_URL from a secretKeyRef: the kubelet
// expands it, and neither a ConfigMap nor the manifest ever holds it.
func natsClientOf(c *corev1.Container) (user, secret string, err error) {
	i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "NATS_URL" })
	if i < 0 {
		return "", "", errors.New("no NATS_URL in its env (it takes its NATS user and password there)")
	}
	e := c.Env[i]
	if e.ValueFrom != nil {
		return "", "", errors.New("NATS_URL comes whole from elsewhere: build it as nats://<user>:$(NATS_PASSWORD)@<service>:<port>")
	}
	u, perr := url.Parse(e.Value)
	if perr != nil || u.User == nil || u.User.Username() == "" {
		return "", "", fmt.Errorf("NATS_URL=%q names no user: NATS refuses clients without one", e.Value)
	}
	pass, _ := u.User.Password()
	refs := k8sVarRefs(pass)
	if len(refs) != 1 || pass != "$("+refs[0]+")" {
		return "", "", fmt.Errorf("NATS_URL=%q: the password must be $(VAR), VAR from the Secret, not written out", e.Value)
	}
	j := slices.IndexFunc(c.Env[:i], func(d corev1.EnvVar) bool { return d.Name == refs[0] })
	if j < 0 {
		return "", "", fmt.Errorf("NATS_URL refers to $(%s), which is not defined above it: the kubelet would pass the text as the password", refs[0])
	}
	ref := c.Env[j].ValueFrom
	if ref == nil || ref.SecretKeyRef == nil {
		return "", "", fmt.Errorf("NATS_URL takes its password from %s, which does not come from a Secret", refs[0])
	}
	if ref.SecretKeyRef.Optional != nil && *ref.SecretKeyRef.Optional {
		return "", "", fmt.Errorf("%s: the NATS password's Secret key must not be optional", refs[0])
	}
	return u.User.Username(), ref.SecretKeyRef.Name + "/" + ref.SecretKeyRef.Key, nil
}

// checkNATSAuth holds the rules of NATS authentication in a build: the server's users
// take their passwords from Secrets (nothing in the configuration or a ConfigMap); each
// xsw service connects as its own user, with the password of that user from the same
// Secret key; each user is refused what natsRefusals lists.
func checkNATSAuth(b *build, dir string) error {
	var errs []error
	for _, cm := range all[corev1.ConfigMap](b) {
		for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
			for line := range strings.Lines(cm.Data[k]) {
				if !strings.HasPrefix(strings.TrimSpace(line), "#") && natsURLWithUser.MatchString(line) {
					errs = append(errs, fmt.Errorf("ConfigMap %s: %s holds a NATS URL with credentials; the password belongs in the Secret", cm.Name, k))
					break
				}
			}
		}
	}
	files, main, nc, err := natsServerFiles(b)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	// Each Secret key the server reads gets a value of its own, so that a user's
	// password shows which key it came from; a password that is none came from the
	// configuration or a plain variable.
	keyOf := map[string]string{}
	env := natsContainerEnv(nc, "nats-0", func(name, key string) string {
		v := fmt.Sprintf("secret-%d", len(keyOf))
		keyOf[v] = name + "/" + key
		return v
	})
	opts, err := loadNATSConfig(dir, files, main, env)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("nats.conf: %w", err))...)
	}
	if opts.NoAuthUser != "" {
		errs = append(errs, fmt.Errorf("nats.conf: no_auth_user %s lets clients in without a password", opts.NoAuthUser))
	}
	users := map[string]*server.User{}
	for _, u := range opts.Users {
		users[u.Username] = u
		if _, ok := keyOf[u.Password]; !ok {
			errs = append(errs, fmt.Errorf("nats.conf: the password of user %s does not come from a Secret (the StatefulSet's env, secretKeyRef)", u.Username))
		}
	}
	if len(users) == 0 {
		errs = append(errs, errors.New("nats.conf: no users: any client may connect and do anything"))
	}

	byUser := map[string]string{} // user -> the service using it
	for _, w := range workloads(b) {
		for i := range w.template.Spec.Containers {
			c := &w.template.Spec.Containers[i]
			svc := serviceOf(c.Image)
			if svc == "" || (w.kind == "Job" && !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "NATS_URL" })) {
				continue // the migration uses no NATS
			}
			ref := fmt.Sprintf("%s: container %s", w, c.Name)
			user, secret, err := natsClientOf(c)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", ref, err))
				continue
			}
			if user != svc {
				errs = append(errs, fmt.Errorf("%s connects to NATS as %s: each service has its own user, %s", ref, user, svc))
			}
			if other, ok := byUser[user]; ok && other != svc {
				errs = append(errs, fmt.Errorf("%s and %s share the NATS user %s", other, svc, user))
			}
			byUser[user] = svc
			u := users[user]
			if u == nil {
				errs = append(errs, fmt.Errorf("%s connects as %s, which is no NATS user (nats.conf)", ref, user))
				continue
			}
			if got := keyOf[u.Password]; got != secret {
				errs = append(errs, fmt.Errorf("%s takes the password of NATS user %s from Secret key %s, the server from %q", ref, user, secret, got))
			}
			errs = append(errs, checkUserPermissions(svc, u)...)
		}
	}
	for svc := range services {
		if !slices.Contains(slices.Collect(maps.Values(byUser)), svc) {
			errs = append(errs, fmt.Errorf("no workload connects to NATS as the %s", svc))
		}
	}
	return errors.Join(errs...)
}

// composeNATS returns the compose NATS server's arguments, its --config resolved to the
// file on the host (a bind mount), and its environment.
func composeNATS(p *types.Project) (args []string, env map[string]string, err error) {
	s, ok := p.Services["nats"]
	if !ok {
		return nil, nil, errors.New("no service nats")
	}
	args = slices.Clone([]string(s.Command))
	i := slices.IndexFunc(args, func(a string) bool { return a == "--config" || a == "-c" })
	if i < 0 || i+1 >= len(args) {
		return nil, nil, errors.New("service nats: no --config: its users and their permissions are in that file")
	}
	conf := args[i+1]
	found := false
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if rel, err := filepath.Rel(v.Target, conf); err == nil && !strings.HasPrefix(rel, "..") {
			args[i+1], found = filepath.Join(v.Source, rel), true
		}
	}
	if !found {
		return nil, nil, fmt.Errorf("service nats: --config %s is on no bind mount", conf)
	}
	env = map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	return args, env, nil
}

// composeNATSOptions parses the compose NATS server's command line (and so its
// configuration file) with nats-server's own parser, under its environment.
func composeNATSOptions(p *types.Project) (*server.Options, error) {
	args, env, err := composeNATS(p)
	if err != nil {
		return nil, err
	}
	var opts *server.Options
	err = withEnv(env, func() (err error) {
		fs := flag.NewFlagSet("nats-server", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		opts, err = server.ConfigureOptions(fs, args, func() {}, func() {}, func() {})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("service nats: %w", err)
	}
	return opts, nil
}

var (
	// composeNATSSecret is a line of docker-compose.yml that carries a NATS password.
	composeNATSSecret = regexp.MustCompile(`(?m)^\s*(NATS_URL|[A-Z0-9_]*NATS_PASSWORD):\s*(.*?)\s*$`)
	// composeInterpolation is a whole value taken from the environment: ${VAR},
	// ${VAR:-default}, ${VAR:?message}.
	composeInterpolation = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\}$`)
	natsURLPassword      = regexp.MustCompile(`^[a-z]+://[^:@/]+:([^@]*)@`)
)

// checkComposeNATSAuth holds the rules of NATS authentication in docker-compose.yml
// (raw is its text): every password comes from the environment (the file may give a
// local default); each xsw service connects as its own user with that user's password;
// each user is refused what natsRefusals lists.
func checkComposeNATSAuth(raw string, p *types.Project) error {
	var errs []error
	for _, m := range composeNATSSecret.FindAllStringSubmatch(raw, -1) {
		name, value := m[1], strings.Trim(m[2], `"'`)
		pass := value
		if name == "NATS_URL" {
			pm := natsURLPassword.FindStringSubmatch(value)
			if pm == nil {
				errs = append(errs, fmt.Errorf("docker-compose.yml: NATS_URL: %s names no user and password: NATS refuses clients without", value))
				continue
			}
			pass = pm[1]
		}
		if !composeInterpolation.MatchString(pass) {
			errs = append(errs, fmt.Errorf("docker-compose.yml: %s: the NATS password %q is written out; take it from the environment (${VAR:-local default})", name, pass))
		}
	}
	opts, err := composeNATSOptions(p)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if opts.NoAuthUser != "" {
		errs = append(errs, fmt.Errorf("service nats: no_auth_user %s lets clients in without a password", opts.NoAuthUser))
	}
	users := map[string]*server.User{}
	for _, u := range opts.Users {
		users[u.Username] = u
	}
	if len(users) == 0 {
		errs = append(errs, errors.New("service nats: no users: any client may connect and do anything"))
	}
	byUser := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		s := p.Services[name]
		svc := serviceOf(s.Image)
		raw, ok := s.Environment["NATS_URL"]
		if svc == "" || !ok || raw == nil {
			continue
		}
		u, err := url.Parse(*raw)
		if err != nil || u.User == nil {
			errs = append(errs, fmt.Errorf("service %s: NATS_URL names no user", name))
			continue
		}
		user := u.User.Username()
		pass, _ := u.User.Password()
		if user != svc {
			errs = append(errs, fmt.Errorf("service %s connects to NATS as %s: each service has its own user, %s", name, user, svc))
		}
		if other, ok := byUser[user]; ok && other != svc {
			errs = append(errs, fmt.Errorf("%s and %s share the NATS user %s", other, svc, user))
		}
		byUser[user] = svc
		nu := users[user]
		if nu == nil {
			errs = append(errs, fmt.Errorf("service %s connects as %s, which is no NATS user", name, user))
			continue
		}
		if nu.Password != pass {
			errs = append(errs, fmt.Errorf("service %s: the password in NATS_URL is not user %s's (give both the same variable)", name, user))
		}
		errs = append(errs, checkUserPermissions(svc, nu)...)
	}
	for svc := range services {
		if !slices.Contains(slices.Collect(maps.Values(byUser)), svc) {
			errs = append(errs, fmt.Errorf("no service connects to NATS as the %s", svc))
		}
	}
	return errors.Join(errs...)
}

func TestNATSAuth(t *testing.T) {
	dir := t.TempDir()
	forEachBuild(t, func(b *build) error { return checkNATSAuth(b, dir) })
}

func TestComposeNATSAuth(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(mustRoot(t), "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkComposeNATSAuth(string(raw), composeProject(t)); err != nil {
		for _, e := range unwrap(err) {
			t.Error(e)
		}
	}
}
