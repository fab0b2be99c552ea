package check

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// endpoint is one end of a connection: a pod (namespace and labels) or an address
// outside the cluster (ip).
type endpoint struct {
	name      string
	namespace string
	labels    map[string]string
	ports     map[string]int32 // named container ports
	ip        string
}

func (e endpoint) String() string { return e.name }

// Endpoints outside the build, for the evaluations below.
var (
	dnsPod   = endpoint{name: "kube-dns", namespace: "kube-system", labels: map[string]string{"k8s-app": "kube-dns"}}
	otherPod = endpoint{name: "a pod of another namespace (the ingress controller)", namespace: "ingress-nginx", labels: map[string]string{"app.kubernetes.io/name": "ingress-nginx"}}
	kedaPod  = endpoint{name: "keda-operator", namespace: "keda", labels: map[string]string{"app": "keda-operator"}}
	// prometheusPod is Prometheus, in the namespace the monitoring component admits.
	prometheusPod = endpoint{name: "prometheus", namespace: monitoringNamespace, labels: map[string]string{"app.kubernetes.io/name": "prometheus"}}
	internet      = endpoint{name: "the internet", ip: "93.184.215.14"}
	internet6     = endpoint{name: "the internet (IPv6)", ip: "2606:2800:21f:cb07:6820:80da:af6b:8b2c"}
	metadataIP    = endpoint{name: "the cloud metadata endpoint", ip: "169.254.169.254"}
	privateHost   = endpoint{name: "a private address", ip: "192.168.1.10"}
	externalDB    = endpoint{name: "the external database", ip: "10.1.2.3"}
)

// podEndpoints returns one endpoint per workload of the build, named after it.
func podEndpoints(b *build) map[string]endpoint {
	out := map[string]endpoint{}
	for _, w := range workloads(b) {
		ports := map[string]int32{}
		for _, c := range w.template.Spec.Containers {
			for _, p := range c.Ports {
				if p.Name != "" {
					ports[p.Name] = p.ContainerPort
				}
			}
		}
		out[w.name] = endpoint{name: w.name, namespace: w.namespace, labels: w.template.Labels, ports: ports}
	}
	return out
}

// policyTypes returns the directions a policy isolates, with the API's defaults.
func policyTypes(p *networkingv1.NetworkPolicy) []networkingv1.PolicyType {
	if len(p.Spec.PolicyTypes) > 0 {
		return p.Spec.PolicyTypes
	}
	t := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	if len(p.Spec.Egress) > 0 {
		t = append(t, networkingv1.PolicyTypeEgress)
	}
	return t
}

func selects(sel *metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(labels.Set(l))
}

// peerMatches reports whether a rule's peer, in a policy of namespace ns, covers e.
func peerMatches(peer networkingv1.NetworkPolicyPeer, ns string, e endpoint) bool {
	if peer.IPBlock != nil {
		if e.ip == "" {
			return false
		}
		ip := netip.MustParseAddr(e.ip)
		in := func(cidr string) bool {
			p, err := netip.ParsePrefix(cidr)
			return err == nil && p.Contains(ip)
		}
		return in(peer.IPBlock.CIDR) && !slices.ContainsFunc(peer.IPBlock.Except, in)
	}
	if e.namespace == "" {
		return false
	}
	if peer.NamespaceSelector == nil {
		if e.namespace != ns {
			return false
		}
	} else if !selects(peer.NamespaceSelector, map[string]string{"kubernetes.io/metadata.name": e.namespace}) {
		return false
	}
	return peer.PodSelector == nil || selects(peer.PodSelector, e.labels)
}

func portMatches(ports []networkingv1.NetworkPolicyPort, dst endpoint, port int32, proto corev1.Protocol) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		pp := corev1.ProtocolTCP
		if p.Protocol != nil {
			pp = *p.Protocol
		}
		if pp != proto {
			continue
		}
		switch {
		case p.Port == nil:
			return true
		case p.Port.StrVal != "":
			if n, ok := dst.ports[p.Port.StrVal]; ok && n == port {
				return true
			}
		default:
			end := p.Port.IntVal
			if p.EndPort != nil {
				end = *p.EndPort
			}
			if port >= p.Port.IntVal && port <= end {
				return true
			}
		}
	}
	return false
}

// allowed evaluates the build's NetworkPolicies as a CNI would: a connection passes when
// the source may send it (no policy isolates the source's egress, or a rule allows it)
// and the destination may receive it (likewise for ingress).
func allowed(b *build, src, dst endpoint, port int32, proto corev1.Protocol) bool {
	pols := all[networkingv1.NetworkPolicy](b)
	side := func(self, peer endpoint, dir networkingv1.PolicyType) bool {
		if self.namespace == "" {
			return true // outside the cluster: no policy applies
		}
		isolated := false
		for _, p := range pols {
			if p.Namespace != self.namespace || !slices.Contains(policyTypes(p), dir) || !selects(&p.Spec.PodSelector, self.labels) {
				continue
			}
			isolated = true
			if dir == networkingv1.PolicyTypeEgress {
				for _, r := range p.Spec.Egress {
					if portMatches(r.Ports, dst, port, proto) && (len(r.To) == 0 || slices.ContainsFunc(r.To, func(pe networkingv1.NetworkPolicyPeer) bool { return peerMatches(pe, p.Namespace, peer) })) {
						return true
					}
				}
			} else {
				for _, r := range p.Spec.Ingress {
					if portMatches(r.Ports, dst, port, proto) && (len(r.From) == 0 || slices.ContainsFunc(r.From, func(pe networkingv1.NetworkPolicyPeer) bool { return peerMatches(pe, p.Namespace, peer) })) {
						return true
					}
				}
			}
		}
		return !isolated
	}
	return side(src, dst, networkingv1.PolicyTypeEgress) && side(dst, src, networkingv1.PolicyTypeIngress)
}

