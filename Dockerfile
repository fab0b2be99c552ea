# syntax=docker/dockerfile:1
# xsw's service images, one Dockerfile for the three: SERVICE names the one to build.
# Build from the repository root:
#   docker build --build-arg SERVICE=gateway -t xsw-gateway .
#   docker build --build-arg SERVICE=fetcher -t xsw-fetcher .
#   docker build --build-arg SERVICE=indexer -t xsw-indexer .   # `xsw-indexer migrate` applies the schema
# VERSION, optional, is the version the binary reports (package buildinfo); without it,
# "devel":
#   docker build --build-arg SERVICE=gateway --build-arg VERSION=v0.1.0 -t xsw-gateway:0.1.0 .
# GOWORK=off: the binary builds from the service's own go.mod and its replace lines (the
# root module, whose api/, buildinfo/ and events/ it needs, and platform/), exactly as
# `go mod tidy` sees it. The result is a static binary on distroless, run as uid 65532
# (numeric, so that Kubernetes' runAsNonRoot can verify it). Needs BuildKit (docker
# build's default), which builds only the stages SERVICE's image needs. deploy/check
# simulates each build (dockerbuild_test.go): a COPY missing here fails it.
# dev/Dockerfile builds the all-in-one.

# gateway, fetcher or indexer: the final stage of that name is the image.
ARG SERVICE

FROM golang:1.26 AS build
ARG SERVICE
ARG VERSION
ENV GOWORK=off CGO_ENABLED=0
WORKDIR /src
# Module files first: the download step reruns only when they change (the modules
# themselves live in a BuildKit cache mount, shared with the build step).
COPY go.mod go.sum ./
COPY platform/go.mod platform/go.sum platform/
COPY services/${SERVICE}/go.mod services/${SERVICE}/go.sum services/${SERVICE}/
RUN --mount=type=cache,target=/go/pkg/mod \
    cd services/${SERVICE} && go mod download
COPY api/ api/
COPY buildinfo/ buildinfo/
COPY events/ events/
COPY platform/ platform/
COPY services/${SERVICE}/ services/${SERVICE}/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    cd services/${SERVICE} && go build -trimpath \
      -ldflags="-s -w -X github.com/xswtw/xsw/buildinfo.version=${VERSION}" \
      -o /out/${SERVICE} ./cmd/${SERVICE}

# A static HTTP probe for docker compose's healthcheck: distroless has no shell or wget.
# It imports the standard library only, so its module's go.mod and go.sum are all the
# build needs of the deploy module (no module it requires is loaded).
FROM golang:1.26 AS healthcheck
ENV GOWORK=off CGO_ENABLED=0
WORKDIR /src/deploy
COPY deploy/go.mod deploy/go.sum ./
COPY deploy/cmd/healthcheck/ cmd/healthcheck/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/healthcheck ./cmd/healthcheck

FROM gcr.io/distroless/static-debian12:nonroot AS runtime
COPY --from=healthcheck /out/healthcheck /healthcheck
USER 65532:65532

FROM runtime AS gateway
COPY --from=build /out/gateway /gateway
EXPOSE 8000
ENTRYPOINT ["/gateway"]

FROM runtime AS fetcher
COPY --from=build /out/fetcher /fetcher
EXPOSE 8001
ENTRYPOINT ["/fetcher"]

FROM runtime AS indexer
COPY --from=build /out/indexer /indexer
EXPOSE 8002
ENTRYPOINT ["/indexer"]

FROM ${SERVICE}
