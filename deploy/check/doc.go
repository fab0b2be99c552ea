// Package check holds the tests of xsw's deployment artefacts: the Kubernetes manifests
// under deploy/k8s (as kustomize builds each overlay), docker-compose.yml, the
// Dockerfiles, and the documentation that describes them. Nothing here runs a container or talks to a cluster; the checks are
// static and strict, but for NATS authentication, which also runs a real nats-server
// in process (natslive_test.go), and the image builds, whose go commands run for real
// (dockerbuild_test.go):
//
//   - every object of every overlay decodes, unknown fields being errors, into its Go
//     type from k8s.io/api, or, for KEDA's ScaledObject, validates against KEDA's own
//     CRD schema (pinned in testdata/keda);
//   - workloads have probes, resource requests and limits, and a non-root, read-only,
//     capability-free security context; the migration Job runs `indexer migrate`;
//   - every environment variable a manifest or the compose file gives a service is one
//     that service's Go source reads (found by scanning it, see vars_test.go);
//   - every service is given the same list of source sites (SOURCES), of well-formed
//     ids, each with an adapter built into the fetcher (fetcher.Builtin), and a per-site
//     variable (SOURCE_<SITE>_URL, ...) only for a listed site (see sources_test.go);
//   - a fetcher's memory limit holds every page it may have in flight, each with what
//     parsing it allocates (see memory_test.go);
//   - the fetchers' KEDA triggers read exactly the per-site consumers of the listed
//     sites, interactive and prefetch for each (see autoscale_test.go);
//   - the NetworkPolicies, evaluated like a CNI would, let only the fetchers (and the
//     indexer, to webhook receivers on 443) out of the cluster and only the gateway in;
//   - NATS asks every client for a user and password: each service has its own user,
//     its password from the Secret (compose: the environment), and is allowed what its
//     code does and refused the rest (the gateway publishing fetched events, a fetcher
//     purging a stream, ...), proven against a running server with each service's
//     NATS_URL (see natsauth_test.go, natslive_test.go);
//   - docker-compose.yml loads and validates with compose-spec's own loader, with and
//     without its profile observability, whose Prometheus configuration loads with
//     Prometheus' own loader and scrapes every replica of every service, and whose
//     Grafana is provisioned with that Prometheus and the xsw dashboard (see
//     observability_test.go);
//   - where metrics go to the Prometheus Operator (components/monitoring), every pod of
//     every service is scraped once, on its metrics port and path, which Prometheus'
//     namespace may reach, and the PrometheusRule is deploy/prometheus/alerts.yaml's
//     (monitoring_test.go, -update regenerates it);
//   - the alert rules parse with Prometheus' own rule parser and use only the metrics,
//     labels and label values the services export, read from their source (see
//     alerts_test.go, metricsource_test.go);
//   - the Dockerfiles, resolved for their build arguments (SERVICE, VERSION), parse with
//     BuildKit's parser, build with GOWORK=off onto a distroless or scratch base as a
//     numeric non-root user, and copy only what exists; their builds, simulated stage by
//     stage with exactly what each COPY copies, compile, and the image runs its
//     service's static binary stamped with VERSION (dockerbuild_test.go);
//   - the documentation holds: the README stays at most 12 KB and keeps the block of
//     figures dev/bench rewrites, every relative link of the README and docs/*.md
//     resolves, anchors included (docs_test.go); docs/api.md documents exactly the
//     operations of the gateway's openapi.json (apidoc_test.go, -update rewrites its
//     index); docs/configuration.md lists every variable the programs read, who reads
//     it and, where the source says, its default (configdoc_test.go);
//   - the service binaries link neither the embedded NATS server nor, for the gateway,
//     the migrations library (deps_test.go).
//
// Each check is a function over a build, and the *Catches* tests break a copy of a good
// build in one place and expect that check to complain.
package check