// checkExposure holds the two rules. Only the fetchers (on 80 and 443) and the
// indexer (on 443, for webhooks) leave the cluster: only their policies have an egress
// rule to everywhere (0.0.0.0/0, ::/0 or no peer), limited to those ports, and of all the
// pods only they reach a public address. Only the gateway is exposed: no Service is a
// NodePort, LoadBalancer or ExternalName, every Ingress backend selects gateway pods
// only, and a pod elsewhere in the cluster reaches the gateway's port and no other port
// of the build.
func checkExposure(b *build) error {
	var errs []error
	pods := podEndpoints(b)
	leaves := func(l map[string]string, port int32) bool {
		switch l["app.kubernetes.io/name"] {
		case "fetcher":
			return port == 80 || port == 443
		case "indexer":
			return port == 443
		}
		return false
	}
	for _, p := range all[networkingv1.NetworkPolicy](b) {
		for _, r := range p.Spec.Egress {
			wide := len(r.To) == 0
			for _, peer := range r.To {
				if peer.IPBlock != nil {
					if pre, err := netip.ParsePrefix(peer.IPBlock.CIDR); err != nil || pre.Bits() == 0 {
						wide = true
					}
				}
			}
			if !wide {
				continue
			}
			for _, e := range pods {
				if !selects(&p.Spec.PodSelector, e.labels) {
					continue
				}
				ok := len(r.Ports) > 0
				for _, port := range r.Ports {
					ok = ok && port.Port != nil && port.EndPort == nil && leaves(e.labels, port.Port.IntVal)
				}
				if !ok {
					errs = append(errs, fmt.Errorf("NetworkPolicy %s lets %s out to everywhere; only the fetchers (80, 443) and the indexer (443) may leave the cluster", p.Name, e))
				}
			}
		}
	}
	for _, e := range pods {
		for _, dst := range []endpoint{internet, internet6} {
			for _, port := range []int32{80, 443, 22, 5432} {
				if allowed(b, e, dst, port, corev1.ProtocolTCP) && !leaves(e.labels, port) {
					errs = append(errs, fmt.Errorf("%s reaches %s on port %d; only the fetchers (80, 443) and the indexer (443) leave", e, dst, port))
				}
			}
		}
	}

	for _, s := range all[corev1.Service](b) {
		switch s.Spec.Type {
		case "", corev1.ServiceTypeClusterIP:
		default:
			errs = append(errs, fmt.Errorf("Service %s is of type %s; only the gateway is exposed, through the Ingress", s.Name, s.Spec.Type))
		}
	}
	for _, ing := range all[networkingv1.Ingress](b) {
		for _, be := range ingressBackends(ing) {
			s := find[corev1.Service](b, be.Name)
			if s == nil {
				continue // checkReferences reports it
			}
			for _, e := range pods {
				if len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(e.labels)) && e.labels["app.kubernetes.io/name"] != "gateway" {
					errs = append(errs, fmt.Errorf("Ingress %s exposes %s through Service %s; only the gateway is exposed", ing.Name, e, s.Name))
				}
			}
		}
	}
	for _, w := range workloads(b) {
		e := pods[w.name]
		for _, c := range w.template.Spec.Containers {
			for _, p := range c.Ports {
				gatewayPort := e.labels["app.kubernetes.io/name"] == "gateway" && p.ContainerPort == 8000
				if !gatewayPort && allowed(b, otherPod, e, p.ContainerPort, corev1.ProtocolTCP) {
					errs = append(errs, fmt.Errorf("%s reaches %s:%d; only the gateway's port is open to the rest of the cluster", otherPod, e, p.ContainerPort))
				}
			}
		}
	}
	if g, ok := pods["gateway"]; ok && !allowed(b, otherPod, g, 8000, corev1.ProtocolTCP) {
		errs = append(errs, errors.New("the ingress controller cannot reach the gateway on 8000"))
	}
	return errors.Join(errs...)
}

func TestNetworkExposure(t *testing.T) {
	forEachBuild(t, checkExposure)
}

// connection is one expected verdict of the policies.
type connection struct {
	from, to string // workload names, or the name of an endpoint above
	port     int32
	proto    corev1.Protocol
	want     bool
}

