package check

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

const natsServerModule = "github.com/nats-io/nats-server/v2"

var embeddedNATSOnce = sync.OnceValues(func() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "platform", "go.mod")
	data, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	f, err := modfile.ParseLax(p, data, nil)
	if err != nil {
		return "", err
	}
	for _, r := range f.Require {
		if r.Mod.Path == natsServerModule {
			return r.Mod.Version, nil
		}
	}
	return "", fmt.Errorf("%s does not require %s", p, natsServerModule)
})

// checkNATSImage reports a NATS image whose release line (major.minor) differs from the
// nats-server the tests embed (platform/go.mod): the cluster runs what was tested.
func checkNATSImage(image, embedded string) error {
	repo, tag, _ := strings.Cut(image, ":")
	if repo != "nats" && !strings.HasSuffix(repo, "/nats") {
		return fmt.Errorf("image %q is not the official nats image", image)
	}
	version, _, _ := strings.Cut(tag, "-")
	if !semver.IsValid("v"+version) || strings.Count(version, ".") != 2 {
		return fmt.Errorf("image %q: pin a full release (2.x.y), not %q", image, tag)
	}
	if semver.MajorMinor("v"+version) != semver.MajorMinor(embedded) {
		return fmt.Errorf("image %q runs nats-server %s, but the tests embed %s (platform/go.mod)", image, version, embedded)
	}
	return nil
}

func embeddedNATS(t *testing.T) string {
	t.Helper()
	v, err := embeddedNATSOnce()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// checkNATSCluster loads the NATS StatefulSet's configuration with nats-server's own
// parser and checks it against the StatefulSet: one route per server, named as the
// headless Service resolves them; JetStream storing on the volume; the ports and the pid
// file (for the lame-duck preStop) where the pod has them.
func checkNATSCluster(b *build, dir string, embedded string) error {
	sts := find[appsv1.StatefulSet](b, "nats")
	if sts == nil {
		return errors.New("no StatefulSet nats")
	}
	var errs []error
	spec := sts.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		return fmt.Errorf("StatefulSet nats: %d containers, want 1", len(spec.Containers))
	}
	c := &spec.Containers[0]
	if err := checkNATSImage(c.Image, embedded); err != nil {
		errs = append(errs, fmt.Errorf("StatefulSet nats: %w", err))
	}
	replicas := int32(1)
	if sts.Spec.Replicas != nil {
		replicas = *sts.Spec.Replicas
	}
	if replicas != 3 && replicas != 5 {
		errs = append(errs, fmt.Errorf("StatefulSet nats: %d servers; a JetStream cluster wants 3 or 5", replicas))
	}

	// The configuration file: the ConfigMap volume mounted where --config points.
	var confPath string
	for i, a := range c.Args {
		if (a == "--config" || a == "-c") && i+1 < len(c.Args) {
			confPath = c.Args[i+1]
		}
	}
	mounted := func(p string) (corev1.VolumeMount, bool) {
		for _, m := range c.VolumeMounts {
			if rel, err := filepath.Rel(m.MountPath, p); err == nil && !strings.HasPrefix(rel, "..") {
				return m, true
			}
		}
		return corev1.VolumeMount{}, false
	}
	m, ok := mounted(confPath)
	if !ok {
		return errors.Join(append(errs, fmt.Errorf("StatefulSet nats: --config %q is on no volume", confPath))...)
	}
	var cm *corev1.ConfigMap
	for _, v := range spec.Volumes {
		if v.Name == m.Name && v.ConfigMap != nil {
			cm = find[corev1.ConfigMap](b, v.ConfigMap.Name)
		}
	}
	if cm == nil || cm.Data[filepath.Base(confPath)] == "" {
		return errors.Join(append(errs, fmt.Errorf("StatefulSet nats: no ConfigMap data for %s", confPath))...)
	}
	// The server takes $POD_NAME and the users' passwords from its environment.
	podName := sts.Name + "-0"
	env := natsContainerEnv(c, podName, func(string, string) string { return "check-password" })
	opts, err := loadNATSConfig(dir, cm.Data, filepath.Base(confPath), env)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("nats.conf: %w", err))...)
	}
	if opts.ServerName != podName {
		errs = append(errs, fmt.Errorf("nats.conf: server_name %q, want the pod's name (KEDA and the routes rely on it)", opts.ServerName))
	}
	if !opts.JetStream {
		errs = append(errs, errors.New("nats.conf: JetStream is not enabled"))
	}
	if dm, ok := mounted(opts.StoreDir); !ok || !isClaim(sts, dm.Name) {
		errs = append(errs, fmt.Errorf("nats.conf: store_dir %q is not on the StatefulSet's volume claim", opts.StoreDir))
	}
	if _, ok := mounted(opts.PidFile); !ok {
		errs = append(errs, fmt.Errorf("nats.conf: pid_file %q is on the read-only root filesystem", opts.PidFile))
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for _, p := range []struct {
		name string
		got  int
	}{{"client", opts.Port}, {"cluster", opts.Cluster.Port}, {"monitor", opts.HTTPPort}} {
		if int32(p.got) != ports[p.name] {
			errs = append(errs, fmt.Errorf("nats.conf: %s port %d, but the container's %s port is %d", p.name, p.got, p.name, ports[p.name]))
		}
	}
	if opts.Cluster.Name == "" {
		errs = append(errs, errors.New("nats.conf: the cluster has no name"))
	}
	want := map[string]bool{}
	for i := range replicas {
		want[fmt.Sprintf("%s-%d.%s:%d", sts.Name, i, sts.Spec.ServiceName, ports["cluster"])] = true
	}
	for _, r := range opts.Routes {
		if !want[r.Host] {
			errs = append(errs, fmt.Errorf("nats.conf: route %s is none of the StatefulSet's servers", r))
		}
		delete(want, r.Host)
	}
	for r := range want {
		errs = append(errs, fmt.Errorf("nats.conf: no route to %s", r))
	}
	if size := claimSize(sts, "data"); size > 0 && opts.JetStreamMaxStore >= size {
		errs = append(errs, fmt.Errorf("nats.conf: max_file_store (%d bytes) does not fit the %d-byte volume", opts.JetStreamMaxStore, size))
	}
	return errors.Join(errs...)
}

func isClaim(sts *appsv1.StatefulSet, name string) bool {
	return claimSize(sts, name) >= 0
}

// claimSize returns the storage request of a volume claim template, -1 when none has that name.
func claimSize(sts *appsv1.StatefulSet, name string) int64 {
	for _, pvc := range sts.Spec.VolumeClaimTemplates {
		if pvc.Name == name {
			q := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
			return q.Value()
		}
	}
	return -1
}

func TestNATSCluster(t *testing.T) {
	v := embeddedNATS(t)
	dir := t.TempDir()
	forEachBuild(t, func(b *build) error { return checkNATSCluster(b, dir, v) })
}