// checkConnections evaluates each connection and reports the verdicts that differ.
func checkConnections(b *build, conns []connection) error {
	eps := podEndpoints(b)
	for _, e := range []endpoint{dnsPod, otherPod, kedaPod, prometheusPod, internet, internet6, metadataIP, privateHost, externalDB} {
		eps[e.name] = e
	}
	var errs []error
	for _, c := range conns {
		src, ok1 := eps[c.from]
		dst, ok2 := eps[c.to]
		if !ok1 || !ok2 {
			errs = append(errs, fmt.Errorf("%s -> %s: no such endpoint in the build", c.from, c.to))
			continue
		}
		proto := c.proto
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		if got := allowed(b, src, dst, c.port, proto); got != c.want {
			verdict := map[bool]string{true: "allowed", false: "denied"}
			errs = append(errs, fmt.Errorf("%s -> %s:%d/%s is %s, want %s", c.from, c.to, c.port, proto, verdict[got], verdict[c.want]))
		}
	}
	return errors.Join(errs...)
}

// connections are the verdicts every overlay must give, plus each overlay's own.
var (
	commonConnections = []connection{
		{from: "gateway", to: "nats", port: 4222, want: true},
		{from: "fetcher", to: "nats", port: 4222, want: true},
		{from: "indexer", to: "nats", port: 4222, want: true},
		{from: "migrate", to: "nats", port: 4222, want: false},
		{from: "nats", to: "nats", port: 6222, want: true},
		{from: "gateway", to: "nats", port: 6222, want: false},
		{from: "gateway", to: "nats", port: 8222, want: false},
		{from: "fetcher", to: "the internet", port: 443, want: true},
		{from: "fetcher", to: "the internet", port: 80, want: true},
		{from: "fetcher", to: "the internet (IPv6)", port: 443, want: true},
		{from: "fetcher", to: "the internet", port: 22, want: false},
		{from: "fetcher", to: "the cloud metadata endpoint", port: 80, want: false},
		{from: "fetcher", to: "a private address", port: 443, want: false},
		{from: "gateway", to: "the internet", port: 443, want: false},
		{from: "indexer", to: "the internet", port: 443, want: true}, // webhooks
		{from: "indexer", to: "the internet", port: 80, want: false},
		{from: "indexer", to: "the cloud metadata endpoint", port: 443, want: false},
		{from: "indexer", to: "a private address", port: 443, want: false},
		{from: "nats", to: "the internet", port: 443, want: false},
		{from: "migrate", to: "the internet", port: 443, want: false},
		{from: "gateway", to: "fetcher", port: 8001, want: false},
		{from: "fetcher", to: "gateway", port: 8000, want: false},
		{from: otherPod.name, to: "gateway", port: 8000, want: true},
		{from: otherPod.name, to: "nats", port: 4222, want: false},
		{from: kedaPod.name, to: "nats", port: 4222, want: false},
	}
	overlayConnections = map[string][]connection{
		"dev": {
			{from: "gateway", to: "postgres", port: 5432, want: true},
			{from: "indexer", to: "postgres", port: 5432, want: true},
			{from: "migrate", to: "postgres", port: 5432, want: true},
			{from: "fetcher", to: "postgres", port: 5432, want: false},
			{from: "nats", to: "postgres", port: 5432, want: false},
			{from: otherPod.name, to: "postgres", port: 5432, want: false},
			{from: "postgres", to: "the internet", port: 443, want: false},
			// No monitoring component: the metrics ports stay closed (the gateway's is
			// its API port, open to the cluster).
			{from: prometheusPod.name, to: "fetcher", port: 8001, want: false},
			{from: prometheusPod.name, to: "indexer", port: 8002, want: false},
		},
		"prod": {
			{from: "gateway", to: "the external database", port: 5432, want: true},
			{from: "indexer", to: "the external database", port: 5432, want: true},
			{from: "migrate", to: "the external database", port: 5432, want: true},
			{from: "fetcher", to: "the external database", port: 5432, want: false},
			{from: "gateway", to: "the external database", port: 22, want: false},
			{from: kedaPod.name, to: "nats", port: 8222, want: true},
			// components/monitoring: Prometheus reaches each service's metrics port and
			// nothing else.
			{from: prometheusPod.name, to: "gateway", port: 8000, want: true},
			{from: prometheusPod.name, to: "fetcher", port: 8001, want: true},
			{from: prometheusPod.name, to: "indexer", port: 8002, want: true},
			{from: prometheusPod.name, to: "fetcher", port: 8000, want: false},
			{from: prometheusPod.name, to: "indexer", port: 8001, want: false},
			{from: prometheusPod.name, to: "nats", port: 4222, want: false},
			{from: prometheusPod.name, to: "nats", port: 8222, want: false},
		},
	}
)

func TestNetworkPolicies(t *testing.T) {
	for _, b := range builds(t) {
		t.Run(b.overlay, func(t *testing.T) {
			conns := slices.Concat(commonConnections, overlayConnections[b.overlay])
			// Every pod resolves names.
			for _, w := range workloads(b) {
				conns = append(conns, connection{from: w.name, to: dnsPod.name, port: 53, proto: corev1.ProtocolUDP, want: true})
			}
			if err := checkConnections(b, conns); err != nil {
				for _, e := range unwrap(err) {
					t.Error(e)
				}
			}
		})
	}
}
